#include "client/fleet/objects.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_set>

#include "client/fleet/records.h"
#include "common/status_macros.h"

namespace petal::client::fleet {
namespace {

using flwr::proto::ObjectTree;
using Json = nlohmann::ordered_json;

constexpr std::string_view kMessage = "Message";
constexpr std::string_view kRecordDict = "RecordDict";
constexpr std::string_view kArrayRecord = "ArrayRecord";
constexpr std::string_view kArray = "Array";
constexpr std::string_view kArrayChunk = "ArrayChunk";
constexpr std::string_view kConfigRecord = "ConfigRecord";
constexpr std::string_view kMetricRecord = "MetricRecord";

// Message > RecordDict > ArrayRecord > Array > ArrayChunk.
constexpr int kMaxTreeDepth = 5;

bool IsKnownType(std::string_view type) {
  return type == kMessage || type == kRecordDict || type == kArrayRecord || type == kArray ||
         type == kArrayChunk || type == kConfigRecord || type == kMetricRecord;
}

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Serializes like Python's SerializeToString(deterministic=True).
std::string SerializeDeterministic(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    message.SerializeWithCachedSizes(&coded);
  }
  return out;
}

// --- deflate ---------------------------------------------------------------

struct Deflated {
  std::string id;
  ObjectTree tree;
};

class Deflater {
 public:
  explicit Deflater(size_t chunk_size) : chunk_size_(chunk_size) {}

  std::vector<StoredObject> TakeObjects() { return std::move(objects_); }

  absl::StatusOr<Deflated> Message(const flwr::proto::Message& message) {
    flwr::proto::Message body_message;
    *body_message.mutable_metadata() = message.metadata();
    body_message.mutable_metadata()->clear_message_id();
    if (message.has_error()) *body_message.mutable_error() = message.error();
    std::vector<Deflated> children;
    if (message.has_content()) {
      PETAL_ASSIGN_OR_RETURN(Deflated content, RecordDict(message.content()));
      children.push_back(std::move(content));
    }
    body_message.ByteSizeLong();  // caches sizes for SerializeWithCachedSizes
    return Finish(kMessage, std::move(children), SerializeDeterministic(body_message));
  }

 private:
  // Builds a JSON object {name: id, ...} the way json.dumps does.
  absl::StatusOr<std::string> RefsJson(
      const std::vector<std::pair<std::string, std::string>>& refs) {
    std::string body = "{";
    bool first = true;
    for (const auto& [name, id] : refs) {
      if (!first) body += ", ";
      first = false;
      PETAL_ASSIGN_OR_RETURN(std::string key, PythonJsonString(name));
      body += key;
      body += ": \"";
      body += id;
      body += '"';
    }
    body += '}';
    return body;
  }

  absl::StatusOr<Deflated> RecordDict(const flwr::proto::RecordDict& dict) {
    PETAL_RETURN_IF_ERROR(ValidateRecordDict(dict));
    std::vector<std::pair<std::string, std::string>> refs;
    std::vector<Deflated> children;
    using Item = flwr::proto::RecordDict::Item;
    for (const auto& item : dict.items()) {
      Deflated child;
      switch (item.value_case()) {
        case Item::kArrayRecord: {
          PETAL_ASSIGN_OR_RETURN(child, ArrayRecord(item.array_record()));
          break;
        }
        case Item::kConfigRecord:
          child = Leaf(kConfigRecord, item.config_record().SerializeAsString());
          break;
        case Item::kMetricRecord:
          child = Leaf(kMetricRecord, item.metric_record().SerializeAsString());
          break;
        case Item::VALUE_NOT_SET:
          return absl::InvalidArgumentError(fmt::format("record '{}' has no value", item.key()));
      }
      refs.emplace_back(item.key(), child.id);
      children.push_back(std::move(child));
    }
    PETAL_ASSIGN_OR_RETURN(std::string body, RefsJson(refs));
    return Finish(kRecordDict, std::move(children), std::move(body));
  }

