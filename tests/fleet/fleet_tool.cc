// petal_fleet_tool: lets the Python interop tests drive Petal's Fleet API
// codecs from the outside, with Flower's own classes on the other end.
//
//   petal_fleet_tool descriptors OUT
//       writes a FileDescriptorSet of Petal's compiled Fleet API protos
//   petal_fleet_tool deflate SPEC.json OUT.json [CHUNK_SIZE]
//       builds the Message SPEC describes and writes its objects:
//       {"message_id", "objects": {id: hex}, "tree": {"id", "children": [...]}}
//   petal_fleet_tool inflate OBJECTS.json OUT.json
//       rebuilds a Message from {"tree", "objects"} and writes its SPEC
//
// SPEC: {"metadata": {run_id, message_id, src_node_id, dst_node_id,
// reply_to_message_id, group_id, ttl_bits, message_type, created_at_bits,
// [src_task_id], [dst_task_id]}, and "content": [records] or "error":
// {code, reason}}. A record is {"key", "kind": "array"|"config"|"metric",
// "items": [...]}: arrays {"key", "dtype", "shape", "stype", "data_hex"},
// values {"key", "type", "value"} with doubles as the hex of their
// little-endian IEEE bits and bytes as hex. Exit code 2 on any error.
#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "client/fleet/objects.h"
#include "common/status_macros.h"
#include "flwr/proto/fab.pb.h"
#include "flwr/proto/fleet.pb.h"
#include "flwr/proto/heartbeat.pb.h"
#include "flwr/proto/run.pb.h"

