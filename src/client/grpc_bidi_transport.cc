#include "client/grpc_bidi_transport.h"

#include <fmt/format.h>
#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/channel.h"
#include "client/message_handler.h"
#include "client/stop_signal.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "flwr/proto/transport.grpc.pb.h"

namespace petal::client {
namespace {

namespace log = common::log;

// Completion-queue tags. Only one stream operation is outstanding at a time
// (lock-step), plus at most two alarms.
void* const kStartTag = reinterpret_cast<void*>(uintptr_t{1});
void* const kReadTag = reinterpret_cast<void*>(uintptr_t{2});
void* const kWriteTag = reinterpret_cast<void*>(uintptr_t{3});
void* const kWritesDoneTag = reinterpret_cast<void*>(uintptr_t{4});
void* const kFinishTag = reinterpret_cast<void*>(uintptr_t{5});
void* const kConnectAlarmTag = reinterpret_cast<void*>(uintptr_t{6});
void* const kGraceAlarmTag = reinterpret_cast<void*>(uintptr_t{7});

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration d) {
  return std::chrono::system_clock::now() + std::chrono::microseconds(absl::ToInt64Microseconds(d));
}

enum class SessionEnd {
  kConnectFailed,  // never reached the server
  kLost,           // reached it, then the stream broke
  kProtocolError,  // the server sent something we cannot answer; we closed
  kReconnect,      // ReconnectIns with seconds > 0
  kGoodbye,        // ReconnectIns with seconds <= 0
  kFatal,          // do not retry
  kStopped,        // Stop() was called
};

struct SessionResult {
  SessionEnd end = SessionEnd::kConnectFailed;
  absl::Status status;       // why the session ended (non-OK unless goodbye/reconnect)
  bool connected = false;    // the stream reached the server
  int64_t instructions = 0;  // instructions answered in this session
  int64_t reconnect_seconds = 0;
};

class GrpcBidiTransport final : public Transport {
 public:
  GrpcBidiTransport(ConnectionOptions options, ChannelFactory channels)
      : options_(std::move(options)),
        channels_(std::move(channels)),
        clock_(options_.clock != nullptr ? *options_.clock : SystemClock()) {}

  absl::Status Run(Client& client) override;
  void Stop() override { stop_.Stop(); }
  TransportStats stats() const override {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  SessionResult RunSession(Client& client);
  bool IsOwnReceiveLimit(const grpc::Status& status) const;

  const ConnectionOptions options_;
  const ChannelFactory channels_;
  Clock& clock_;
  StopSignal stop_;
  std::atomic<bool> run_called_{false};
  mutable absl::Mutex stats_mu_;
  TransportStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

// Our own receive limit shows up as RESOURCE_EXHAUSTED "Received message
// larger than max (<size> vs. <limit>)" with our limit; a server that rejects
// our message reports its own limit instead.
bool GrpcBidiTransport::IsOwnReceiveLimit(const grpc::Status& status) const {
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return false;
  const std::string& text = status.error_message();
  return text.find("Received message larger than max") != std::string::npos &&
         text.find(fmt::format("vs. {})", options_.max_message_length)) != std::string::npos;
}

SessionResult GrpcBidiTransport::RunSession(Client& client) {
  const std::string& name = options_.name;
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.connect_attempts;
  }
  std::shared_ptr<grpc::Channel> channel = channels_.NewChannel();
  std::unique_ptr<flwr::proto::FlowerService::Stub> stub =
      flwr::proto::FlowerService::NewStub(channel);

  grpc::CompletionQueue cq;
  grpc::Alarm connect_alarm;
  grpc::Alarm grace_alarm;
  grpc::ClientContext context;
  bool connecting = true;
  bool connect_timed_out = false;

  // Waits for `want`; alarms that fire on the way cancel the call. A connect
  // alarm that fires after the call started is ignored.
  auto await = [&](void* want) {
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
      if (tag == want) return ok;
      if (tag == kConnectAlarmTag && ok && connecting) {
        connect_timed_out = true;
        context.TryCancel();
      } else if (tag == kGraceAlarmTag && ok) {
        context.TryCancel();
      }
    }
    return false;
  };