  absl::StatusOr<Deflated> ArrayRecord(const flwr::proto::ArrayRecord& record) {
    std::vector<std::pair<std::string, std::string>> refs;
    std::vector<Deflated> children;
    for (const auto& item : record.items()) {
      PETAL_ASSIGN_OR_RETURN(Deflated child, Array(item.value()));
      refs.emplace_back(item.key(), child.id);
      children.push_back(std::move(child));
    }
    PETAL_ASSIGN_OR_RETURN(std::string body, RefsJson(refs));
    return Finish(kArrayRecord, std::move(children), std::move(body));
  }

  absl::StatusOr<Deflated> Array(const flwr::proto::Array& array) {
    std::string_view data = array.data();
    std::vector<Deflated> chunks;
    for (size_t start = 0; start < data.size(); start += chunk_size_) {
      chunks.push_back(Leaf(kArrayChunk, data.substr(start, chunk_size_)));
    }
    // Indexes of each chunk into the list of unique chunk ids.
    std::vector<std::string> unique;
    std::string indexes;
    for (const auto& chunk : chunks) {
      auto it = std::find(unique.begin(), unique.end(), chunk.id);
      size_t index = static_cast<size_t>(it - unique.begin());
      if (it == unique.end()) unique.push_back(chunk.id);
      if (!indexes.empty()) indexes += ", ";
      indexes += std::to_string(index);
    }
    std::string shape;
    for (int32_t dim : array.shape()) {
      if (!shape.empty()) shape += ", ";
      shape += std::to_string(dim);
    }
    PETAL_ASSIGN_OR_RETURN(std::string dtype, PythonJsonString(array.dtype()));
    PETAL_ASSIGN_OR_RETURN(std::string stype, PythonJsonString(array.stype()));
    std::string body =
        fmt::format(R"({{"dtype": {}, "shape": [{}], "stype": {}, "arraychunk_ids": [{}]}})", dtype,
                    shape, stype, indexes);
    return Finish(kArray, std::move(chunks), std::move(body));
  }

  Deflated Leaf(std::string_view type, std::string_view body) {
    std::string content = MakeObject(type, {}, body);
    Deflated out;
    out.id = ObjectId(content);
    out.tree.set_object_id(out.id);
    Store(out.id, std::move(content));
    return out;
  }

  // Makes the object whose children are `children` (repeats allowed: the head
  // and the tree list each distinct child once, in first-seen order).
  Deflated Finish(std::string_view type, std::vector<Deflated> children, std::string body) {
    std::vector<std::string> ids;
    Deflated out;
    for (auto& child : children) {
      if (std::find(ids.begin(), ids.end(), child.id) != ids.end()) continue;
      ids.push_back(child.id);
      *out.tree.add_children() = std::move(child.tree);
    }
    std::string content = MakeObject(type, ids, body);
    out.id = ObjectId(content);
    out.tree.set_object_id(out.id);
    Store(out.id, std::move(content));
    return out;
  }

  void Store(const std::string& id, std::string content) {
    if (seen_.insert(id).second) objects_.push_back(StoredObject{id, std::move(content)});
  }

  size_t chunk_size_;
  std::unordered_set<std::string> seen_;
  std::vector<StoredObject> objects_;
};

// --- inflate ---------------------------------------------------------------

class Inflater {
 public:
  Inflater(ObjectContents& contents, const ObjectTree& tree) : contents_(contents) { Count(tree); }

  absl::StatusOr<flwr::proto::Message> Message(const ObjectTree& tree) {
    PETAL_ASSIGN_OR_RETURN(Object object, Take(tree, kMessage));
    flwr::proto::Message message;
    if (!message.ParseFromArray(object.body().data(), static_cast<int>(object.body().size()))) {
      return Bad(tree, "its body is not a protobuf Message");
    }
    if (message.has_content()) return Bad(tree, "its body carries content inline");
    if (message.has_error()) {
      if (!object.head.children.empty())
        return Bad(tree, "it carries an error and also has children");
    } else {
      if (object.head.children.size() != 1) {
        return Bad(tree,
                   fmt::format("it has no error, so it needs exactly one RecordDict child, not {}",
                               object.head.children.size()));
      }
      PETAL_ASSIGN_OR_RETURN(*message.mutable_content(), RecordDict(*object.children[0]));
    }
    message.mutable_metadata()->set_message_id(ToLower(tree.object_id()));
    return message;
  }

 private:
  struct Object {
    std::string content;
    ObjectHead head;
    std::vector<const ObjectTree*> children;  // subtrees in head order
    std::string_view body() const {
      return std::string_view(content).substr(head.body_offset, head.body_size);
    }
  };

