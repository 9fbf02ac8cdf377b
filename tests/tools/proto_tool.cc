// petal_proto_tool: drive Petal's generated wire classes and serde from the
// command line, so Python tests can compare them with Flower's own classes.
//
//   descriptor OUT            serialized FileDescriptorProto of transport.proto
//   tojson TYPE IN            parse IN as TYPE, fail on unknown fields, print JSON
//   fromjson TYPE IN OUT      JSON (proto3 mapping) -> binary TYPE
//   inspect TYPE IN           parse a ServerMessage/ClientMessage and decode it
//                             with Petal's serde (typed config, npy tensors)
//   build TYPE SPEC OUT       build a ServerMessage/ClientMessage from a JSON spec
//                             with Petal's serde
// TYPE is ServerMessage, ClientMessage, Scalar, Parameters or Status.
// Exit status 0 on success, 2 with the error on stderr otherwise.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "common/npy.h"
#include "common/serde.h"
#include "flwr/proto/transport.pb.h"

namespace {

using google::protobuf::Message;
using nlohmann::json;
using petal::common::ConfigMap;
using petal::common::NDArray;
using petal::common::Scalar;

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string FromHex(const std::string& hex) {
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

int Fail(std::string_view message) {
  std::cerr << message << "\n";
  return 2;
}

std::unique_ptr<Message> NewMessage(const std::string& type) {
  if (type == "ServerMessage") return std::make_unique<flwr::proto::ServerMessage>();
  if (type == "ClientMessage") return std::make_unique<flwr::proto::ClientMessage>();
  if (type == "Scalar") return std::make_unique<flwr::proto::Scalar>();
  if (type == "Parameters") return std::make_unique<flwr::proto::Parameters>();
  if (type == "Status") return std::make_unique<flwr::proto::Status>();
  return nullptr;
}

// Returns the path of the first message (depth first) carrying unknown fields.
std::string FindUnknownFields(const Message& msg, const std::string& path) {
  const auto* refl = msg.GetReflection();
  if (refl->GetUnknownFields(msg).field_count() > 0) return path.empty() ? "<root>" : path;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(msg, f); ++i) {
        std::string found = FindUnknownFields(refl->GetRepeatedMessage(msg, f, i),
                                              path + "/" + f->name() + "[" + std::to_string(i) + "]");
        if (!found.empty()) return found;
      }
    } else {
      std::string found = FindUnknownFields(refl->GetMessage(msg, f), path + "/" + f->name());
      if (!found.empty()) return found;
    }
  }
  return "";
}

json ScalarJson(const Scalar& v) {
  json j{{"type", std::string(petal::common::ScalarTypeName(v))}};
  if (const auto* b = std::get_if<bool>(&v)) j["value"] = *b;
  if (const auto* b = std::get_if<petal::common::Bytes>(&v)) j["value"] = ToHex(b->value);
  if (const auto* d = std::get_if<double>(&v)) j["value"] = *d;
  if (const auto* i = std::get_if<int64_t>(&v)) j["value"] = *i;
  if (const auto* u = std::get_if<uint64_t>(&v)) j["value"] = *u;
  if (const auto* s = std::get_if<std::string>(&v)) j["value"] = *s;
  return j;
}

absl::StatusOr<Scalar> ScalarFromJson(const json& j) {
  const std::string type = j.at("type");
  const json& v = j.at("value");
  if (type == "bool") return Scalar(v.get<bool>());
  if (type == "bytes") return Scalar(petal::common::Bytes{FromHex(v.get<std::string>())});
  if (type == "double") return Scalar(v.get<double>());
  if (type == "sint64") return Scalar(v.get<int64_t>());
  if (type == "uint64") return Scalar(v.get<uint64_t>());
  if (type == "string") return Scalar(v.get<std::string>());
  return absl::InvalidArgumentError("unknown scalar type " + type);
}

