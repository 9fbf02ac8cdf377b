#include "common/npy.h"

#include <cstring>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Builds a .npy file by hand: magic, version, little-endian header length,
// `dict` padded with spaces + '\n' to a multiple of 64, then `payload`.
std::string MakeNpy(int major, std::string dict, std::string_view payload, bool pad = true) {
  const size_t width = major == 1 ? 2 : 4;
  std::string header = dict;
  if (pad) {
    while ((8 + width + header.size() + 1) % 64 != 0) header.push_back(' ');
  }
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (size_t i = 0; i < width; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  out += header;
  out.append(payload);
  return out;
}

template <typename T>
std::string Raw(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), std::data(values), out.size());
  return out;
}

std::string Reversed(std::string s, size_t item) {
  for (size_t i = 0; i + item <= s.size(); i += item) std::reverse(s.begin() + i, s.begin() + i + item);
  return s;
}

TEST(EncodeNpyTest, WritesNumpyV1LayoutWithGrowthPadding) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<float>({3}, {1, 2, 3}));
  const std::string npy = EncodeNpy(a);
  // numpy.save: 128-byte preamble for a simple array, then 12 data bytes.
  ASSERT_EQ(npy.size(), 128u + 12u);
  EXPECT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<unsigned char>(npy[8]) | (static_cast<unsigned char>(npy[9]) << 8), 118);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_EQ(npy.substr(10, dict.size()), dict);
  // 21 - len("3") growth spaces, then alignment padding, then '\n'.
  EXPECT_EQ(npy.substr(10 + dict.size(), 127 - 10 - dict.size()),
            std::string(127 - 10 - dict.size(), ' '));
  EXPECT_EQ(npy[127], '\n');
  EXPECT_EQ(npy.substr(128), std::string(a.bytes()));
  EXPECT_EQ(EncodedNpySize(a), npy.size());
}

TEST(EncodeNpyTest, DescrPerDType) {
  struct Case {
    DType dtype;
    const char* descr;
  };
  for (Case c : {Case{DType::kFloat16, "'<f2'"}, Case{DType::kFloat32, "'<f4'"},
                 Case{DType::kFloat64, "'<f8'"}, Case{DType::kInt32, "'<i4'"},
                 Case{DType::kInt64, "'<i8'"}, Case{DType::kUInt8, "'|u1'"},
                 Case{DType::kBool, "'|b1'"}}) {
    PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::Zeros(c.dtype, {2}));
    EXPECT_THAT(EncodeNpy(a), HasSubstr(c.descr)) << DTypeName(c.dtype);
  }
}

TEST(EncodeNpyTest, ZeroDimHasNoGrowthSpaces) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<double>({}, {4.0}));
  const std::string npy = EncodeNpy(a);
  EXPECT_THAT(npy, HasSubstr("'shape': (), }"));
  EXPECT_EQ(npy.size(), 128u + 8u);  // 10 + 56-byte dict + newline rounds up to 128
}

TEST(EncodeNpyTest, DataAlwaysStartsOn64ByteBoundary) {
  for (int64_t n : std::initializer_list<int64_t>{0, 1, 9, 10, 99999, 1234567890123}) {
    for (Shape shape : {Shape{n}, Shape{n, 7}, Shape{1, 2, 3, n}}) {
      if (n > 100000) continue;  // only shapes we can allocate
      PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::Zeros(DType::kUInt8, shape));
      PETAL_ASSERT_OK_AND_ASSIGN(NpyHeader h, ParseNpyHeader(EncodeNpy(a)));
      EXPECT_EQ(h.data_offset % 64, 0u);
      EXPECT_EQ(h.major_version, 1);
    }
  }
}