  static absl::Status Bad(const ObjectTree& tree, std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("object {}: {}", tree.object_id(), why));
  }

  // How often each id occurs in the tree: an object shared by several parents
  // is inflated once and cached until its last occurrence.
  void Count(const ObjectTree& tree) {
    ++remaining_[tree.object_id()];
    for (const auto& child : tree.children()) Count(child);
  }
  bool LastUse(const std::string& id) { return --remaining_[id] <= 0; }

  // Returns the cached value for `id`, moving it out on its last use; null if
  // it is not cached.
  template <typename T>
  std::optional<T> FromCache(std::unordered_map<std::string, T>& cache, const std::string& id) {
    auto it = cache.find(id);
    if (it == cache.end()) return std::nullopt;
    if (LastUse(id)) {
      T value = std::move(it->second);
      cache.erase(it);
      return value;
    }
    return it->second;
  }
  // Caches `value` when `id` occurs again later in the tree.
  template <typename T>
  T Remember(std::unordered_map<std::string, T>& cache, const std::string& id, T value) {
    if (!LastUse(id)) cache.emplace(id, value);
    return value;
  }

  // Removes the object from `contents_`, checks its hash, head, type and that
  // its head names the same children as the tree (the SuperLink does not keep
  // the tree's children in head order, so they are matched by id; the head's
  // order is authoritative).
  absl::StatusOr<Object> Take(const ObjectTree& tree, std::string_view type) {
    auto it = contents_.find(tree.object_id());
    if (it == contents_.end()) return Bad(tree, "missing from the pulled objects");
    Object object;
    object.content = std::move(it->second);
    contents_.erase(it);
    if (ObjectId(object.content) != ToLower(tree.object_id())) {
      return Bad(tree, "its content does not hash to its id");
    }
    absl::StatusOr<ObjectHead> head = ParseObjectHead(object.content);
    if (!head.ok()) return Bad(tree, std::string(head.status().message()));
    object.head = *std::move(head);
    if (object.head.type != type) {
      return Bad(tree, fmt::format("expected a {} here, found a {}", type, object.head.type));
    }
    if (static_cast<int>(object.head.children.size()) != tree.children_size()) {
      return Bad(tree, fmt::format("its head names {} children but the object tree has {}",
                                   object.head.children.size(), tree.children_size()));
    }
    std::unordered_map<std::string, const ObjectTree*> by_id;
    for (const auto& child : tree.children()) {
      if (!by_id.emplace(ToLower(child.object_id()), &child).second) {
        return Bad(tree, fmt::format("the object tree lists child {} twice", child.object_id()));
      }
    }
    for (const std::string& id : object.head.children) {
      auto found = by_id.find(ToLower(id));
      if (found == by_id.end()) {
        return Bad(tree, fmt::format("child {} named in its head is not in the object tree", id));
      }
      object.children.push_back(found->second);
    }
    return object;
  }