absl::StatusOr<json> MapJson(const petal::common::ProtoScalarMap& proto) {
  absl::StatusOr<ConfigMap> config = petal::common::ConfigMapFromProto(proto);
  if (!config.ok()) return config.status();
  json out = json::object();
  for (const auto& [k, v] : *config) out[k] = ScalarJson(v);
  return out;
}

absl::StatusOr<ConfigMap> MapFromJson(const json& j) {
  ConfigMap out;
  for (const auto& [k, v] : j.items()) {
    absl::StatusOr<Scalar> s = ScalarFromJson(v);
    if (!s.ok()) return s.status();
    out.Set(k, *s);
  }
  return out;
}

absl::StatusOr<json> TensorsJson(const flwr::proto::Parameters& params) {
  absl::StatusOr<std::vector<NDArray>> arrays = petal::common::ParametersToNDArrays(params);
  if (!arrays.ok()) return arrays.status();
  json out = json::array();
  for (const NDArray& a : *arrays) {
    out.push_back(json{{"dtype", std::string(petal::common::DTypeName(a.dtype()))},
                       {"shape", a.shape()},
                       {"hex", ToHex(a.bytes())}});
  }
  return json{{"tensor_type", params.tensor_type()}, {"tensors", out}};
}

absl::StatusOr<flwr::proto::Parameters> TensorsFromJson(const json& j) {
  std::vector<NDArray> arrays;
  for (const json& t : j) {
    absl::StatusOr<petal::common::DType> dtype = petal::common::DTypeFromName(t.at("dtype").get<std::string>());
    if (!dtype.ok()) return dtype.status();
    absl::StatusOr<NDArray> a = NDArray::FromBytes(*dtype, t.at("shape").get<petal::common::Shape>(),
                                                   FromHex(t.at("hex").get<std::string>()));
    if (!a.ok()) return a.status();
    arrays.push_back(*std::move(a));
  }
  return petal::common::NDArraysToParameters(arrays);
}

json StatusJson(const flwr::proto::Status& s) {
  return json{{"code", static_cast<int>(s.code())}, {"message", s.message()}};
}