TEST(NpyRoundTripTest, EveryDTypeAndShape) {
  for (DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64,
                  DType::kUInt8, DType::kBool}) {
    for (Shape shape : {Shape{}, Shape{0}, Shape{5}, Shape{2, 3, 4}, Shape{3, 0, 2}}) {
      PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::Zeros(d, shape));
      for (size_t i = 0; i < a.nbytes(); ++i) {
        a.mutable_data()[i] = static_cast<std::byte>(d == DType::kBool ? i % 2 : (i * 37) % 251);
      }
      std::string npy = EncodeNpy(a);
      PETAL_ASSERT_OK_AND_ASSIGN(NDArray view, DecodeNpy(std::string_view(npy)));
      EXPECT_EQ(view, a) << a.DebugString();
      PETAL_ASSERT_OK_AND_ASSIGN(NDArray owned, DecodeNpy(std::move(npy)));
      EXPECT_EQ(owned, a) << a.DebugString();
    }
  }
}

TEST(DecodeNpyTest, OwningDecodeDoesNotCopyLittleEndianCOrder) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<float>({4}, {1, 2, 3, 4}));
  std::string npy = EncodeNpy(a);
  const char* payload = npy.data() + 128;
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray b, DecodeNpy(std::move(npy)));
  EXPECT_EQ(reinterpret_cast<const char*>(b.data()), payload);
  EXPECT_THAT(b.values<float>(), ElementsAre(1, 2, 3, 4));
}

TEST(DecodeNpyTest, BigEndianIsConverted) {
  std::string npy = MakeNpy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }",
                            Reversed(Raw<double>({1.5, -2.25}), 8));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(std::string_view(npy)));
  EXPECT_EQ(a.dtype(), DType::kFloat64);
  EXPECT_THAT(a.values<double>(), ElementsAre(1.5, -2.25));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray b, DecodeNpy(std::move(npy)));
  EXPECT_THAT(b.values<double>(), ElementsAre(1.5, -2.25));
}

TEST(DecodeNpyTest, FortranOrderIsConvertedToC) {
  // C-order [[0,1,2],[3,4,5]] stored column-major: 0,3,1,4,2,5.
  std::string npy = MakeNpy(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
                            Raw<int32_t>({0, 3, 1, 4, 2, 5}));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(std::move(npy)));
  EXPECT_THAT(a.shape(), ElementsAre(2, 3));
  EXPECT_THAT(a.values<int32_t>(), ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST(DecodeNpyTest, FortranOrderThreeDimsBigEndian) {
  // Element (i,j,k) = 100i + 10j + k for shape (2,3,2); Fortran: i fastest.
  std::vector<int64_t> fortran;
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) fortran.push_back(100 * i + 10 * j + k);
  std::string raw(reinterpret_cast<const char*>(fortran.data()), fortran.size() * 8);
  std::string npy = MakeNpy(1, "{'descr': '>i8', 'fortran_order': True, 'shape': (2, 3, 2), }",
                            Reversed(raw, 8));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(std::string_view(npy)));
  EXPECT_THAT(a.values<int64_t>(),
              ElementsAre(0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121));
}