  // Parses a {name: child id} JSON body; every value must be one of the head's
  // children and every child must be referred to.
  absl::StatusOr<std::vector<std::pair<std::string, size_t>>> Refs(const ObjectTree& tree,
                                                                   const Object& object) {
    Json json = Json::parse(object.body(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) return Bad(tree, "its body is not a JSON object");
    std::vector<std::pair<std::string, size_t>> refs;
    std::vector<bool> used(object.head.children.size(), false);
    for (auto& [name, value] : json.items()) {
      if (!value.is_string()) return Bad(tree, fmt::format("entry '{}' is not an object id", name));
      const auto& id = value.template get_ref<const std::string&>();
      auto pos = std::find(object.head.children.begin(), object.head.children.end(), id);
      if (pos == object.head.children.end()) {
        return Bad(tree, fmt::format("entry '{}' refers to {}, which is not among its children",
                                     name, id));
      }
      size_t index = static_cast<size_t>(pos - object.head.children.begin());
      used[index] = true;
      refs.emplace_back(name, index);
    }
    for (size_t i = 0; i < used.size(); ++i) {
      if (!used[i])
        return Bad(tree, fmt::format("child {} is not referred to", object.head.children[i]));
    }
    return refs;
  }

  absl::StatusOr<flwr::proto::RecordDict> RecordDict(const ObjectTree& tree) {
    PETAL_ASSIGN_OR_RETURN(Object object, Take(tree, kRecordDict));
    PETAL_ASSIGN_OR_RETURN(auto refs, Refs(tree, object));
    std::vector<flwr::proto::RecordDict::Item> records;
    for (const ObjectTree* child : object.children) {
      PETAL_ASSIGN_OR_RETURN(flwr::proto::RecordDict::Item record, Record(*child));
      records.push_back(std::move(record));
    }
    std::vector<int> uses(records.size(), 0);
    for (const auto& ref : refs) ++uses[ref.second];
    flwr::proto::RecordDict dict;
    for (auto& [name, index] : refs) {
      auto* item = dict.add_items();
      if (--uses[index] == 0) {
        *item = std::move(records[index]);
      } else {
        *item = records[index];
      }
      item->set_key(name);
    }
    return dict;
  }

  // One record (the item's key is left empty).
  absl::StatusOr<flwr::proto::RecordDict::Item> Record(const ObjectTree& tree) {
    const std::string& id = tree.object_id();
    if (auto cached = FromCache(records_, id)) return *std::move(cached);
    auto it = contents_.find(id);
    if (it == contents_.end()) return Bad(tree, "missing from the pulled objects");
    absl::StatusOr<ObjectHead> head = ParseObjectHead(it->second);
    if (!head.ok()) return Bad(tree, std::string(head.status().message()));
    flwr::proto::RecordDict::Item record;
    if (head->type == kArrayRecord) {
      PETAL_ASSIGN_OR_RETURN(*record.mutable_array_record(), ArrayRecord(tree));
    } else if (head->type == kConfigRecord || head->type == kMetricRecord) {
      PETAL_ASSIGN_OR_RETURN(Object leaf, Take(tree, head->type));
      google::protobuf::MessageLite* body =
          head->type == kConfigRecord
              ? static_cast<google::protobuf::MessageLite*>(record.mutable_config_record())
              : record.mutable_metric_record();
      if (!body->ParseFromArray(leaf.body().data(), static_cast<int>(leaf.body().size()))) {
        return Bad(tree, fmt::format("its body is not a protobuf {}", head->type));
      }
    } else {
      return Bad(tree, fmt::format("a RecordDict cannot hold a {}", head->type));
    }
    return Remember(records_, id, std::move(record));
  }

  absl::StatusOr<flwr::proto::ArrayRecord> ArrayRecord(const ObjectTree& tree) {
    PETAL_ASSIGN_OR_RETURN(Object object, Take(tree, kArrayRecord));
    PETAL_ASSIGN_OR_RETURN(auto refs, Refs(tree, object));
    std::vector<flwr::proto::Array> arrays;
    for (const ObjectTree* child : object.children) {
      PETAL_ASSIGN_OR_RETURN(flwr::proto::Array array, Array(*child));
      arrays.push_back(std::move(array));
    }
    std::vector<int> uses(arrays.size(), 0);
    for (const auto& ref : refs) ++uses[ref.second];
    flwr::proto::ArrayRecord record;
    for (auto& [name, index] : refs) {
      auto* item = record.add_items();
      item->set_key(name);
      // The last use takes the bytes instead of copying them.
      if (--uses[index] == 0) {
        *item->mutable_value() = std::move(arrays[index]);
      } else {
        *item->mutable_value() = arrays[index];
      }
    }
    return record;
  }

  absl::StatusOr<flwr::proto::Array> Array(const ObjectTree& tree) {
    const std::string& id = tree.object_id();
    if (auto cached = FromCache(arrays_, id)) return *std::move(cached);
    PETAL_ASSIGN_OR_RETURN(Object object, Take(tree, kArray));
    Json json = Json::parse(object.body(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) return Bad(tree, "its body is not a JSON object");
    auto field = [&](const char* name) -> const Json* {
      auto it = json.find(name);
      return it == json.end() ? nullptr : &*it;
    };
    const Json* dtype = field("dtype");
    const Json* shape = field("shape");
    const Json* stype = field("stype");
    const Json* chunk_ids = field("arraychunk_ids");
    if (dtype == nullptr || !dtype->is_string() || stype == nullptr || !stype->is_string() ||
        shape == nullptr || !shape->is_array() || chunk_ids == nullptr || !chunk_ids->is_array()) {
      return Bad(tree, "its body lacks dtype/shape/stype/arraychunk_ids of the right types");
    }
    flwr::proto::Array array;
    array.set_dtype(dtype->get<std::string>());
    array.set_stype(stype->get<std::string>());
    for (const auto& dim : *shape) {
      if (!dim.is_number_integer() || dim.get<int64_t>() < 0 ||
          dim.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return Bad(tree, "its shape holds something other than a non-negative int32");
      }
      array.add_shape(static_cast<int32_t>(dim.get<int64_t>()));
    }
    std::vector<std::string> chunks;
    for (const ObjectTree* child : object.children) {
      PETAL_ASSIGN_OR_RETURN(std::string chunk, Chunk(*child));
      chunks.push_back(std::move(chunk));
    }
    std::vector<bool> used(chunks.size(), false);
    std::vector<size_t> order;
    size_t total = 0;
    for (const auto& index : *chunk_ids) {
      if (!index.is_number_integer() || index.get<int64_t>() < 0 ||
          index.get<int64_t>() >= static_cast<int64_t>(chunks.size())) {
        return Bad(tree, "arraychunk_ids holds an index outside its children");
      }
      size_t i = static_cast<size_t>(index.get<int64_t>());
      used[i] = true;
      order.push_back(i);
      total += chunks[i].size();
    }
    for (size_t i = 0; i < used.size(); ++i) {
      if (!used[i]) return Bad(tree, "one of its chunks is not used");
    }
    std::string* data = array.mutable_data();
    data->reserve(total);
    for (size_t i : order) data->append(chunks[i]);
    return Remember(arrays_, id, std::move(array));
  }

  absl::StatusOr<std::string> Chunk(const ObjectTree& tree) {
    const std::string& id = tree.object_id();
    if (auto cached = FromCache(chunks_, id)) return *std::move(cached);
    PETAL_ASSIGN_OR_RETURN(Object chunk, Take(tree, kArrayChunk));
    return Remember(chunks_, id, std::string(chunk.body()));
  }

  ObjectContents& contents_;
  std::unordered_map<std::string, int> remaining_;
  std::unordered_map<std::string, flwr::proto::RecordDict::Item> records_;
  std::unordered_map<std::string, flwr::proto::Array> arrays_;
  std::unordered_map<std::string, std::string> chunks_;
};

absl::Status ValidateTreeNode(const ObjectTree& tree, int depth) {
  if (depth > kMaxTreeDepth) {
    return absl::InvalidArgumentError(
        fmt::format("object tree is deeper than a Message tree can be ({} levels)", kMaxTreeDepth));
  }
  if (!IsValidObjectId(tree.object_id())) {
    return absl::InvalidArgumentError(
        fmt::format("object tree holds an invalid id '{}'", tree.object_id()));
  }
  for (const auto& child : tree.children())
    PETAL_RETURN_IF_ERROR(ValidateTreeNode(child, depth + 1));
  return absl::OkStatus();
}

void PostOrder(const ObjectTree& tree, std::unordered_set<std::string>* seen,
               std::vector<std::string>* out) {
  for (const auto& child : tree.children()) PostOrder(child, seen, out);
  if (seen->insert(tree.object_id()).second) out->push_back(tree.object_id());
}

}  // namespace

std::string ObjectId(std::string_view content) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  // EVP_Digest cannot fail for SHA-256 with valid pointers.
  EVP_Digest(content.data(), content.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return Hex(digest.data(), size);
}

bool IsValidObjectId(std::string_view id) {
  return id.size() == 64 &&
         std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isxdigit(c); });
}

