#include "client/grpc_bidi_transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/start_client.h"
#include "common/serde.h"
#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "fake_clock.h"
#include "fake_flower_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace petal::client {
namespace {

using ::petal::client::testing::AddingClient;
using ::petal::client::testing::BareClient;
using ::petal::client::testing::EvaluateMessage;
using ::petal::client::testing::FakeClock;
using ::petal::client::testing::FakeFlowerServer;
using ::petal::client::testing::FakeSession;
using ::petal::client::testing::FitMessage;
using ::petal::client::testing::Floats;
using ::petal::client::testing::GetParametersMessage;
using ::petal::client::testing::GetPropertiesMessage;
using ::petal::client::testing::PickUnusedPort;
using ::petal::client::testing::ReconnectMessage;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

using flwr::proto::ClientMessage;

// Every test bounds Run() with this; a hang is a failure, not a stuck suite.
constexpr auto kRunLimit = std::chrono::seconds(60);

ConnectionOptions TestOptions(const std::string& address, Clock* clock) {
  ConnectionOptions o;
  o.server_address = address;
  o.name = "unit-client";
  o.retry.initial_backoff = absl::Seconds(1);
  o.retry.multiplier = 2.0;
  o.retry.max_backoff = absl::Seconds(8);
  o.retry.jitter = 0.5;
  o.retry.max_attempts = 20;
  o.retry.max_elapsed = absl::Hours(1);
  o.connect_timeout = absl::Seconds(10);
  o.disconnect_grace = absl::Seconds(5);
  o.clock = clock;
  o.jitter_seed = 1234;
  return o;
}

// Runs `transport` on its own thread; fails the test (and stops it) if it
// does not return within kRunLimit.
absl::Status RunBounded(Transport& transport, Client& client) {
  auto done = std::async(std::launch::async, [&] { return transport.Run(client); });
  if (done.wait_for(kRunLimit) != std::future_status::ready) {
    ADD_FAILURE() << "Run() did not return in time";
    transport.Stop();
  }
  return done.get();
}

// Records the replies a fake server receives.
class Replies {
 public:
  void Add(std::optional<ClientMessage> m) {
    absl::MutexLock lock(&mu_);
    replies_.push_back(std::move(m));
  }
  std::vector<std::optional<ClientMessage>> Get() const {
    absl::MutexLock lock(&mu_);
    return replies_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::optional<ClientMessage>> replies_ ABSL_GUARDED_BY(mu_);
};

// Sends the goodbye Flower sends at the end of a run, then waits for the
// client to close its side.
grpc::Status Goodbye(FakeSession& s, Replies* replies = nullptr) {
  s.Send(ReconnectMessage(0));
  std::optional<ClientMessage> reply = s.Receive();
  if (replies != nullptr) replies->Add(reply);
  s.Receive();  // the client half-closes after DisconnectRes
  return grpc::Status::OK;
}

std::vector<float> FitValues(const ClientMessage& m) {
  absl::StatusOr<common::NDArrays> arrays = common::ParametersToNDArrays(m.fit_res().parameters());
  if (!arrays.ok() || arrays->empty()) return {};
  auto v = (*arrays)[0].values<float>();
  return {v.begin(), v.end()};
}

TEST(GrpcBidiTransportTest, ServesAllFiveInstructionKindsThenExitsOnGoodbye) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    s.Send(GetPropertiesMessage({{"q", true}}));
    replies.Add(s.Receive());
    s.Send(GetParametersMessage());
    replies.Add(s.Receive());
    s.Send(FitMessage({Floats({2}, {1.0f, 2.0f})}, {{"local_epochs", int64_t{3}}}));
    replies.Add(s.Receive());
    s.Send(EvaluateMessage({Floats({1}, {0.0f})}));
    replies.Add(s.Receive());
    return Goodbye(s, &replies);
  });
  FakeClock clock;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), &clock)));
  AddingClient client(1.0f, 42);
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("[unit-client] connected to " + server.address()));
  EXPECT_THAT(log, HasSubstr("[unit-client] the server said goodbye"));

  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 5u);
  for (const auto& r : got) ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(got[0]->has_get_properties_res());
  EXPECT_TRUE(got[1]->has_get_parameters_res());
  ASSERT_TRUE(got[2]->has_fit_res());
  EXPECT_EQ(got[2]->fit_res().status().message(), "Success");
  EXPECT_EQ(got[2]->fit_res().num_examples(), 42);
  EXPECT_THAT(FitValues(*got[2]), ElementsAre(4.0f, 5.0f));
  EXPECT_TRUE(got[3]->has_evaluate_res());
  ASSERT_TRUE(got[4]->has_disconnect_res());
  EXPECT_EQ(got[4]->disconnect_res().reason(), flwr::proto::RECONNECT);

  const TransportStats stats = transport->stats();
  EXPECT_EQ(stats.connect_attempts, 1);
  EXPECT_EQ(stats.sessions, 1);
  EXPECT_EQ(stats.instructions, 5);
  EXPECT_EQ(stats.failed_instructions, 0);
  EXPECT_GT(stats.bytes_received, 0);
  EXPECT_GT(stats.bytes_sent, 0);
  EXPECT_TRUE(stats.first_connected.has_value());
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(GrpcBidiTransportTest, DefaultClientAnswersNotImplementedAndStaysConnected) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    s.Send(GetPropertiesMessage());
    replies.Add(s.Receive());
    s.Send(GetParametersMessage());
    replies.Add(s.Receive());
    s.Send(FitMessage({}));
    replies.Add(s.Receive());
    s.Send(EvaluateMessage({}));
    replies.Add(s.Receive());
    return Goodbye(s);
  });
  FakeClock clock;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), &clock)));
  BareClient client;
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0]->get_properties_res().status().code(),
            flwr::proto::GET_PROPERTIES_NOT_IMPLEMENTED);
  EXPECT_EQ(got[1]->get_parameters_res().status().code(),
            flwr::proto::GET_PARAMETERS_NOT_IMPLEMENTED);
  EXPECT_EQ(got[2]->fit_res().status().message(), "Client does not implement `fit`");
  EXPECT_EQ(got[3]->evaluate_res().status().code(), flwr::proto::EVALUATE_NOT_IMPLEMENTED);
  EXPECT_EQ(transport->stats().failed_instructions, 4);
  EXPECT_EQ(server.sessions(), 1);
}