  SessionResult result;
  {
    std::unique_ptr<
        grpc::ClientAsyncReaderWriter<flwr::proto::ClientMessage, flwr::proto::ServerMessage>>
        stream = stub->PrepareAsyncJoin(&context, &cq);
    ScopedStopCallback cancel_on_stop(stop_, [&context] { context.TryCancel(); });
    auto finish = [&] {
      grpc::Status status;
      stream->Finish(&status, kFinishTag);
      await(kFinishTag);
      return status;
    };

    // Open Join without sending anything: StartCall completes once the stream
    // has reached the server, which registers the client at that moment.
    connect_alarm.Set(&cq, DeadlineAfter(options_.connect_timeout), kConnectAlarmTag);
    stream->StartCall(kStartTag);
    const bool started = await(kStartTag);
    connecting = false;
    connect_alarm.Cancel();
    if (!started) {
      const grpc::Status status = finish();
      if (stop_.stopped()) {
        result.end = SessionEnd::kStopped;
      } else if (connect_timed_out) {
        result.status = absl::DeadlineExceededError(
            fmt::format("no connection to {} within connect_timeout ({})", options_.server_address,
                        absl::FormatDuration(options_.connect_timeout)));
      } else {
        result.status = FromGrpc(status);
        if (result.status.ok()) result.status = absl::UnavailableError("the call did not start");
      }
    } else {
      result.connected = true;
      {
        absl::MutexLock lock(&stats_mu_);
        ++stats_.sessions;
        if (!stats_.first_connected.has_value()) stats_.first_connected = clock_.Now();
      }
      log::Info("[{}] connected to {} (grpc-bidi, {})", name, options_.server_address,
                channels_.uses_tls() ? "TLS" : "plaintext");

      for (;;) {
        flwr::proto::ServerMessage message;
        stream->Read(&message, kReadTag);
        if (!await(kReadTag)) {
          const grpc::Status status = finish();
          if (stop_.stopped()) {
            result.end = SessionEnd::kStopped;
          } else if (IsOwnReceiveLimit(status)) {
            result.end = SessionEnd::kFatal;
            result.status = absl::ResourceExhaustedError(fmt::format(
                "the server sent a message larger than max_message_length ({} bytes): {}; "
                "raise max_message_length to match the server's limit",
                options_.max_message_length, status.error_message()));
          } else {
            result.end = SessionEnd::kLost;
            result.status = FromGrpc(status);
            if (result.status.ok()) {
              result.status = absl::UnavailableError("the server closed the stream");
            }
          }
          break;
        }
        const int64_t received = static_cast<int64_t>(message.ByteSizeLong());
        HandledInstruction handled =
            HandleServerMessage(client, std::move(message), options_.max_message_length);
        if (!handled.reply.has_value()) {
          log::Error("[{}] {}; closing the stream without a reply so the server counts a failure",
                     name, handled.error);
          context.TryCancel();
          finish();
          result.end = stop_.stopped() ? SessionEnd::kStopped : SessionEnd::kProtocolError;
          result.status = absl::InternalError(handled.error);
          break;
        }
        const std::string_view what = InstructionName(handled.kind);
        if (!handled.error.empty()) {
          log::Warn("[{}] {} failed, answering with a failure status: {}", name, what,
                    handled.error);
        } else if (handled.failed) {
          log::Info("[{}] {}: the client answered with a non-OK status", name, what);
        } else {
          log::Debug("[{}] {} answered", name, what);
        }
        const int64_t sent = static_cast<int64_t>(handled.reply->ByteSizeLong());
        stream->Write(*handled.reply, kWriteTag);
        if (!await(kWriteTag)) {
          const grpc::Status status = finish();
          result.end = stop_.stopped() ? SessionEnd::kStopped : SessionEnd::kLost;
          result.status = FromGrpc(status);
          if (result.status.ok()) result.status = absl::UnavailableError("the reply was not sent");
          break;
        }
        ++result.instructions;
        {
          absl::MutexLock lock(&stats_mu_);
          ++stats_.instructions;
          if (handled.failed) ++stats_.failed_instructions;
          stats_.bytes_received += received;
          stats_.bytes_sent += sent;
        }
        if (handled.kind == InstructionKind::kReconnect) {
          // Half-close, then give the server a moment to end the stream itself
          // (Flower stops its server right after collecting DisconnectRes).
          stream->WritesDone(kWritesDoneTag);
          await(kWritesDoneTag);
          grace_alarm.Set(&cq, DeadlineAfter(options_.disconnect_grace), kGraceAlarmTag);
          finish();
          grace_alarm.Cancel();
          result.reconnect_seconds = handled.reconnect_seconds;
          result.end = stop_.stopped()                 ? SessionEnd::kStopped
                       : handled.reconnect_seconds > 0 ? SessionEnd::kReconnect
                                                       : SessionEnd::kGoodbye;
          if (handled.reconnect_seconds < 0) {
            log::Warn("[{}] ReconnectIns with negative seconds ({}) treated as a goodbye", name,
                      handled.reconnect_seconds);
          }
          break;
        }
      }
    }
  }
  // Every stream operation has completed; collect the alarms' tags so the
  // queue is empty before it is destroyed.
  connect_alarm.Cancel();
  grace_alarm.Cancel();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

absl::Status GrpcBidiTransport::Run(Client& client) {
  if (run_called_.exchange(true)) {
    return absl::FailedPreconditionError("Transport::Run may be called only once");
  }
  const std::string& name = options_.name;
  Backoff backoff(options_.retry, clock_, MakeJitterSource(options_.jitter_seed));
  auto cancelled = [&] { return absl::CancelledError(fmt::format("[{}] stopped", name)); };

  for (;;) {
    if (stop_.stopped()) return cancelled();
    SessionResult session = RunSession(client);
    if (session.connected) backoff.OnConnected();
    if (session.instructions > 0) backoff.Reset();

    switch (session.end) {
      case SessionEnd::kStopped:
        return cancelled();
      case SessionEnd::kGoodbye:
        log::Info("[{}] the server said goodbye; disconnected", name);
        return absl::OkStatus();
      case SessionEnd::kFatal:
        log::Error("[{}] {}", name, session.status);
        return session.status;
      case SessionEnd::kReconnect:
        log::Info("[{}] disconnected at the server's request; reconnecting in {} s", name,
                  session.reconnect_seconds);
        if (!clock_.SleepUntil(clock_.Now() + absl::Seconds(session.reconnect_seconds), stop_)) {
          return cancelled();
        }
        continue;
      case SessionEnd::kConnectFailed:
      case SessionEnd::kLost:
      case SessionEnd::kProtocolError: {
        const std::string_view what = session.end == SessionEnd::kConnectFailed
                                          ? "cannot reach the server"
                                      : session.end == SessionEnd::kLost ? "lost the connection"
                                                                         : "closed the connection";
        std::optional<absl::Duration> delay = backoff.NextDelay();
        if (!delay.has_value()) {
          const absl::Status gave_up = absl::UnavailableError(fmt::format(
              "[{}] giving up on {} after {} failed attempt(s) in {}: {}", name,
              options_.server_address, backoff.attempts(),
              absl::FormatDuration(absl::Trunc(backoff.elapsed(), absl::Milliseconds(1))),
              session.status.ToString()));
          log::Error("{}", std::string(gave_up.message()));
          return gave_up;
        }
        log::Warn("[{}] {} at {} ({}); retry {} in {}", name, what, options_.server_address,
                  session.status.ToString(), backoff.attempts(),
                  absl::FormatDuration(absl::Trunc(*delay, absl::Milliseconds(1))));
        if (!clock_.SleepUntil(clock_.Now() + *delay, stop_)) return cancelled();
        continue;
      }
    }
  }
}

}  // namespace

absl::StatusOr<TransportPtr> MakeGrpcBidiTransport(ConnectionOptions options) {
  PETAL_ASSIGN_OR_RETURN(ChannelFactory channels, ChannelFactory::Create(options));
  return std::make_unique<GrpcBidiTransport>(std::move(options), std::move(channels));
}

}  // namespace petal::client
