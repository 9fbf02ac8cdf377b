#include "client/fleet/objects.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/fleet/records.h"
#include "common/testing/status_matchers.h"

namespace petal::client::fleet {
namespace {

using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Bytes0To15() {
  std::string data;
  for (int i = 0; i < 16; ++i) data.push_back(static_cast<char>(i));
  return data;
}

flwr::proto::Array GoldenArray() {
  flwr::proto::Array array;
  array.set_dtype("float32");
  array.add_shape(2);
  array.add_shape(2);
  array.set_stype("numpy.ndarray");
  array.set_data(Bytes0To15());
  return array;
}

flwr::proto::ConfigRecord GoldenConfig() {
  flwr::proto::ConfigRecord config;
  AddConfig(&config, "lr", 0.1);
  AddConfig(&config, "server-round", int64_t{1});
  AddConfig(&config, "name", std::string("x"));
  AddConfig(&config, "flag", true);
  return config;
}

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

flwr::proto::Message GoldenMessage() {
  flwr::proto::Message message;
  auto* meta = message.mutable_metadata();
  meta->set_run_id(42);
  meta->set_src_node_id(1);
  meta->set_dst_node_id(1234);
  meta->set_ttl(43200.0);
  meta->set_message_type("train");
  meta->set_created_at(1760000000.0);
  flwr::proto::ArrayRecord arrays;
  auto* item = arrays.add_items();
  item->set_key("w");
  *item->mutable_value() = GoldenArray();
  AddArrayRecord(message.mutable_content(), "arrays", arrays);
  AddConfigRecord(message.mutable_content(), "config", GoldenConfig());
  return message;
}

const StoredObject* Find(const DeflatedMessage& d, const std::string& id) {
  for (const auto& o : d.objects) {
    if (o.id == id) return &o;
  }
  return nullptr;
}

// flower-wire.md C.6 golden vectors, computed with Flower's own Python code.
TEST(ObjectsGoldenTest, ArrayChunkReproducesFlowerId) {
  std::string chunk = MakeObject("ArrayChunk", {}, Bytes0To15());
  EXPECT_EQ(chunk, std::string("ArrayChunk  16\0", 15) + Bytes0To15());
  EXPECT_EQ(ObjectId(chunk), "fa77aef6ab37f7983d78980f43e17fee6a44736e2be0700c7d068e55490e046f");
}

TEST(ObjectsGoldenTest, WholeMessageReproducesFlowerIds) {
  PETAL_ASSERT_OK_AND_ASSIGN(DeflatedMessage d, DeflateMessage(GoldenMessage()));
  EXPECT_EQ(d.message_id, "7b27da8858cc04072f32213d2220c433c08cc7910d86723ca0e3af70b78e3f01");

  const std::string chunk = "fa77aef6ab37f7983d78980f43e17fee6a44736e2be0700c7d068e55490e046f";
  const std::string array = "f94ee0709cfb8f53f162b6f3a4f2bd5e220db0d5bbe7ed061040f6a8e0f6bc7f";
  const std::string array_record =
      "f76a852f40ba5a924e66a0ec314634947948073f424b4cea1d7e6567631dd26d";
  const std::string config = "537e00ef84bc5d8c70752f3cf20e6c3011fb64cb34603ee441704a3da927c258";
  const std::string record_dict =
      "b4f732d72ea1db20615af0450b7caa1c8c15cfd0cd4620642367cdd7c6143fe8";
  std::vector<std::string> ids;
  for (const auto& o : d.objects) ids.push_back(o.id);
  // Children before parents.
  EXPECT_THAT(ids, ElementsAre(chunk, array, array_record, config, record_dict, d.message_id));

  const StoredObject* a = Find(d, array);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(
      a->content,
      "Array " + chunk + " 86" + std::string(1, '\0') +
          R"({"dtype": "float32", "shape": [2, 2], "stype": "numpy.ndarray", "arraychunk_ids": [0]})");
  const StoredObject* c = Find(d, config);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Hex(c->content),
            "436f6e6669675265636f726420203632000a0f0a026c721209099a9999999999b93f0a120a0c7365727665"
            "722d726f756e6412"
            "0210020a0b0a046e616d6512032a01780a0a0a04666c616712022001");
  const StoredObject* m = Find(d, d.message_id);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Hex(m->content.substr(m->content.find('\0') + 1)),
            "0a20082a180120d20939000000000018e5404205747261696e4900000000de39da41");