std::string MakeObject(std::string_view type, const std::vector<std::string>& children,
                       std::string_view body) {
  std::string head = fmt::format("{} {} {}", type, fmt::join(children, ","), body.size());
  std::string out;
  out.reserve(head.size() + 1 + body.size());
  out += head;
  out += '\0';
  out += body;
  return out;
}

absl::StatusOr<ObjectHead> ParseObjectHead(std::string_view object) {
  size_t nul = object.find('\0');
  if (nul == std::string_view::npos) {
    return absl::InvalidArgumentError("object has no NUL byte between head and body");
  }
  std::string_view head = object.substr(0, nul);
  size_t first = head.find(' ');
  size_t second = first == std::string_view::npos ? first : head.find(' ', first + 1);
  if (second == std::string_view::npos || head.find(' ', second + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "object head '{}' is not '<type> <children> <body size>'", head.substr(0, 200)));
  }
  ObjectHead out;
  out.type = std::string(head.substr(0, first));
  if (!IsKnownType(out.type)) {
    return absl::InvalidArgumentError(
        fmt::format("object type '{}' is not supported", out.type.substr(0, 64)));
  }
  std::string_view children = head.substr(first + 1, second - first - 1);
  while (!children.empty()) {
    size_t comma = children.find(',');
    std::string_view id = children.substr(0, comma);
    if (!IsValidObjectId(id)) {
      return absl::InvalidArgumentError(
          fmt::format("object head names an invalid child id '{}'", id.substr(0, 80)));
    }
    out.children.emplace_back(id);
    if (comma == std::string_view::npos) break;
    children.remove_prefix(comma + 1);
    if (children.empty())
      return absl::InvalidArgumentError("object head ends its child list with ','");
  }
  std::string_view size_text = head.substr(second + 1);
  uint64_t size = 0;
  if (size_text.empty() || size_text.size() > 19 ||
      !std::all_of(size_text.begin(), size_text.end(),
                   [](unsigned char c) { return std::isdigit(c); })) {
    return absl::InvalidArgumentError(
        fmt::format("object head has a bad body size '{}'", size_text.substr(0, 32)));
  }
  for (char c : size_text) size = size * 10 + static_cast<uint64_t>(c - '0');
  out.body_offset = nul + 1;
  out.body_size = object.size() - out.body_offset;
  if (size != out.body_size) {
    return absl::InvalidArgumentError(
        fmt::format("object body is {} bytes but its head says {}", out.body_size, size));
  }
  return out;
}

