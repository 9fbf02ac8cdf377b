#include "model/internal/csv.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model::internal {
namespace {

using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::vector<std::string>> ReadAll(CsvReader& reader) {
  std::vector<std::vector<std::string>> rows;
  while (reader.Next()) {
    rows.emplace_back(reader.fields().begin(), reader.fields().end());
  }
  return rows;
}

TEST(CsvReaderTest, SplitsLinesAndFields) {
  CsvReader reader("a,b,c\n1,2,3\n", "f.csv", ',', true);
  auto rows = ReadAll(reader);
  PETAL_EXPECT_OK(reader.status());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[0], ElementsAre("a", "b", "c"));
  EXPECT_THAT(rows[1], ElementsAre("1", "2", "3"));
}

TEST(CsvReaderTest, HandlesCrlfBlankLinesBomAndMissingFinalNewline) {
  CsvReader reader("\xEF\xBB\xBFx,y\r\n\r\n\n1,2\r\n3,", "f.csv", ',', true);
  std::vector<int64_t> lines;
  std::vector<std::vector<std::string>> rows;
  while (reader.Next()) {
    rows.emplace_back(reader.fields().begin(), reader.fields().end());
    lines.push_back(reader.line());
  }
  PETAL_EXPECT_OK(reader.status());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("x", "y"));
  EXPECT_THAT(rows[1], ElementsAre("1", "2"));
  EXPECT_THAT(rows[2], ElementsAre("3", ""));
  EXPECT_THAT(lines, ElementsAre(1, 4, 5));
}

TEST(CsvReaderTest, QuotedFieldsWithSeparatorsQuotesAndNewlines) {
  CsvReader reader("1,\"Heat, The (1995)\",x\n2,\"say \"\"hi\"\"\",y\n3,\"two\nlines\",z\n4,e,f\n",
                   "m.csv", ',', true);
  std::vector<int64_t> lines;
  std::vector<std::vector<std::string>> rows;
  while (reader.Next()) {
    rows.emplace_back(reader.fields().begin(), reader.fields().end());
    lines.push_back(reader.line());
  }
  PETAL_EXPECT_OK(reader.status());
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_THAT(rows[0], ElementsAre("1", "Heat, The (1995)", "x"));
  EXPECT_THAT(rows[1], ElementsAre("2", "say \"hi\"", "y"));
  EXPECT_THAT(rows[2], ElementsAre("3", "two\nlines", "z"));
  EXPECT_THAT(lines, ElementsAre(1, 2, 3, 5));  // the record after a quoted newline starts on 5
}

TEST(CsvReaderTest, QuotesAreLiteralWithoutQuoting) {
  CsvReader reader("1|\"x|y\n", "u.item", '|', false);
  auto rows = ReadAll(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0], ElementsAre("1", "\"x", "y"));
}

TEST(CsvReaderTest, UnterminatedQuoteIsAnErrorWithLine) {
  CsvReader reader("a,b\n1,\"open\n2,3\n", "bad.csv", ',', true);
  auto rows = ReadAll(reader);
  EXPECT_EQ(rows.size(), 1u);
  EXPECT_THAT(reader.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("bad.csv:2: unterminated quoted field")));
}

TEST(CsvReaderTest, GarbageAfterClosingQuoteIsAnError) {
  CsvReader reader("\"a\"b,c\n", "bad.csv", ',', true);
  EXPECT_FALSE(reader.Next());
  EXPECT_THAT(reader.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("after a closing quote")));
}

TEST(CsvReaderTest, TypedFieldsNameFileLineAndColumn) {
  CsvReader reader("1,2.5,x, 7 \n", "t.csv", ',', true);
  ASSERT_TRUE(reader.Next());
  EXPECT_THAT(reader.Int(0, "id"), ::petal::testing::IsOkAndHolds(1));
  EXPECT_THAT(reader.Double(1, "rating"), ::petal::testing::IsOkAndHolds(2.5));
  EXPECT_THAT(reader.Int(3, "ts"), ::petal::testing::IsOkAndHolds(7));
  EXPECT_THAT(reader.Int(2, "user"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("t.csv:1: column 3 (user): 'x' is not an integer")));
  EXPECT_THAT(reader.Int(1, "id"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(reader.ExpectColumns(3),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("t.csv:1: expected 3 columns separated by ',', got 4")));
  PETAL_EXPECT_OK(reader.ExpectColumns(3, 4));
}

TEST(CsvReaderTest, NonFiniteNumbersAreRejected) {
  CsvReader reader("nan,inf\n", "t.csv", ',', true);
  ASSERT_TRUE(reader.Next());
  EXPECT_THAT(reader.Double(0, "rating"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("not a finite number")));
  EXPECT_THAT(reader.Double(1, "rating"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CsvHelpersTest, TrimLowerSplit) {
  EXPECT_EQ(Trim("  a b \r\n"), "a b");
  EXPECT_EQ(ToLower("Sci-Fi ABC"), "sci-fi abc");
  EXPECT_THAT(SplitList("a|b||c", '|'), ElementsAre("a", "b", "", "c"));
  EXPECT_TRUE(SplitList("", '|').empty());
}

}  // namespace
}  // namespace petal::model::internal