TEST(GrpcBidiTransportTest, BadInstructionsGetFailureRepliesOnTheSameStream) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    flwr::proto::ServerMessage garbage = FitMessage({Floats({1}, {1.0f})});
    garbage.mutable_fit_ins()->mutable_parameters()->mutable_tensors(0)->assign("\x93NUMPY\x01");
    s.Send(garbage);
    replies.Add(s.Receive());
    s.Send(FitMessage({Floats({1}, {1.0f})}, {{"fail", true}}));
    replies.Add(s.Receive());
    s.Send(FitMessage({Floats({1}, {1.0f})}, {{"throw", true}}));
    replies.Add(s.Receive());
    s.Send(FitMessage({Floats({1}, {1.0f})}, {{"local_epochs", 2.5}}));
    replies.Add(s.Receive());
    s.Send(FitMessage({Floats({1}, {1.0f})}));
    replies.Add(s.Receive());
    return Goodbye(s);
  });
  FakeClock clock;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), &clock)));
  AddingClient client;
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("[unit-client] fit failed, answering with a failure status: error: "
                             "INVALID_ARGUMENT: fit_ins: tensor 0:"));

  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(got[i].has_value()) << i;
    EXPECT_EQ(got[i]->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED) << i;
    EXPECT_THAT(got[i]->fit_res().status().message(), ::testing::StartsWith("error: ")) << i;
  }
  EXPECT_THAT(got[1]->fit_res().status().message(), HasSubstr("asked to fail"));
  EXPECT_THAT(got[2]->fit_res().status().message(), HasSubstr("exception: boom"));
  EXPECT_THAT(got[3]->fit_res().status().message(), HasSubstr("local_epochs"));
  EXPECT_EQ(got[4]->fit_res().status().code(), flwr::proto::OK);
  EXPECT_THAT(FitValues(*got[4]), ElementsAre(2.0f));
  EXPECT_EQ(server.sessions(), 1);
  EXPECT_EQ(transport->stats().failed_instructions, 4);
}

TEST(GrpcBidiTransportTest, ReconnectInsWithSecondsReconnectsAfterThatLong) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    if (s.index() == 0) {
      s.Send(ReconnectMessage(3));
      replies.Add(s.Receive());
      s.Receive();
      return grpc::Status::OK;
    }
    return Goodbye(s, &replies);
  });
  FakeClock clock;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), &clock)));
  BareClient client;
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  EXPECT_EQ(server.sessions(), 2);
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(3)));
  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]->disconnect_res().reason(), flwr::proto::RECONNECT);
  EXPECT_EQ(got[1]->disconnect_res().reason(), flwr::proto::RECONNECT);
}