absl::StatusOr<std::string> PythonJsonString(std::string_view text) {
  std::string out = "\"";
  auto escape_unit = [&](uint32_t unit) { out += fmt::format("\\u{:04x}", unit); };
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      len = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      len = 3;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07;
      len = 4;
    } else {
      return absl::InvalidArgumentError(
          fmt::format("invalid UTF-8 byte 0x{:02x} at offset {}", c, i));
    }
    if (i + len > text.size()) return absl::InvalidArgumentError("truncated UTF-8 sequence");
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) {
        return absl::InvalidArgumentError(
            fmt::format("invalid UTF-8 continuation at offset {}", i + k));
      }
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return absl::InvalidArgumentError(fmt::format("invalid UTF-8 code point at offset {}", i));
    }
    i += len;
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      escape_unit(cp);
    } else {
      uint32_t v = cp - 0x10000;
      escape_unit(0xd800 | (v >> 10));
      escape_unit(0xdc00 | (v & 0x3ff));
    }
  }
  out += '"';
  return out;
}

absl::StatusOr<DeflatedMessage> DeflateMessage(const flwr::proto::Message& message,
                                               size_t chunk_size) {
  if (chunk_size == 0) return absl::InvalidArgumentError("chunk size must be > 0");
  if (message.has_content() == message.has_error()) {
    return absl::InvalidArgumentError("a message must carry exactly one of content and error");
  }
  Deflater deflater(chunk_size);
  PETAL_ASSIGN_OR_RETURN(Deflated root, deflater.Message(message));
  DeflatedMessage out;
  out.message_id = root.id;
  out.tree = std::move(root.tree);
  out.objects = deflater.TakeObjects();
  return out;
}

std::vector<std::string> PostOrderObjectIds(const ObjectTree& tree) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  PostOrder(tree, &seen, &out);
  return out;
}

absl::Status ValidateObjectTree(const ObjectTree& tree) { return ValidateTreeNode(tree, 1); }

absl::StatusOr<flwr::proto::Message> InflateMessage(const ObjectTree& tree,
                                                    ObjectContents& contents) {
  PETAL_RETURN_IF_ERROR(ValidateObjectTree(tree));
  Inflater inflater(contents, tree);
  return inflater.Message(tree);
}

}  // namespace petal::client::fleet