#define TOOL_ASSIGN(lhs, expr)                              \
  auto lhs##_or = (expr);                                   \
  if (!lhs##_or.ok()) return lhs##_or.status();             \
  auto lhs = *std::move(lhs##_or)

absl::StatusOr<json> InspectServer(const flwr::proto::ServerMessage& m) {
  using M = flwr::proto::ServerMessage;
  switch (m.msg_case()) {
    case M::kReconnectIns:
      return json{{"kind", "reconnect_ins"}, {"seconds", m.reconnect_ins().seconds()}};
    case M::kGetPropertiesIns: {
      TOOL_ASSIGN(config, MapJson(m.get_properties_ins().config()));
      return json{{"kind", "get_properties_ins"}, {"config", config}};
    }
    case M::kGetParametersIns: {
      TOOL_ASSIGN(config, MapJson(m.get_parameters_ins().config()));
      return json{{"kind", "get_parameters_ins"}, {"config", config}};
    }
    case M::kFitIns: {
      TOOL_ASSIGN(config, MapJson(m.fit_ins().config()));
      TOOL_ASSIGN(params, TensorsJson(m.fit_ins().parameters()));
      return json{{"kind", "fit_ins"}, {"config", config}, {"parameters", params}};
    }
    case M::kEvaluateIns: {
      TOOL_ASSIGN(config, MapJson(m.evaluate_ins().config()));
      TOOL_ASSIGN(params, TensorsJson(m.evaluate_ins().parameters()));
      return json{{"kind", "evaluate_ins"}, {"config", config}, {"parameters", params}};
    }
    case M::MSG_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("ServerMessage has no msg set");
}

absl::StatusOr<json> InspectClient(const flwr::proto::ClientMessage& m) {
  using M = flwr::proto::ClientMessage;
  switch (m.msg_case()) {
    case M::kDisconnectRes:
      return json{{"kind", "disconnect_res"}, {"reason", static_cast<int>(m.disconnect_res().reason())}};
    case M::kGetPropertiesRes: {
      TOOL_ASSIGN(props, MapJson(m.get_properties_res().properties()));
      return json{{"kind", "get_properties_res"},
                  {"status", StatusJson(m.get_properties_res().status())},
                  {"properties", props}};
    }
    case M::kGetParametersRes: {
      TOOL_ASSIGN(params, TensorsJson(m.get_parameters_res().parameters()));
      return json{{"kind", "get_parameters_res"},
                  {"status", StatusJson(m.get_parameters_res().status())},
                  {"parameters", params}};
    }
    case M::kFitRes: {
      TOOL_ASSIGN(metrics, MapJson(m.fit_res().metrics()));
      TOOL_ASSIGN(params, TensorsJson(m.fit_res().parameters()));
      return json{{"kind", "fit_res"},
                  {"status", StatusJson(m.fit_res().status())},
                  {"parameters", params},
                  {"num_examples", m.fit_res().num_examples()},
                  {"metrics", metrics}};
    }
    case M::kEvaluateRes: {
      TOOL_ASSIGN(metrics, MapJson(m.evaluate_res().metrics()));
      return json{{"kind", "evaluate_res"},
                  {"status", StatusJson(m.evaluate_res().status())},
                  {"loss", m.evaluate_res().loss()},
                  {"num_examples", m.evaluate_res().num_examples()},
                  {"metrics", metrics}};
    }
    case M::MSG_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("ClientMessage has no msg set");
}

void SetStatus(const json& spec, flwr::proto::Status* s) {
  s->set_code(static_cast<flwr::proto::Code>(spec.at("status").at("code").get<int>()));
  s->set_message(spec.at("status").at("message").get<std::string>());
}

absl::Status BuildClient(const json& spec, flwr::proto::ClientMessage* m) {
  const std::string kind = spec.at("kind");
  if (kind == "disconnect_res") {
    m->mutable_disconnect_res()->set_reason(static_cast<flwr::proto::Reason>(spec.at("reason").get<int>()));
    return absl::OkStatus();
  }
  if (kind == "fit_res") {
    auto* r = m->mutable_fit_res();
    SetStatus(spec, r->mutable_status());
    TOOL_ASSIGN(params, TensorsFromJson(spec.at("tensors")));
    *r->mutable_parameters() = std::move(params);
    r->set_num_examples(spec.at("num_examples").get<int64_t>());
    TOOL_ASSIGN(metrics, MapFromJson(spec.at("metrics")));
    petal::common::ConfigMapToProto(metrics, r->mutable_metrics());
    return absl::OkStatus();
  }
  if (kind == "evaluate_res") {
    auto* r = m->mutable_evaluate_res();
    SetStatus(spec, r->mutable_status());
    r->set_loss(spec.at("loss").get<float>());
    r->set_num_examples(spec.at("num_examples").get<int64_t>());
    TOOL_ASSIGN(metrics, MapFromJson(spec.at("metrics")));
    petal::common::ConfigMapToProto(metrics, r->mutable_metrics());
    return absl::OkStatus();
  }
  if (kind == "get_parameters_res") {
    auto* r = m->mutable_get_parameters_res();
    SetStatus(spec, r->mutable_status());
    TOOL_ASSIGN(params, TensorsFromJson(spec.at("tensors")));
    *r->mutable_parameters() = std::move(params);
    return absl::OkStatus();
  }
  if (kind == "get_properties_res") {
    auto* r = m->mutable_get_properties_res();
    SetStatus(spec, r->mutable_status());
    TOOL_ASSIGN(props, MapFromJson(spec.at("properties")));
    petal::common::ConfigMapToProto(props, r->mutable_properties());
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown ClientMessage kind " + kind);
}

absl::Status BuildServer(const json& spec, flwr::proto::ServerMessage* m) {
  const std::string kind = spec.at("kind");
  if (kind == "reconnect_ins") {
    m->mutable_reconnect_ins()->set_seconds(spec.at("seconds").get<int64_t>());
    return absl::OkStatus();
  }
  if (kind == "fit_ins" || kind == "evaluate_ins") {
    TOOL_ASSIGN(params, TensorsFromJson(spec.at("tensors")));
    TOOL_ASSIGN(config, MapFromJson(spec.at("config")));
    if (kind == "fit_ins") {
      *m->mutable_fit_ins()->mutable_parameters() = std::move(params);
      petal::common::ConfigMapToProto(config, m->mutable_fit_ins()->mutable_config());
    } else {
      *m->mutable_evaluate_ins()->mutable_parameters() = std::move(params);
      petal::common::ConfigMapToProto(config, m->mutable_evaluate_ins()->mutable_config());
    }
    return absl::OkStatus();
  }
  if (kind == "get_parameters_ins" || kind == "get_properties_ins") {
    TOOL_ASSIGN(config, MapFromJson(spec.at("config")));
    petal::common::ConfigMapToProto(config, kind == "get_parameters_ins"
                                                ? m->mutable_get_parameters_ins()->mutable_config()
                                                : m->mutable_get_properties_ins()->mutable_config());
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown ServerMessage kind " + kind);
}

std::string SerializeDeterministic(const Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

int Run(int argc, char** argv) {
  if (argc < 3) return Fail("usage: see the header of tests/tools/proto_tool.cc");
  const std::string cmd = argv[1];
  if (cmd == "descriptor") {
    google::protobuf::FileDescriptorProto fdp;
    flwr::proto::ServerMessage::descriptor()->file()->CopyTo(&fdp);
    return WriteFile(argv[2], fdp.SerializeAsString()) ? 0 : Fail("cannot write output");
  }
  if (argc < 4) return Fail("missing arguments");
  std::unique_ptr<Message> msg = NewMessage(argv[2]);
  if (msg == nullptr) return Fail(std::string("unknown type ") + argv[2]);
  std::string input;
  if (!ReadFile(argv[3], &input)) return Fail(std::string("cannot read ") + argv[3]);

  if (cmd == "tojson" || cmd == "inspect") {
    if (!msg->ParseFromString(input)) return Fail("parse error");
    std::string unknown = FindUnknownFields(*msg, "");
    if (!unknown.empty()) return Fail("unknown fields at " + unknown);
    if (cmd == "tojson") {
      std::string out;
      google::protobuf::util::JsonPrintOptions opts;
      opts.preserve_proto_field_names = true;
      auto st = google::protobuf::util::MessageToJsonString(*msg, &out, opts);
      if (!st.ok()) return Fail(st.ToString());
      std::cout << out << "\n";
      return 0;
    }
    absl::StatusOr<json> j = std::string(argv[2]) == "ServerMessage"
                                 ? InspectServer(static_cast<flwr::proto::ServerMessage&>(*msg))
                                 : InspectClient(static_cast<flwr::proto::ClientMessage&>(*msg));
    if (!j.ok()) return Fail(j.status().ToString());
    std::cout << j->dump() << "\n";
    return 0;
  }
  if (argc < 5) return Fail("missing output path");
  if (cmd == "fromjson") {
    auto st = google::protobuf::util::JsonStringToMessage(input, msg.get());
    if (!st.ok()) return Fail(st.ToString());
    return WriteFile(argv[4], SerializeDeterministic(*msg)) ? 0 : Fail("cannot write output");
  }
  if (cmd == "build") {
    json spec = json::parse(input);
    absl::Status st = std::string(argv[2]) == "ServerMessage"
                          ? BuildServer(spec, static_cast<flwr::proto::ServerMessage*>(msg.get()))
                          : BuildClient(spec, static_cast<flwr::proto::ClientMessage*>(msg.get()));
    if (!st.ok()) return Fail(st.ToString());
    return WriteFile(argv[4], SerializeDeterministic(*msg)) ? 0 : Fail("cannot write output");
  }
  return Fail("unknown command " + cmd);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {  // nlohmann::json errors on a malformed spec
    return Fail(std::string("error: ") + e.what());
  }
}