TEST(GrpcBidiTransportTest, UnknownInstructionIsNotAnsweredAndTheClientReconnects) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    if (s.index() == 0) {
      s.Send(flwr::proto::ServerMessage());  // nothing set
      replies.Add(s.Receive());              // nullopt: the stream ends without a reply
      return grpc::Status::OK;
    }
    return Goodbye(s);
  });
  FakeClock clock;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), &clock)));
  BareClient client;
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("empty ServerMessage"));
  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].has_value());
  EXPECT_EQ(server.sessions(), 2);
  EXPECT_EQ(clock.sleeps().size(), 1u);
}

TEST(GrpcBidiTransportTest, LostStreamIsFollowedByABackoffAndANewSession) {
  FakeFlowerServer server([&](FakeSession& s) {
    if (s.index() == 0) {
      s.Send(FitMessage({Floats({1}, {1.0f})}));
      s.Receive();
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
    }
    return Goodbye(s);
  });
  FakeClock clock;
  ConnectionOptions options = TestOptions(server.address(), &clock);
  options.retry.jitter = 0.0;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  AddingClient client;
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("lost the connection"));
  EXPECT_THAT(log, HasSubstr("going away"));
  EXPECT_EQ(server.sessions(), 2);
  // The lost session had answered an instruction, so the delay starts over.
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(1)));
}

TEST(GrpcBidiTransportTest, RetriesWithBackoffUntilTheServerAppears) {
  const int port = PickUnusedPort();
  FakeClock clock;
  std::unique_ptr<FakeFlowerServer> server;
  clock.set_on_sleep([&](absl::Duration) {
    if (clock.sleeps().size() == 3) {
      server = std::make_unique<FakeFlowerServer>([](FakeSession& s) { return Goodbye(s); }, port);
    }
  });
  ConnectionOptions options = TestOptions("127.0.0.1:" + std::to_string(port), &clock);
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->sessions(), 1);
  const TransportStats stats = transport->stats();
  EXPECT_EQ(stats.connect_attempts, 4);
  EXPECT_EQ(stats.sessions, 1);

  // The same policy and seed reproduce the schedule exactly.
  FakeClock reference_clock;
  Backoff reference(options.retry, reference_clock, MakeJitterSource(options.jitter_seed));
  std::vector<absl::Duration> want;
  for (int i = 0; i < 3; ++i) {
    want.push_back(*reference.NextDelay());
    reference_clock.Advance(want.back());
  }
  EXPECT_EQ(clock.sleeps(), want);
  EXPECT_GE(want[0], absl::Milliseconds(500));
  EXPECT_LE(want[0], absl::Seconds(1));
  EXPECT_GE(want[2], absl::Seconds(2));
  EXPECT_LE(want[2], absl::Seconds(4));
}

TEST(GrpcBidiTransportTest, GivesUpAfterMaxAttempts) {
  const int port = PickUnusedPort();
  FakeClock clock;
  ConnectionOptions options = TestOptions("127.0.0.1:" + std::to_string(port), &clock);
  options.retry.max_attempts = 4;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  const absl::Status status = RunBounded(*transport, client);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("giving up on 127.0.0.1:" + std::to_string(port) +
                                         " after 4 failed attempt(s)")));
  EXPECT_EQ(transport->stats().connect_attempts, 4);
  EXPECT_EQ(transport->stats().sessions, 0);
  EXPECT_EQ(clock.sleeps().size(), 3u);
}

TEST(GrpcBidiTransportTest, GivesUpWhenTheTimeBudgetIsSpent) {
  const int port = PickUnusedPort();
  FakeClock clock;
  ConnectionOptions options = TestOptions("127.0.0.1:" + std::to_string(port), &clock);
  options.retry.max_attempts = 0;
  options.retry.max_elapsed = absl::Seconds(10);
  options.retry.jitter = 0.0;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  EXPECT_THAT(
      RunBounded(*transport, client),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("after 5 failed attempt(s) in 10s")));
  EXPECT_THAT(clock.sleeps(),
              ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(4), absl::Seconds(3)));
}