namespace petal::client::fleet {
namespace {

namespace proto = ::flwr::proto;
using Json = nlohmann::ordered_json;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

absl::StatusOr<std::string> Unhex(const std::string& hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("odd hex length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("bad hex");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string DoubleBits(double d) {
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &d, 8);
  return Hex(bytes);
}

absl::StatusOr<double> BitsDouble(const std::string& hex) {
  PETAL_ASSIGN_OR_RETURN(std::string bytes, Unhex(hex));
  if (bytes.size() != 8) return absl::InvalidArgumentError("double bits must be 8 bytes");
  double d;
  std::memcpy(&d, bytes.data(), 8);
  return d;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read {}", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  if (!out) return absl::InternalError(fmt::format("cannot write {}", path));
  return absl::OkStatus();
}

// --- spec -> proto ---------------------------------------------------------------

template <typename Value>
absl::Status SetValue(const Json& spec, Value* v) {
  const std::string type = spec.at("type").get<std::string>();
  const Json& value = spec.at("value");
  if (type == "double") {
    PETAL_ASSIGN_OR_RETURN(double d, BitsDouble(value.get<std::string>()));
    v->set_double_(d);
  } else if (type == "sint64") {
    v->set_sint64(value.get<int64_t>());
  } else if (type == "uint64") {
    v->set_uint64(value.get<uint64_t>());
  } else if (type == "double_list") {
    auto* list = v->mutable_double_list();
    for (const auto& e : value) {
      PETAL_ASSIGN_OR_RETURN(double d, BitsDouble(e.get<std::string>()));
      list->add_vals(d);
    }
  } else if (type == "sint_list") {
    for (const auto& e : value) v->mutable_sint_list()->add_vals(e.get<int64_t>());
  } else if (type == "uint_list") {
    for (const auto& e : value) v->mutable_uint_list()->add_vals(e.get<uint64_t>());
  } else if constexpr (std::is_same_v<Value, proto::ConfigRecordValue>) {
    if (type == "bool") {
      v->set_bool_(value.get<bool>());
    } else if (type == "string") {
      v->set_string(value.get<std::string>());
    } else if (type == "bytes") {
      PETAL_ASSIGN_OR_RETURN(*v->mutable_bytes(), Unhex(value.get<std::string>()));
    } else if (type == "bool_list") {
      for (const auto& e : value) v->mutable_bool_list()->add_vals(e.get<bool>());
    } else if (type == "string_list") {
      for (const auto& e : value) v->mutable_string_list()->add_vals(e.get<std::string>());
    } else if (type == "bytes_list") {
      for (const auto& e : value) {
        PETAL_ASSIGN_OR_RETURN(std::string b, Unhex(e.get<std::string>()));
        v->mutable_bytes_list()->add_vals(b);
      }
    } else {
      return absl::InvalidArgumentError(fmt::format("unknown config value type {}", type));
    }
  } else {
    return absl::InvalidArgumentError(fmt::format("unknown metric value type {}", type));
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::Message> MessageFromSpec(const Json& spec) {
  proto::Message m;
  const Json& md = spec.at("metadata");
  auto* meta = m.mutable_metadata();
  meta->set_run_id(md.at("run_id").get<uint64_t>());
  meta->set_message_id(md.at("message_id").get<std::string>());
  meta->set_src_node_id(md.at("src_node_id").get<uint64_t>());
  meta->set_dst_node_id(md.at("dst_node_id").get<uint64_t>());
  meta->set_reply_to_message_id(md.at("reply_to_message_id").get<std::string>());
  meta->set_group_id(md.at("group_id").get<std::string>());
  PETAL_ASSIGN_OR_RETURN(double ttl, BitsDouble(md.at("ttl_bits").get<std::string>()));
  meta->set_ttl(ttl);
  meta->set_message_type(md.at("message_type").get<std::string>());
  PETAL_ASSIGN_OR_RETURN(double created, BitsDouble(md.at("created_at_bits").get<std::string>()));
  meta->set_created_at(created);
  if (md.contains("src_task_id")) meta->set_src_task_id(md.at("src_task_id").get<uint64_t>());
  if (md.contains("dst_task_id")) meta->set_dst_task_id(md.at("dst_task_id").get<uint64_t>());
  if (spec.contains("error")) {
    m.mutable_error()->set_code(spec.at("error").at("code").get<int64_t>());
    m.mutable_error()->set_reason(spec.at("error").at("reason").get<std::string>());
    return m;
  }
  auto* content = m.mutable_content();
  for (const auto& record : spec.at("content")) {
    auto* item = content->add_items();
    item->set_key(record.at("key").get<std::string>());
    const std::string kind = record.at("kind").get<std::string>();
    if (kind == "array") {
      auto* ar = item->mutable_array_record();
      for (const auto& a : record.at("items")) {
        auto* ai = ar->add_items();
        ai->set_key(a.at("key").get<std::string>());
        auto* array = ai->mutable_value();
        array->set_dtype(a.at("dtype").get<std::string>());
        for (const auto& d : a.at("shape")) array->add_shape(d.get<int32_t>());
        array->set_stype(a.at("stype").get<std::string>());
        PETAL_ASSIGN_OR_RETURN(*array->mutable_data(), Unhex(a.at("data_hex").get<std::string>()));
      }
    } else if (kind == "config") {
      auto* cr = item->mutable_config_record();
      for (const auto& v : record.at("items")) {
        auto* ci = cr->add_items();
        ci->set_key(v.at("key").get<std::string>());
        PETAL_RETURN_IF_ERROR(SetValue(v, ci->mutable_value()));
      }
    } else if (kind == "metric") {
      auto* mr = item->mutable_metric_record();
      for (const auto& v : record.at("items")) {
        auto* mi = mr->add_items();
        mi->set_key(v.at("key").get<std::string>());
        PETAL_RETURN_IF_ERROR(SetValue(v, mi->mutable_value()));
      }
    } else {
      return absl::InvalidArgumentError(fmt::format("unknown record kind {}", kind));
    }
  }
  return m;
}

// --- proto -> spec ---------------------------------------------------------------

template <typename Value>
Json ValueSpec(const std::string& key, const Value& v) {
  Json out;
  out["key"] = key;
  auto list = [](const auto& vals, auto f) {
    Json a = Json::array();
    for (const auto& e : vals) a.push_back(f(e));
    return a;
  };
  auto ident = [](const auto& e) { return e; };
  switch (v.value_case()) {
    case Value::kDouble:
      out["type"] = "double";
      out["value"] = DoubleBits(v.double_());
      break;
    case Value::kSint64:
      out["type"] = "sint64";
      out["value"] = v.sint64();
      break;
    case Value::kUint64:
      out["type"] = "uint64";
      out["value"] = v.uint64();
      break;
    case Value::kDoubleList:
      out["type"] = "double_list";
      out["value"] = list(v.double_list().vals(), [](double d) { return DoubleBits(d); });
      break;
    case Value::kSintList:
      out["type"] = "sint_list";
      out["value"] = list(v.sint_list().vals(), ident);
      break;
    case Value::kUintList:
      out["type"] = "uint_list";
      out["value"] = list(v.uint_list().vals(), ident);
      break;
    default:
      if constexpr (std::is_same_v<Value, proto::ConfigRecordValue>) {
        switch (v.value_case()) {
          case Value::kBool:
            out["type"] = "bool";
            out["value"] = v.bool_();
            break;
          case Value::kString:
            out["type"] = "string";
            out["value"] = v.string();
            break;
          case Value::kBytes:
            out["type"] = "bytes";
            out["value"] = Hex(v.bytes());
            break;
          case Value::kBoolList:
            out["type"] = "bool_list";
            out["value"] = list(v.bool_list().vals(), [](bool b) { return b; });
            break;
          case Value::kStringList:
            out["type"] = "string_list";
            out["value"] = list(v.string_list().vals(), ident);
            break;
          case Value::kBytesList:
            out["type"] = "bytes_list";
            out["value"] = list(v.bytes_list().vals(), [](const std::string& b) { return Hex(b); });
            break;
          default:
            out["type"] = "none";
        }
      } else {
        out["type"] = "none";
      }
  }
  return out;
}

Json SpecFromMessage(const proto::Message& m) {
  Json spec;
  const auto& meta = m.metadata();
  Json md;
  md["run_id"] = meta.run_id();
  md["message_id"] = meta.message_id();
  md["src_node_id"] = meta.src_node_id();
  md["dst_node_id"] = meta.dst_node_id();
  md["reply_to_message_id"] = meta.reply_to_message_id();
  md["group_id"] = meta.group_id();
  md["ttl_bits"] = DoubleBits(meta.ttl());
  md["message_type"] = meta.message_type();
  md["created_at_bits"] = DoubleBits(meta.created_at());
  if (meta.has_src_task_id()) md["src_task_id"] = meta.src_task_id();
  if (meta.has_dst_task_id()) md["dst_task_id"] = meta.dst_task_id();
  spec["metadata"] = md;
  if (m.has_error()) {
    spec["error"] = Json{{"code", m.error().code()}, {"reason", m.error().reason()}};
    return spec;
  }
  Json content = Json::array();
  for (const auto& item : m.content().items()) {
    Json record;
    record["key"] = item.key();
    Json items = Json::array();
    if (item.has_array_record()) {
      record["kind"] = "array";
      for (const auto& a : item.array_record().items()) {
        Json shape = Json::array();
        for (int32_t d : a.value().shape()) shape.push_back(d);
        items.push_back(Json{{"key", a.key()},
                             {"dtype", a.value().dtype()},
                             {"shape", shape},
                             {"stype", a.value().stype()},
                             {"data_hex", Hex(a.value().data())}});
      }
    } else if (item.has_config_record()) {
      record["kind"] = "config";
      for (const auto& c : item.config_record().items())
        items.push_back(ValueSpec(c.key(), c.value()));
    } else {
      record["kind"] = "metric";
      for (const auto& c : item.metric_record().items())
        items.push_back(ValueSpec(c.key(), c.value()));
    }
    record["items"] = items;
    content.push_back(record);
  }
  spec["content"] = content;
  return spec;
}

Json TreeJson(const proto::ObjectTree& tree) {
  Json children = Json::array();
  for (const auto& c : tree.children()) children.push_back(TreeJson(c));
  return Json{{"id", tree.object_id()}, {"children", children}};
}

proto::ObjectTree TreeFromJson(const Json& json) {
  proto::ObjectTree tree;
  tree.set_object_id(json.at("id").get<std::string>());
  for (const auto& c : json.at("children")) *tree.add_children() = TreeFromJson(c);
  return tree;
}

// --- commands ---------------------------------------------------------------------

absl::Status Descriptors(const std::string& out) {
  // Reference each generated file so the linker keeps it.
  const google::protobuf::Descriptor* anchors[] = {
      proto::RegisterNodeFleetRequest::descriptor(), proto::Message::descriptor(),
      proto::SendNodeHeartbeatRequest::descriptor(), proto::GetRunRequest::descriptor(),
      proto::GetFabRequest::descriptor()};
  (void)anchors;
  google::protobuf::FileDescriptorSet set;
  for (const char* name :
       {"flwr/proto/error.proto", "flwr/proto/node.proto", "flwr/proto/recorddict.proto",
        "flwr/proto/message.proto", "flwr/proto/heartbeat.proto", "flwr/proto/run.proto",
        "flwr/proto/fab.proto", "flwr/proto/fleet.proto"}) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
    if (file == nullptr) return absl::NotFoundError(fmt::format("{} is not compiled in", name));
    file->CopyTo(set.add_file());
  }
  return WriteFile(out, set.SerializeAsString());
}

absl::Status Deflate(const std::string& in, const std::string& out, size_t chunk_size) {
  PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(in));
  PETAL_ASSIGN_OR_RETURN(proto::Message message, MessageFromSpec(Json::parse(text)));
  PETAL_ASSIGN_OR_RETURN(DeflatedMessage d, DeflateMessage(message, chunk_size));
  Json objects = Json::object();
  for (const auto& o : d.objects) objects[o.id] = Hex(o.content);
  Json order = Json::array();
  for (const auto& o : d.objects) order.push_back(o.id);
  Json result{{"message_id", d.message_id},
              {"objects", objects},
              {"order", order},
              {"tree", TreeJson(d.tree)}};
  return WriteFile(out, result.dump());
}

absl::Status Inflate(const std::string& in, const std::string& out) {
  PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(in));
  Json json = Json::parse(text);
  ObjectContents contents;
  for (auto& [id, hex] : json.at("objects").items()) {
    PETAL_ASSIGN_OR_RETURN(contents[id], Unhex(hex.get<std::string>()));
  }
  PETAL_ASSIGN_OR_RETURN(proto::Message message,
                         InflateMessage(TreeFromJson(json.at("tree")), contents));
  return WriteFile(out, SpecFromMessage(message).dump());
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: petal_fleet_tool descriptors OUT | deflate SPEC OUT [CHUNK] | inflate "
                 "OBJECTS OUT\n";
    return 2;
  }
  const std::string command = argv[1];
  absl::Status status;
  try {
    if (command == "descriptors") {
      status = Descriptors(argv[2]);
    } else if (command == "deflate" && argc >= 4) {
      status = Deflate(argv[2], argv[3], argc >= 5 ? std::stoul(argv[4]) : kDefaultChunkSize);
    } else if (command == "inflate" && argc >= 4) {
      status = Inflate(argv[2], argv[3]);
    } else {
      status = absl::InvalidArgumentError(fmt::format("unknown command {}", command));
    }
  } catch (const std::exception& e) {
    status = absl::InvalidArgumentError(fmt::format("bad JSON spec: {}", e.what()));
  }
  if (!status.ok()) {
    std::cerr << status << "\n";
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace petal::client::fleet

int main(int argc, char** argv) { return petal::client::fleet::Main(argc, argv); }
