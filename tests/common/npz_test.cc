#include "common/npz.h"

#include <filesystem>

#include "common/npy.h"
#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

NamedArrays Sample() {
  return {{"item_embedding", *NDArray::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6})},
          {"mlp.0.bias", *NDArray::FromVector<double>({2}, {0.5, -0.5})},
          {"round", *NDArray::FromVector<int64_t>({}, {7})},
          {"empty", *NDArray::Zeros(DType::kUInt8, {0})}};
}

TEST(NpzTest, RoundTripKeepsNamesOrderAndValues) {
  PETAL_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeNpz(Sample()));
  PETAL_ASSERT_OK_AND_ASSIGN(NamedArrays back, DecodeNpz(bytes));
  EXPECT_EQ(back, Sample());
}

TEST(NpzTest, EncodingIsDeterministic) {
  EXPECT_EQ(*EncodeNpz(Sample()), *EncodeNpz(Sample()));
}

TEST(NpzTest, WriteAndReadFile) {
  const std::string path = ::petal::testing::ScratchPath("npz_test.npz").string();
  PETAL_ASSERT_OK(WriteNpz(path, Sample()));
  PETAL_ASSERT_OK_AND_ASSIGN(NamedArrays back, ReadNpz(path));
  EXPECT_EQ(back, Sample());
  std::filesystem::remove(path);
  EXPECT_THAT(ReadNpz(path), StatusIs(absl::StatusCode::kNotFound));
}

TEST(NpzTest, RejectsBadNames) {
  NDArray a;
  EXPECT_THAT(EncodeNpz({{"", a}}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeNpz({{"x", a}, {"x", a}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
}

TEST(NpzTest, CorruptionIsDetected) {
  PETAL_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeNpz(Sample()));
  // Flip one byte of the first member's data: the CRC check must catch it.
  std::string flipped = bytes;
  flipped[30 + std::string("item_embedding.npy").size() + 130] ^= 0x01;
  EXPECT_THAT(DecodeNpz(flipped, "m.npz"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("m.npz: not a valid")));
  EXPECT_THAT(DecodeNpz(flipped, "m.npz"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CRC mismatch")));
  EXPECT_THAT(DecodeNpz(bytes.substr(0, bytes.size() - 5)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeNpz("PK"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
  EXPECT_THAT(DecodeNpz(std::string(100, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no end-of-central-directory")));
}

TEST(NpzTest, EveryTruncationFailsCleanly) {
  PETAL_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeNpz(Sample()));
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(DecodeNpz(bytes.substr(0, len)).ok()) << len;
  }
}

TEST(NpzTest, RandomByteFlipsNeverCrash) {
  PETAL_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeNpz(Sample()));
  uint32_t state = 12345;
  for (int i = 0; i < 3000; ++i) {
    std::string mutated = bytes;
    for (int k = 0; k < 3; ++k) {
      state = state * 1664525u + 1013904223u;
      mutated[state % mutated.size()] = static_cast<char>(state >> 24);
    }
    auto result = DecodeNpz(mutated);
    if (result.ok()) {
      EXPECT_EQ(result->size(), 4u);
    }
  }
}

}  // namespace
}  // namespace petal::common