// A TCP listener that never speaks HTTP/2: connections hang in the handshake.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot create a listening socket";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(GrpcBidiTransportTest, ConnectTimeoutCountsAsAFailedAttempt) {
  SilentListener listener;
  FakeClock clock;
  ConnectionOptions options = TestOptions(listener.address(), &clock);
  options.connect_timeout = absl::Milliseconds(300);
  options.retry.max_attempts = 2;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  const absl::Time start = absl::Now();
  EXPECT_THAT(RunBounded(*transport, client),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connect_timeout")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(transport->stats().connect_attempts, 2);
}

TEST(GrpcBidiTransportTest, StopInterruptsAnIdleSession) {
  FakeFlowerServer server([&](FakeSession& s) {
    s.Receive();  // never sends; returns when the client cancels
    return grpc::Status::OK;
  });
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions(server.address(), nullptr)));
  BareClient client;
  auto done = std::async(std::launch::async, [&] { return transport->Run(client); });
  ASSERT_TRUE(server.WaitForSessions(1, absl::Seconds(30)));
  const absl::Time stop_at = absl::Now();
  transport->Stop();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_LT(absl::Now() - stop_at, absl::Seconds(5));
  EXPECT_THAT(done.get(), StatusIs(absl::StatusCode::kCancelled));
}

TEST(GrpcBidiTransportTest, StopInterruptsAConnectAttempt) {
  SilentListener listener;
  ConnectionOptions options = TestOptions(listener.address(), nullptr);
  options.connect_timeout = absl::Hours(1);
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  auto done = std::async(std::launch::async, [&] { return transport->Run(client); });
  EXPECT_EQ(done.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  transport->Stop();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(done.get(), StatusIs(absl::StatusCode::kCancelled));
}

// Wall clock that announces each sleep.
class AnnouncingClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool SleepUntil(absl::Time deadline, const StopSignal& stop) override {
    if (!sleeping_.HasBeenNotified()) sleeping_.Notify();
    return SystemClock().SleepUntil(deadline, stop);
  }
  absl::Notification& sleeping() { return sleeping_; }

 private:
  absl::Notification sleeping_;
};

TEST(GrpcBidiTransportTest, StopInterruptsABackoffWait) {
  AnnouncingClock clock;
  ConnectionOptions options = TestOptions("127.0.0.1:" + std::to_string(PickUnusedPort()), &clock);
  options.retry.initial_backoff = absl::Hours(1);
  options.retry.max_backoff = absl::Hours(1);
  options.retry.max_elapsed = absl::Hours(10);
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  BareClient client;
  auto done = std::async(std::launch::async, [&] { return transport->Run(client); });
  ASSERT_TRUE(clock.sleeping().WaitForNotificationWithTimeout(absl::Seconds(30)));
  transport->Stop();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(done.get(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(transport->stats().connect_attempts, 1);
}

TEST(GrpcBidiTransportTest, StopBeforeRunReturnsAtOnce) {
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport,
                             MakeGrpcBidiTransport(TestOptions("127.0.0.1:1", nullptr)));
  transport->Stop();
  BareClient client;
  EXPECT_THAT(transport->Run(client), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(transport->stats().connect_attempts, 0);
  EXPECT_THAT(transport->Run(client), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(GrpcBidiTransportTest, StartClientStopsWhenItsStopSignalFires) {
  FakeFlowerServer server([&](FakeSession& s) {
    s.Receive();
    return grpc::Status::OK;
  });
  BareClient client;
  StopSignal stop;
  auto done = std::async(std::launch::async, [&] {
    return StartClient(TestOptions(server.address(), nullptr), client, &stop);
  });
  ASSERT_TRUE(server.WaitForSessions(1, absl::Seconds(30)));
  stop.Stop();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(done.get(), StatusIs(absl::StatusCode::kCancelled));
}

TEST(GrpcBidiTransportTest, TwoClientsRunInOneProcess) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    s.Send(FitMessage({Floats({1}, {0.0f})}));
    replies.Add(s.Receive());
    return Goodbye(s);
  });
  AddingClient one(1.0f);
  AddingClient ten(10.0f);
  ConnectionOptions a = TestOptions(server.address(), nullptr);
  a.name = "alpha";
  ConnectionOptions b = TestOptions(server.address(), nullptr);
  b.name = "beta";
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr ta, MakeGrpcBidiTransport(a));
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr tb, MakeGrpcBidiTransport(b));
  auto run_a = std::async(std::launch::async, [&] { return RunBounded(*ta, one); });
  auto run_b = std::async(std::launch::async, [&] { return RunBounded(*tb, ten); });
  EXPECT_THAT(run_a.get(), IsOk());
  EXPECT_THAT(run_b.get(), IsOk());
  EXPECT_EQ(server.sessions(), 2);
  std::vector<float> values;
  for (const auto& r : replies.Get()) {
    ASSERT_TRUE(r.has_value());
    values.push_back(FitValues(*r).at(0));
  }
  EXPECT_THAT(values, UnorderedElementsAre(1.0f, 10.0f));
  EXPECT_EQ(ta->stats().instructions, 2);
  EXPECT_EQ(tb->stats().instructions, 2);
}