TEST(DecodeNpyTest, AcceptsV2AndV3HeadersAndOtherSpellings) {
  const std::string data = Raw<float>({7.0f});
  for (int major : {2, 3}) {
    std::string npy = MakeNpy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data);
    PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(std::string_view(npy)));
    EXPECT_THAT(a.values<float>(), ElementsAre(7.0f));
  }
  // Double quotes, any key order, no trailing comma, Python 2 long, unpadded.
  std::string npy = MakeNpy(1, "{\"shape\": (1L,), \"fortran_order\": False, \"descr\": \"<f4\"}", data,
                            /*pad=*/false);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(std::string_view(npy)));
  EXPECT_THAT(a.values<float>(), ElementsAre(7.0f));
  // '<u1' and '|b1' style 1-byte descrs in either form.
  PETAL_EXPECT_OK(DecodeNpy(MakeNpy(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (1,), }", "x")));
  PETAL_EXPECT_OK(DecodeNpy(MakeNpy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", "\1")));
}

struct BadCase {
  std::string name;
  std::string bytes;
  absl::StatusCode code;
  std::string message;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

std::vector<BadCase> BadCases() {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  std::vector<BadCase> cases = {
      {"empty", "", absl::StatusCode::kInvalidArgument, "shorter than the magic"},
      {"bad_magic", std::string("\x93NUMPZ\x01\x00", 8) + std::string(120, ' '),
       absl::StatusCode::kInvalidArgument, "bad magic"},
      {"version", MakeNpy(4, f4, Raw<float>({1, 2})), absl::StatusCode::kInvalidArgument,
       "unsupported .npy format version 4.0"},
      {"header_len_cut", std::string("\x93NUMPY\x01\x00\x05", 9), absl::StatusCode::kInvalidArgument,
       "header length is cut off"},
      {"header_truncated", MakeNpy(1, f4, "").substr(0, 40), absl::StatusCode::kInvalidArgument,
       "header says"},
      {"data_truncated", MakeNpy(1, f4, Raw<float>({1})), absl::StatusCode::kInvalidArgument,
       "truncated .npy data"},
      {"trailing", MakeNpy(1, f4, Raw<float>({1, 2, 3})), absl::StatusCode::kInvalidArgument,
       "4 trailing bytes"},
      {"object", MakeNpy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "12345678"),
       absl::StatusCode::kInvalidArgument, "object dtype"},
      {"structured",
       MakeNpy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234"),
       absl::StatusCode::kInvalidArgument, "structured dtypes"},
      {"int16", MakeNpy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", "12"),
       absl::StatusCode::kInvalidArgument, "unsupported dtype '<i2'"},
      {"complex", MakeNpy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678"),
       absl::StatusCode::kInvalidArgument, "unsupported dtype"},
      {"missing_key", MakeNpy(1, "{'descr': '<f4', 'shape': (1,), }", "1234"),
       absl::StatusCode::kInvalidArgument, "must have the keys"},
      {"extra_key", MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "1234"),
       absl::StatusCode::kInvalidArgument, "unexpected key 'x'"},
      {"duplicate_key",
       MakeNpy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "1234"),
       absl::StatusCode::kInvalidArgument, "duplicate key"},
      {"shape_list", MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", "1234"),
       absl::StatusCode::kInvalidArgument, "must be a tuple"},
      {"negative_dim", MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", ""),
       absl::StatusCode::kInvalidArgument, "non-negative integers"},
      {"order_not_bool", MakeNpy(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "1234"),
       absl::StatusCode::kInvalidArgument, "True or False"},
      {"dim_overflow",
       MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", ""),
       absl::StatusCode::kOutOfRange, "overflows int64"},
      {"size_overflow",
       MakeNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", ""),
       absl::StatusCode::kOutOfRange, "too many elements"},
      {"bytes_overflow",
       MakeNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", ""),
       absl::StatusCode::kOutOfRange, "more bytes than fit"},
      {"unterminated", MakeNpy(1, "{'descr': '<f4", ""), absl::StatusCode::kInvalidArgument,
       "unterminated string"},
      {"not_a_dict", MakeNpy(1, "['descr']", ""), absl::StatusCode::kInvalidArgument, "expected '{'"},
      {"garbage_after", MakeNpy(1, f4 + " 42", Raw<float>({1, 2})), absl::StatusCode::kInvalidArgument,
       "unexpected text after"},
  };
  std::string too_many_dims = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 65; ++i) too_many_dims += "1, ";
  too_many_dims += "), }";
  cases.push_back({"too_many_dims", MakeNpy(1, too_many_dims, "1234"),
                   absl::StatusCode::kInvalidArgument, "more than 64 dimensions"});
  return cases;
}

class DecodeNpyBadInputTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(DecodeNpyBadInputTest, GivesClearError) {
  const BadCase& c = GetParam();
  EXPECT_THAT(DecodeNpy(std::string_view(c.bytes)), StatusIs(c.code, HasSubstr(c.message)));
  EXPECT_THAT(DecodeNpy(std::string(c.bytes)), StatusIs(c.code, HasSubstr(c.message)));
}

INSTANTIATE_TEST_SUITE_P(AllCases, DecodeNpyBadInputTest, ::testing::ValuesIn(BadCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace petal::common
