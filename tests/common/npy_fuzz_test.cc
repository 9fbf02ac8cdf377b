// Fuzz-style robustness tests for the .npy decoder: random bytes, every
// truncation of valid files, and random mutations must give an error or a
// consistent array, never a crash or an out-of-bounds read. The sanitizer
// build (scripts/test.sh, ctest label "sanitize") runs these under ASan+UBSan.
#include <random>
#include <string>

#include "common/npy.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  for (DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64,
                  DType::kUInt8, DType::kBool}) {
    for (Shape shape : {Shape{}, Shape{3}, Shape{2, 3}, Shape{2, 0, 2}}) {
      auto a = NDArray::Zeros(d, shape);
      EXPECT_TRUE(a.ok());
      seeds.push_back(EncodeNpy(*a));
    }
  }
  return seeds;
}

// Decodes through both entry points; checks any OK result is self-consistent.
void DecodeBoth(const std::string& bytes) {
  for (int mode = 0; mode < 2; ++mode) {
    absl::StatusOr<NDArray> a =
        mode == 0 ? DecodeNpy(std::string_view(bytes)) : DecodeNpy(std::string(bytes));
    if (!a.ok()) {
      EXPECT_FALSE(a.status().message().empty());
      continue;
    }
    auto count = NumElements(a->shape(), DTypeSize(a->dtype()));
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(static_cast<size_t>(*count) * DTypeSize(a->dtype()), a->nbytes());
    EXPECT_LE(a->nbytes(), bytes.size());
    // Touch every byte so ASan sees any bad view.
    unsigned sum = 0;
    for (size_t i = 0; i < a->nbytes(); ++i) sum += static_cast<unsigned>(a->data()[i]);
    (void)sum;
  }
}

TEST(NpyFuzzTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(1234);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bytes(rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (iter % 2 == 0 && bytes.size() >= 8) bytes.replace(0, 8, std::string("\x93NUMPY\x01\x00", 8));
    DecodeBoth(bytes);
  }
}

TEST(NpyFuzzTest, EveryTruncationIsAnError) {
  for (const std::string& seed : Seeds()) {
    for (size_t len = 0; len < seed.size(); ++len) {
      std::string cut = seed.substr(0, len);
      EXPECT_FALSE(DecodeNpy(std::string_view(cut)).ok()) << "prefix of length " << len;
      EXPECT_FALSE(DecodeNpy(std::move(cut)).ok()) << "prefix of length " << len;
    }
    PETAL_EXPECT_OK(DecodeNpy(std::string_view(seed)));
  }
}

TEST(NpyFuzzTest, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(99);
  const std::vector<std::string> seeds = Seeds();
  const std::string alphabet = "0123456789(),:{}'\" <>|=fiubOLTrueFals[]\n\\";
  for (int iter = 0; iter < 30000; ++iter) {
    std::string bytes = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:  // random byte
          bytes[pos] = static_cast<char>(rng());
          break;
        case 1:  // header-ish character
          bytes[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 2:  // delete
          bytes.erase(pos, 1 + rng() % 3);
          break;
        case 3:  // insert
          bytes.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
      if (bytes.empty()) break;
    }
    DecodeBoth(bytes);
  }
}

TEST(NpyFuzzTest, HeaderLengthFieldLies) {
  for (const std::string& seed : Seeds()) {
    for (unsigned value : {0u, 1u, 63u, 117u, 119u, 0xFFFFu}) {
      std::string bytes = seed;
      bytes[8] = static_cast<char>(value & 0xFF);
      bytes[9] = static_cast<char>(value >> 8);
      DecodeBoth(bytes);
    }
  }
}

}  // namespace
}  // namespace petal::common
