#include "common/scalar.h"

#include <limits>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

ConfigMap Sample() {
  ConfigMap m{{"flag", true},
              {"lr", 0.01},
              {"epochs", int64_t{3}},
              {"big", uint64_t{18446744073709551615u}},
              {"name", std::string("ncf")},
              {"blob", Bytes{"\x01\x02"}}};
  return m;
}

TEST(ConfigMapTest, TypedGettersReturnValues) {
  ConfigMap m = Sample();
  EXPECT_THAT(m.GetBool("flag"), IsOkAndHolds(true));
  EXPECT_THAT(m.GetDouble("lr"), IsOkAndHolds(0.01));
  EXPECT_THAT(m.GetInt("epochs"), IsOkAndHolds(3));
  EXPECT_THAT(m.GetUint("big"), IsOkAndHolds(18446744073709551615u));
  EXPECT_THAT(m.GetString("name"), IsOkAndHolds("ncf"));
  EXPECT_THAT(m.GetBytes("blob"), IsOkAndHolds(std::string("\x01\x02")));
}

TEST(ConfigMapTest, MissingKeyIsNotFoundNamingTheKey) {
  ConfigMap m = Sample();
  EXPECT_THAT(m.GetDouble("momentum"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'momentum' is missing")));
}

TEST(ConfigMapTest, WrongTypeNamesKeyAndBothTypes) {
  ConfigMap m = Sample();
  EXPECT_THAT(m.GetInt("lr"), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("'lr' must be an integer but is double")));
  EXPECT_THAT(m.GetBool("epochs"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("must be a bool but is sint64")));
  EXPECT_THAT(m.GetString("blob"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("must be a string but is bytes")));
  EXPECT_THAT(m.GetBytes("name"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.GetDouble("name"), StatusIs(absl::StatusCode::kInvalidArgument));
  // Python bools are not ints for Flower's typing (bool is tested first).
  EXPECT_THAT(m.GetInt("flag"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfigMapTest, NumericConversionsFollowPython) {
  ConfigMap m = Sample();
  // float(int) is fine: a server may send lr=1 as an int.
  EXPECT_THAT(m.GetDouble("epochs"), IsOkAndHolds(3.0));
  EXPECT_THAT(m.GetInt("big"), StatusIs(absl::StatusCode::kOutOfRange));
  m.SetInt("neg", -1);
  EXPECT_THAT(m.GetUint("neg"), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(m.GetUint("epochs"), IsOkAndHolds(3u));
}

TEST(ConfigMapTest, SetUintUsesSint64UpToInt64Max) {
  ConfigMap m;
  m.SetUint("small", 5);
  m.SetUint("max", static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  m.SetUint("above", static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1);
  EXPECT_TRUE(std::holds_alternative<int64_t>(*m.Find("small")));
  EXPECT_TRUE(std::holds_alternative<int64_t>(*m.Find("max")));
  EXPECT_TRUE(std::holds_alternative<uint64_t>(*m.Find("above")));
}

TEST(ConfigMapTest, DefaultsOnlyWhenAbsent) {
  ConfigMap m = Sample();
  EXPECT_THAT(m.GetIntOr("absent", 7), IsOkAndHolds(7));
  EXPECT_THAT(m.GetIntOr("epochs", 7), IsOkAndHolds(3));
  EXPECT_THAT(m.GetIntOr("name", 7), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.GetDoubleOr("absent", 0.5), IsOkAndHolds(0.5));
  EXPECT_THAT(m.GetBoolOr("absent", true), IsOkAndHolds(true));
  EXPECT_THAT(m.GetStringOr("absent", "x"), IsOkAndHolds("x"));
  EXPECT_THAT(m.GetStringOr("lr", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfigMapTest, SetOverwritesEraseRemoves) {
  ConfigMap m;
  m.Set("a", 1.0);
  m.Set("a", std::string("x"));
  EXPECT_THAT(m.GetString("a"), IsOkAndHolds("x"));
  EXPECT_TRUE(m.Erase("a"));
  EXPECT_FALSE(m.Erase("a"));
  EXPECT_TRUE(m.empty());
}

TEST(ConfigMapTest, DebugStringIsSortedAndTyped) {
  ConfigMap m{{"b", std::string("x")}, {"a", int64_t{1}}, {"c", false}};
  EXPECT_EQ(m.DebugString(), "{a: 1, b: \"x\", c: False}");
}

}  // namespace
}  // namespace petal::common