  // The tree mirrors the unique children.
  EXPECT_EQ(d.tree.object_id(), d.message_id);
  ASSERT_EQ(d.tree.children_size(), 1);
  EXPECT_EQ(d.tree.children(0).object_id(), record_dict);
  ASSERT_EQ(d.tree.children(0).children_size(), 2);
  EXPECT_EQ(d.tree.children(0).children(0).children(0).object_id(), array);
  EXPECT_EQ(d.tree.children(0).children(0).children(0).children(0).object_id(), chunk);
  EXPECT_EQ(d.tree.children(0).children(1).object_id(), config);
}

TEST(ObjectsGoldenTest, MetricRecordAndEmptyArrayReproduceFlowerIds) {
  flwr::proto::Message message = GoldenMessage();
  message.clear_content();
  flwr::proto::MetricRecord metrics;
  AddMetric(&metrics, "num-examples", int64_t{10});
  AddMetric(&metrics, "loss", 0.5);
  AddMetricRecord(message.mutable_content(), "metrics", metrics);
  flwr::proto::ArrayRecord arrays;
  auto* item = arrays.add_items();
  item->set_key("empty");
  item->mutable_value()->set_stype(
      "numpy.ndarray");  // dtype "", shape (), no data: legacy "_empty"
  AddArrayRecord(message.mutable_content(), "arrays", arrays);
  PETAL_ASSERT_OK_AND_ASSIGN(DeflatedMessage d, DeflateMessage(message));
  std::vector<std::string> ids;
  for (const auto& o : d.objects) ids.push_back(o.id);
  EXPECT_THAT(
      ids, ::testing::Contains("774e484fca5b41799eeb0ee11484ef780f1194e442b05cbf3207d51a428f5236"));
  EXPECT_THAT(
      ids, ::testing::Contains("042ae2c3fe558607408886dba71fd83b03604d4a2f544580769f7e186555963a"));
  const StoredObject* empty =
      Find(d, "042ae2c3fe558607408886dba71fd83b03604d4a2f544580769f7e186555963a");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->content,
            std::string("Array  74\0", 10) +
                R"({"dtype": "", "shape": [], "stype": "numpy.ndarray", "arraychunk_ids": []})");
}

TEST(ObjectsTest, RepeatedChunksAndArraysAreStoredOnceAndIndexed) {
  flwr::proto::Array array;
  array.set_dtype("uint8");
  array.add_shape(10);
  array.set_stype("numpy.ndarray");
  array.set_data(std::string(10, '\0'));
  flwr::proto::ArrayRecord arrays;
  for (const char* name : {"a", "b"}) {
    auto* item = arrays.add_items();
    item->set_key(name);
    *item->mutable_value() = array;
  }
  flwr::proto::Message message = GoldenMessage();
  message.clear_content();
  AddArrayRecord(message.mutable_content(), "arrays", arrays);
  // Chunks of 4 bytes: 0000 0000 00 -> two distinct chunks, indexes [0, 0, 1].
  PETAL_ASSERT_OK_AND_ASSIGN(DeflatedMessage d, DeflateMessage(message, 4));
  int chunks = 0, arrays_seen = 0;
  for (const auto& o : d.objects) {
    PETAL_ASSERT_OK_AND_ASSIGN(ObjectHead head, ParseObjectHead(o.content));
    if (head.type == "ArrayChunk") ++chunks;
    if (head.type == "Array") {
      ++arrays_seen;
      EXPECT_THAT(o.content, HasSubstr(R"("arraychunk_ids": [0, 0, 1]})"));
      EXPECT_EQ(head.children.size(), 2u);
    }
    if (head.type == "ArrayRecord") {
      EXPECT_EQ(head.children.size(), 1u);
    }
  }
  EXPECT_EQ(chunks, 2);
  EXPECT_EQ(arrays_seen, 1);

  // And back: both names get the full data.
  ObjectContents contents;
  for (auto& o : d.objects) contents.emplace(o.id, o.content);
  PETAL_ASSERT_OK_AND_ASSIGN(flwr::proto::Message back, InflateMessage(d.tree, contents));
  ASSERT_EQ(back.content().items_size(), 1);
  const auto& record = back.content().items(0).array_record();
  ASSERT_EQ(record.items_size(), 2);
  EXPECT_EQ(record.items(0).key(), "a");
  EXPECT_EQ(record.items(1).key(), "b");
  EXPECT_EQ(record.items(0).value().data(), std::string(10, '\0'));
  EXPECT_EQ(record.items(1).value().data(), std::string(10, '\0'));
}

