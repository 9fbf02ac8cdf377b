#include "client/message_handler.h"

#include <fmt/format.h>

#include <exception>
#include <type_traits>
#include <utility>

#include "common/serde.h"
#include "common/status_macros.h"

namespace petal::client {
namespace {

using flwr::proto::ClientMessage;
using flwr::proto::ServerMessage;

// Runs a Client method, turning an escaping exception into an Internal status.
template <typename Call>
auto CallGuarded(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("the client raised an exception: {}", e.what()));
  } catch (...) {
    return absl::InternalError("the client raised a non-standard exception");
  }
}

common::Code FailureCode(InstructionKind kind) {
  switch (kind) {
    case InstructionKind::kGetProperties:
      return common::Code::kGetPropertiesNotImplemented;
    case InstructionKind::kGetParameters:
      return common::Code::kGetParametersNotImplemented;
    case InstructionKind::kFit:
      return common::Code::kFitNotImplemented;
    case InstructionKind::kEvaluate:
    case InstructionKind::kReconnect:
    case InstructionKind::kUnknown:
      break;
  }
  return common::Code::kEvaluateNotImplemented;
}

// The reply a failure of `kind` gets: only the status, as Flower's serde
// writes every *_NOT_IMPLEMENTED reply.
ClientMessage FailureReply(InstructionKind kind, const std::string& message) {
  ClientMessage reply;
  const common::ReplyStatus status{FailureCode(kind), message};
  switch (kind) {
    case InstructionKind::kGetProperties:
      common::GetPropertiesResToProto(common::GetPropertiesRes{status, {}},
                                      reply.mutable_get_properties_res());
      break;
    case InstructionKind::kGetParameters:
      common::GetParametersResToProto(common::GetParametersRes{status, {}},
                                      reply.mutable_get_parameters_res());
      break;
    case InstructionKind::kFit:
      common::FitResToProto(common::FitRes{status, {}, 0, {}}, reply.mutable_fit_res());
      break;
    case InstructionKind::kEvaluate:
      common::EvaluateResToProto(common::EvaluateRes{status, 0.0f, 0, {}},
                                 reply.mutable_evaluate_res());
      break;
    case InstructionKind::kReconnect:
    case InstructionKind::kUnknown:
      break;
  }
  return reply;
}

// Calls and encodes one request/response pair: `ins` is the decoded
// instruction (or why it could not be decoded), `call` produces the typed reply
// and `encode` writes it into a ClientMessage.
template <typename Ins, typename Call, typename Encode>
void Serve(InstructionKind kind, absl::StatusOr<Ins> ins, Call&& call, Encode&& encode,
           HandledInstruction& out) {
  using ResOr = decltype(call(std::declval<const Ins&>()));
  ResOr res =
      ins.ok()
          ? CallGuarded([&] { return call(*ins); })
          : ResOr(common::Annotate(ins.status(), fmt::format("{}_ins", InstructionName(kind))));
  ClientMessage reply;
  if (res.ok()) {
    out.failed = res->status.code != common::Code::kOk;
    encode(*res, reply);
  } else {
    out.failed = true;
    out.error = FailureMessage(res.status());
    reply = FailureReply(kind, out.error);
  }
  out.reply = std::move(reply);
}

}  // namespace

std::string_view InstructionName(InstructionKind kind) {
  switch (kind) {
    case InstructionKind::kGetProperties:
      return "get_properties";
    case InstructionKind::kGetParameters:
      return "get_parameters";
    case InstructionKind::kFit:
      return "fit";
    case InstructionKind::kEvaluate:
      return "evaluate";
    case InstructionKind::kReconnect:
      return "reconnect";
    case InstructionKind::kUnknown:
      break;
  }
  return "unknown";
}

std::string FailureMessage(const absl::Status& status) {
  return fmt::format("error: {}", status.ToString());
}

HandledInstruction HandleServerMessage(Client& client, ServerMessage&& message,
                                       int64_t max_reply_bytes) {
  HandledInstruction out;
  switch (message.msg_case()) {
    case ServerMessage::kGetPropertiesIns:
      out.kind = InstructionKind::kGetProperties;
      Serve(
          out.kind, common::GetPropertiesInsFromProto(message.get_properties_ins()),
          [&](const GetPropertiesIns& ins) { return client.GetProperties(ins); },
          [](const GetPropertiesRes& res, ClientMessage& reply) {
            common::GetPropertiesResToProto(res, reply.mutable_get_properties_res());
          },
          out);
      break;
    case ServerMessage::kGetParametersIns:
      out.kind = InstructionKind::kGetParameters;
      Serve(
          out.kind, common::GetParametersInsFromProto(message.get_parameters_ins()),
          [&](const GetParametersIns& ins) { return client.GetParameters(ins); },
          [](const GetParametersRes& res, ClientMessage& reply) {
            common::GetParametersResToProto(res, reply.mutable_get_parameters_res());
          },
          out);
      break;
    case ServerMessage::kFitIns:
      out.kind = InstructionKind::kFit;
      Serve(
          out.kind, common::FitInsFromProto(std::move(*message.mutable_fit_ins())),
          [&](const FitIns& ins) { return client.Fit(ins); },
          [](const FitRes& res, ClientMessage& reply) {
            common::FitResToProto(res, reply.mutable_fit_res());
          },
          out);
      break;
    case ServerMessage::kEvaluateIns:
      out.kind = InstructionKind::kEvaluate;
      Serve(
          out.kind, common::EvaluateInsFromProto(std::move(*message.mutable_evaluate_ins())),
          [&](const EvaluateIns& ins) { return client.Evaluate(ins); },
          [](const EvaluateRes& res, ClientMessage& reply) {
            common::EvaluateResToProto(res, reply.mutable_evaluate_res());
          },
          out);
      break;
    case ServerMessage::kReconnectIns: {
      out.kind = InstructionKind::kReconnect;
      out.reconnect_seconds = message.reconnect_ins().seconds();
      ClientMessage reply;
      reply.mutable_disconnect_res()->set_reason(flwr::proto::RECONNECT);
      out.reply = std::move(reply);
      return out;
    }
    case ServerMessage::MSG_NOT_SET:
      out.kind = InstructionKind::kUnknown;
      out.error = message.ByteSizeLong() == 0
                      ? "the server sent an empty ServerMessage (no instruction set)"
                      : fmt::format(
                            "the server sent a ServerMessage with an instruction this client does "
                            "not know ({} bytes of unknown fields)",
                            message.ByteSizeLong());
      return out;
  }

  const size_t size = out.reply->ByteSizeLong();
  if (static_cast<int64_t>(size) > max_reply_bytes) {
    out.failed = true;
    out.error = FailureMessage(absl::ResourceExhaustedError(
        fmt::format("the {} reply is {} bytes, more than max_message_length ({} bytes)",
                    InstructionName(out.kind), size, max_reply_bytes)));
    out.reply = FailureReply(out.kind, out.error);
  }
  return out;
}

}  // namespace petal::client
