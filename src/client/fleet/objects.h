// File: objects.h
//
// Flower's content-addressed objects ("inflatable objects"), byte for byte:
// how a Message and its content are split into objects for the SuperLink's
// object store, what each object's id is, and how a message is rebuilt from
// objects pulled from the store.
//
//   PETAL_ASSIGN_OR_RETURN(DeflatedMessage d, DeflateMessage(reply));
//   // push d.tree with the reply, then push the objects the SuperLink asks for
//   PETAL_ASSIGN_OR_RETURN(flwr::proto::Message m, InflateMessage(tree, contents));
//
// An object is `head 0x00 body`, head = "<Type> <child ids joined by ','>
// <body length>" (UTF-8), and its id is the lowercase hex SHA-256 of the whole
// object. Types and bodies (flwr 1.19 .. 1.42):
//   Message      deterministic protobuf Message {metadata with message_id "",
//                error if any}; child: its RecordDict when it has content
//   RecordDict   JSON {record name: record id}       children: unique record ids
//   ArrayRecord  JSON {array name: Array id}         children: unique Array ids
//   Array        JSON {"dtype", "shape", "stype", "arraychunk_ids": [index into
//                the head's children]}               children: unique chunk ids
//   ArrayChunk   a raw slice of Array.data (chunk_size bytes, last one shorter)
//   ConfigRecord / MetricRecord   serialized protobuf record, no children
// JSON is written exactly as Python's json.dumps with default arguments
// (", " and ": " separators, non-ASCII escaped as \uXXXX).
// All functions are thread-safe; errors are InvalidArgument naming the object.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "flwr/proto/message.pb.h"

namespace petal::client::fleet {

// Flower's default ArrayChunk size (FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE).
inline constexpr size_t kDefaultChunkSize = 5 * 1024 * 1024;

// Lowercase hex SHA-256 of `content`.
std::string ObjectId(std::string_view content);
// True for 64 lowercase-or-uppercase hex digits (Flower accepts either case).
bool IsValidObjectId(std::string_view id);

// "<type> <children joined by ','> <body size>" + '\0' + body.
std::string MakeObject(std::string_view type, const std::vector<std::string>& children,
                       std::string_view body);

struct ObjectHead {
  std::string type;
  std::vector<std::string> children;
  size_t body_offset = 0;  // where the body starts in the object
  size_t body_size = 0;
};
// Parses and checks a head: the NUL divider, three space-separated fields, a
// known type, 64-hex child ids, and a body size equal to what follows.
absl::StatusOr<ObjectHead> ParseObjectHead(std::string_view object);

// `text` (UTF-8) as a JSON string literal the way Python's json.dumps writes
// it. InvalidArgument for malformed UTF-8.
absl::StatusOr<std::string> PythonJsonString(std::string_view text);

// One object ready for the store.
struct StoredObject {
  std::string id;
  std::string content;
};

struct DeflatedMessage {
  std::string message_id;        // id of the Message object (the tree root)
  flwr::proto::ObjectTree tree;  // mirrors the unique children of each object
  // Every distinct object once, children before parents (post-order), so
  // pushing them in this order never pushes a parent before its children.
  std::vector<StoredObject> objects;
};

// Splits `message` (metadata + content or error) into objects. The message's
// metadata.message_id is ignored (it is cleared inside the Message object).
// InvalidArgument if both or neither of content and error are set, if a record
// repeats a key, or if a name is not valid UTF-8. `chunk_size` must be > 0.
absl::StatusOr<DeflatedMessage> DeflateMessage(const flwr::proto::Message& message,
                                               size_t chunk_size = kDefaultChunkSize);

// The distinct object ids of `tree` in post-order (children first).
std::vector<std::string> PostOrderObjectIds(const flwr::proto::ObjectTree& tree);
// Checks that every id in `tree` is valid and the tree is no deeper than a
// Message tree can be (Message > RecordDict > ArrayRecord > Array > ArrayChunk).
absl::Status ValidateObjectTree(const flwr::proto::ObjectTree& tree);

using ObjectContents = std::unordered_map<std::string, std::string>;

// Rebuilds the Message rooted at `tree` from `contents` (id -> object bytes,
// consumed: entries are moved out). Every object must be present, hash to its
// id, name the same set of children in its head as `tree` does (a SuperLink
// does not keep the tree's children in head order; the head's order wins),
// and have the type its position requires; JSON bodies must parse and refer
// only to listed children. The returned message's metadata.message_id is the root id, and it
// has either content or error, as the object says.
absl::StatusOr<flwr::proto::Message> InflateMessage(const flwr::proto::ObjectTree& tree,
                                                    ObjectContents& contents);

}  // namespace petal::client::fleet