TEST(ObjectsTest, InflateRestoresTheMessageExactly) {
  flwr::proto::Message message = GoldenMessage();
  message.mutable_metadata()->set_reply_to_message_id("abc");
  message.mutable_metadata()->set_group_id("3");
  message.mutable_metadata()->set_src_task_id(0);  // present even though zero
  flwr::proto::MetricRecord metrics;
  AddMetric(&metrics, "num-examples", int64_t{10});
  AddMetricRecord(message.mutable_content(), "metrics", metrics);
  PETAL_ASSERT_OK_AND_ASSIGN(DeflatedMessage d, DeflateMessage(message, 3));
  ObjectContents contents;
  for (auto& o : d.objects) contents.emplace(o.id, o.content);
  PETAL_ASSERT_OK_AND_ASSIGN(flwr::proto::Message back, InflateMessage(d.tree, contents));
  flwr::proto::Message expected = message;
  expected.mutable_metadata()->set_message_id(d.message_id);
  EXPECT_EQ(back.SerializeAsString(), expected.SerializeAsString());
  EXPECT_TRUE(back.metadata().has_src_task_id());
  EXPECT_FALSE(back.metadata().has_dst_task_id());
}

TEST(ObjectsTest, ErrorMessageHasNoChildren) {
  flwr::proto::Message message = GoldenMessage();
  message.clear_content();
  message.mutable_error()->set_code(2);
  message.mutable_error()->set_reason("boom");
  PETAL_ASSERT_OK_AND_ASSIGN(DeflatedMessage d, DeflateMessage(message));
  ASSERT_EQ(d.objects.size(), 1u);
  EXPECT_EQ(d.objects[0].content.rfind("Message  ", 0), 0u);
  EXPECT_EQ(d.tree.children_size(), 0);
  ObjectContents contents{{d.objects[0].id, d.objects[0].content}};
  PETAL_ASSERT_OK_AND_ASSIGN(flwr::proto::Message back, InflateMessage(d.tree, contents));
  EXPECT_FALSE(back.has_content());
  EXPECT_EQ(back.error().reason(), "boom");
}