TEST(GrpcBidiTransportTest, InstructionLargerThanTheLimitIsFatal) {
  FakeFlowerServer server([&](FakeSession& s) {
    s.Send(FitMessage({Floats({2000}, std::vector<float>(2000, 1.0f))}));
    s.Receive();
    return grpc::Status::OK;
  });
  FakeClock clock;
  ConnectionOptions options = TestOptions(server.address(), &clock);
  options.max_message_length = 4096;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  AddingClient client;
  EXPECT_THAT(RunBounded(*transport, client),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("larger than max_message_length (4096 bytes)")));
  EXPECT_EQ(transport->stats().instructions, 0);
  EXPECT_TRUE(clock.sleeps().empty());
}

// Answers fit with far more data than it was sent.
class InflatingClient : public Client {
 public:
  absl::StatusOr<FitRes> Fit(const FitIns&) override {
    return FitRes{common::SuccessStatus(), {Floats({4000}, std::vector<float>(4000, 2.0f))}, 1, {}};
  }
};

TEST(GrpcBidiTransportTest, ReplyLargerThanTheLimitIsSentAsAFailure) {
  Replies replies;
  FakeFlowerServer server([&](FakeSession& s) {
    s.Send(FitMessage({Floats({1}, {1.0f})}));
    replies.Add(s.Receive());
    return Goodbye(s);
  });
  FakeClock clock;
  ConnectionOptions options = TestOptions(server.address(), &clock);
  options.max_message_length = 4096;
  PETAL_ASSERT_OK_AND_ASSIGN(TransportPtr transport, MakeGrpcBidiTransport(options));
  InflatingClient client;
  EXPECT_THAT(RunBounded(*transport, client), IsOk());
  const auto got = replies.Get();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
  EXPECT_THAT(got[0]->fit_res().status().message(),
              HasSubstr("more than max_message_length (4096 bytes)"));
}

TEST(GrpcBidiTransportTest, RejectsBadOptions) {
  ConnectionOptions o = TestOptions("127.0.0.1:1", nullptr);
  o.max_message_length = 0;
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_message_length")));
  o = TestOptions("127.0.0.1:1", nullptr);
  o.server_address = "";
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server_address")));
  o = TestOptions("127.0.0.1:1", nullptr);
  o.root_certificates = "/nonexistent/ca.pem";
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("root_certificates")));
  o.insecure = true;
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("insecure")));
  o = TestOptions("127.0.0.1:1", nullptr);
  o.retry.max_attempts = 0;
  o.retry.max_elapsed = absl::InfiniteDuration();
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unbounded")));

  const std::string not_pem = ::petal::testing::ScratchPath("not_a_cert.txt").string();
  std::ofstream(not_pem) << "hello";
  o = TestOptions("127.0.0.1:1", nullptr);
  o.root_certificates = not_pem;
  EXPECT_THAT(MakeGrpcBidiTransport(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM block")));
  std::remove(not_pem.c_str());
}

TEST(TransportKindTest, ParsesAndNames) {
  EXPECT_THAT(ParseTransportKind("grpc-bidi"),
              ::petal::testing::IsOkAndHolds(TransportKind::kGrpcBidi));
  EXPECT_THAT(ParseTransportKind("grpc-rere"),
              ::petal::testing::IsOkAndHolds(TransportKind::kGrpcRere));
  EXPECT_THAT(ParseTransportKind("rest"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grpc-bidi or grpc-rere")));
  EXPECT_EQ(TransportKindName(TransportKind::kGrpcRere), "grpc-rere");
}

}  // namespace
}  // namespace petal::client