TEST(ObjectsTest, DeflateRejectsBadMessages) {
  flwr::proto::Message neither = GoldenMessage();
  neither.clear_content();
  EXPECT_THAT(DeflateMessage(neither),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one")));
  flwr::proto::Message both = GoldenMessage();
  both.mutable_error()->set_code(1);
  EXPECT_THAT(DeflateMessage(both), StatusIs(absl::StatusCode::kInvalidArgument));
  flwr::proto::Message dup = GoldenMessage();
  AddConfigRecord(dup.mutable_content(), "config", GoldenConfig());
  EXPECT_THAT(DeflateMessage(dup),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeats key 'config'")));
  flwr::proto::Message bad_utf8 = GoldenMessage();
  bad_utf8.mutable_content()->mutable_items(0)->mutable_array_record()->mutable_items(0)->set_key(
      "\xff");
  EXPECT_THAT(DeflateMessage(bad_utf8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(DeflateMessage(GoldenMessage(), 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ObjectsTest, JsonStringsMatchPythonJsonDumps) {
  // Expected values from json.dumps in CPython 3.11.
  EXPECT_THAT(PythonJsonString("plain-key_0"),
              ::petal::testing::IsOkAndHolds(std::string(R"("plain-key_0")")));
  EXPECT_THAT(PythonJsonString("a\"b\\c/d"),
              ::petal::testing::IsOkAndHolds(std::string(R"("a\"b\\c/d")")));
  EXPECT_THAT(PythonJsonString("\n\r\t\b\f\x01\x1f\x7f"),
              ::petal::testing::IsOkAndHolds(std::string(R"("\n\r\t\b\f\u0001\u001f\u007f")")));
  EXPECT_THAT(PythonJsonString("\xc3\xa9\xe2\x82\xac"),  // é €
              ::petal::testing::IsOkAndHolds(std::string(R"("\u00e9\u20ac")")));
  EXPECT_THAT(PythonJsonString("\xf0\x9f\x8c\xb8"),  // U+1F338 (cherry blossom)
              ::petal::testing::IsOkAndHolds(std::string(R"("\ud83c\udf38")")));
  EXPECT_THAT(PythonJsonString("\xc0\x80"),
              StatusIs(absl::StatusCode::kInvalidArgument));  // overlong
  EXPECT_THAT(PythonJsonString("\xed\xa0\x80"),
              StatusIs(absl::StatusCode::kInvalidArgument));  // surrogate
  EXPECT_THAT(PythonJsonString("\xe2\x82"),
              StatusIs(absl::StatusCode::kInvalidArgument));  // truncated
}

TEST(ObjectsTest, ParseObjectHeadChecksEveryField) {
  std::string id(64, 'a');
  PETAL_ASSERT_OK_AND_ASSIGN(ObjectHead head, ParseObjectHead("RecordDict " + id + "," + id + " 2" +
                                                              std::string(1, '\0') + "{}"));
  EXPECT_EQ(head.type, "RecordDict");
  EXPECT_THAT(head.children, ElementsAre(id, id));
  EXPECT_EQ(head.body_size, 2u);
  auto bad = [](std::string object, std::string_view why) {
    EXPECT_THAT(ParseObjectHead(object),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(std::string(why))))
        << object;
  };
  bad("ArrayChunk  3xyz", "NUL");
  bad(std::string("Nope  0\0", 8), "not supported");
  bad(std::string("ArrayChunk 1234 0\0", 18), "invalid child id");
  bad(std::string("ArrayChunk  5\0abc", 17), "head says 5");
  bad(std::string("ArrayChunk  x\0", 14), "bad body size");
  bad(std::string("ArrayChunk 0\0", 13), "is not '<type>");
  bad(std::string("ArrayChunk   0\0", 15), "is not '<type>");
  bad("RecordDict " + id + ", 0" + std::string(1, '\0'), "ends its child list");
}

class InflateErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PETAL_ASSERT_OK_AND_ASSIGN(deflated_, DeflateMessage(GoldenMessage()));
    for (auto& o : deflated_.objects) contents_.emplace(o.id, o.content);
  }
  absl::Status Inflate() { return InflateMessage(deflated_.tree, contents_).status(); }
  // Replaces the RecordDict object by one with `body` (same children), and
  // re-roots the Message on it so that only the forged body is wrong.
  void ForgeRecordDict(const std::string& body) {
    std::string rd = IdOfType("RecordDict");
    ObjectHead head = *ParseObjectHead(contents_[rd]);
    std::string forged = MakeObject("RecordDict", head.children, body);
    std::string forged_id = ObjectId(forged);
    contents_.erase(rd);
    contents_[forged_id] = forged;
    std::string root = deflated_.tree.object_id();
    std::string old_root = contents_[root];
    ObjectHead root_head = *ParseObjectHead(old_root);
    std::string new_root = MakeObject("Message", {forged_id},
                                      std::string_view(old_root).substr(root_head.body_offset));
    contents_.erase(root);
    deflated_.tree.set_object_id(ObjectId(new_root));
    contents_[ObjectId(new_root)] = new_root;
    deflated_.tree.mutable_children(0)->set_object_id(forged_id);
  }
  std::string IdOfType(std::string_view type) {
    for (auto& o : deflated_.objects) {
      if (ParseObjectHead(o.content)->type == type) return o.id;
    }
    return "";
  }
  DeflatedMessage deflated_;
  ObjectContents contents_;
};

TEST_F(InflateErrorTest, MissingObject) {
  contents_.erase(IdOfType("ArrayChunk"));
  EXPECT_THAT(Inflate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing")));
}

TEST_F(InflateErrorTest, TamperedContent) {
  contents_[IdOfType("ArrayChunk")].back() ^= 1;
  EXPECT_THAT(Inflate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not hash to its id")));
}

TEST_F(InflateErrorTest, ObjectOfTheWrongTypeInItsPlace) {
  // Put the ConfigRecord where the Array belongs (both in tree and contents).
  std::string config = IdOfType("ConfigRecord");
  auto* node = deflated_.tree.mutable_children(0)->mutable_children(0)->mutable_children(0);
  node->set_object_id(config);
  node->clear_children();
  EXPECT_THAT(Inflate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InflateErrorTest, TreeDisagreesWithHead) {
  deflated_.tree.mutable_children(0)->mutable_children(0)->clear_children();
  EXPECT_THAT(Inflate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("children")));
}

TEST_F(InflateErrorTest, TreeChildrenInAnotherOrderAreAccepted) {
  // flwr 1.42's SuperLink (SQL state) may list a node's children in another
  // order than the object's head.
  auto* rd = deflated_.tree.mutable_children(0);
  ASSERT_EQ(rd->children_size(), 2);
  rd->mutable_children()->SwapElements(0, 1);
  PETAL_ASSERT_OK_AND_ASSIGN(flwr::proto::Message back, InflateMessage(deflated_.tree, contents_));
  EXPECT_EQ(back.content().items(0).key(), "arrays");
  EXPECT_EQ(back.content().items(1).key(), "config");
}

TEST_F(InflateErrorTest, TreeNamingOtherChildren) {
  auto* rd = deflated_.tree.mutable_children(0);
  rd->mutable_children(1)->set_object_id(std::string(64, 'd'));
  EXPECT_THAT(Inflate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in the object tree")));
}

TEST_F(InflateErrorTest, InvalidIdsAndOverDeepTrees) {
  deflated_.tree.set_object_id("not-an-id");
  EXPECT_THAT(Inflate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid id")));
  flwr::proto::ObjectTree deep;
  flwr::proto::ObjectTree* node = &deep;
  for (int i = 0; i < 7; ++i) {
    node->set_object_id(std::string(64, 'b'));
    node = node->add_children();
  }
  node->set_object_id(std::string(64, 'b'));
  EXPECT_THAT(ValidateObjectTree(deep),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("deeper")));
}

TEST_F(InflateErrorTest, BadJsonBodies) {
  // Valid JSON that names a non-child.
  ForgeRecordDict(R"({"arrays": ")" + std::string(64, 'c') + R"("})");
  EXPECT_THAT(Inflate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not among its children")));
}

TEST_F(InflateErrorTest, UnreferencedChild) {
  ObjectHead head = *ParseObjectHead(contents_[IdOfType("RecordDict")]);
  ForgeRecordDict(R"({"arrays": ")" + head.children[0] + R"("})");
  EXPECT_THAT(Inflate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not referred to")));
}

TEST_F(InflateErrorTest, MalformedJson) {
  ForgeRecordDict("{\"arrays\": ");
  EXPECT_THAT(Inflate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
}

TEST(ObjectsTest, PostOrderIdsAreUniqueChildrenFirst) {
  flwr::proto::ObjectTree tree;
  tree.set_object_id("r");
  auto* a = tree.add_children();
  a->set_object_id("a");
  a->add_children()->set_object_id("x");
  auto* b = tree.add_children();
  b->set_object_id("b");
  b->add_children()->set_object_id("x");
  EXPECT_THAT(PostOrderObjectIds(tree), ElementsAre("x", "a", "b", "r"));
}

}  // namespace
}  // namespace petal::client::fleet
