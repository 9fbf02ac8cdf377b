#include "common/npy.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include <fmt/format.h>
#include "common/status_macros.h"

namespace petal::common {
namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr size_t kMagicLen = 8;  // the magic string plus the two version bytes
constexpr size_t kArrayAlign = 64;
// numpy leaves room after the header dict so the first (C order) axis can grow
// to this many digits without rewriting the file.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr size_t kMaxDims = 64;

std::string_view DescrFor(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return "<f2";
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kUInt8:
      return "|u1";
    case DType::kBool:
      return "|b1";
  }
  return "|u1";
}

absl::Status HeaderError(std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("malformed .npy header: {}", what));
}

struct Descr {
  DType dtype;
  bool big_endian;
};

// Parses a numpy dtype.str such as "<f4", ">i8", "|b1".
absl::StatusOr<Descr> ParseDescr(std::string_view s) {
  std::string_view original = s;
  bool big_endian = false;
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    big_endian = s[0] == '>';
    s.remove_prefix(1);
  }
  if (s.empty()) return HeaderError(fmt::format("empty descr '{}'", original));
  char kind = s[0];
  if (kind == 'O') {
    return absl::InvalidArgumentError(fmt::format(
        "object dtype '{}' is not allowed (pickled data; Flower loads with allow_pickle=False)",
        original));
  }
  std::string_view size_text = s.substr(1);
  int size = 0;
  if (size_text.empty() || size_text.size() > 3) {
    return absl::InvalidArgumentError(fmt::format("unsupported dtype '{}'", original));
  }
  for (char c : size_text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(fmt::format("unsupported dtype '{}'", original));
    }
    size = size * 10 + (c - '0');
  }
  std::optional<DType> dtype;
  if (kind == 'f' && size == 2) dtype = DType::kFloat16;
  if (kind == 'f' && size == 4) dtype = DType::kFloat32;
  if (kind == 'f' && size == 8) dtype = DType::kFloat64;
  if (kind == 'i' && size == 4) dtype = DType::kInt32;
  if (kind == 'i' && size == 8) dtype = DType::kInt64;
  if (kind == 'u' && size == 1) dtype = DType::kUInt8;
  if (kind == 'b' && size == 1) dtype = DType::kBool;
  if (!dtype) {
    return absl::InvalidArgumentError(fmt::format(
        "unsupported dtype '{}' (supported: <f2 <f4 <f8 <i4 <i8 |u1 |b1, either byte order)",
        original));
  }
  return Descr{*dtype, big_endian && DTypeSize(*dtype) > 1};
}

// A minimal reader for the Python dict literal numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  absl::Status Parse(NpyHeader* header) {
    SkipSpace();
    if (!Consume('{')) return HeaderError("expected '{' at the start of the header dict");
    bool have_descr = false, have_order = false, have_shape = false;
    while (true) {
      SkipSpace();
      if (Consume('}')) break;
      PETAL_ASSIGN_OR_RETURN(std::string key, ParseString());
      SkipSpace();
      if (!Consume(':')) return HeaderError(fmt::format("expected ':' after key '{}'", key));
      SkipSpace();
      if (key == "descr") {
        if (have_descr) return HeaderError("duplicate key 'descr'");
        have_descr = true;
        if (Peek() == '[') {
          return absl::InvalidArgumentError(
              "structured dtypes (a list descr) are not supported in .npy tensors");
        }
        PETAL_ASSIGN_OR_RETURN(std::string descr, ParseString());
        PETAL_ASSIGN_OR_RETURN(Descr d, ParseDescr(descr));
        header->dtype = d.dtype;
        header->big_endian = d.big_endian;
      } else if (key == "fortran_order") {
        if (have_order) return HeaderError("duplicate key 'fortran_order'");
        have_order = true;
        PETAL_ASSIGN_OR_RETURN(header->fortran_order, ParseBool());
      } else if (key == "shape") {
        if (have_shape) return HeaderError("duplicate key 'shape'");
        have_shape = true;
        PETAL_ASSIGN_OR_RETURN(header->shape, ParseShape());
      } else {
        return HeaderError(fmt::format("unexpected key '{}'", key));
      }
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume('}')) break;
      return HeaderError(fmt::format("expected ',' or '}}' at offset {}", pos_));
    }
    SkipSpace();
    if (pos_ != text_.size()) return HeaderError("unexpected text after the header dict");
    if (!have_descr || !have_order || !have_shape) {
      return HeaderError("the header dict must have the keys 'descr', 'fortran_order', 'shape'");
    }
    return absl::OkStatus();
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c || pos_ >= text_.size()) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t' ||
            text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  absl::StatusOr<std::string> ParseString() {
    char quote = Peek();
    if (quote != '\'' && quote != '"') {
      return HeaderError(fmt::format("expected a quoted string at offset {}", pos_));
    }
    ++pos_;
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') return HeaderError("escape sequences are not supported");
      ++pos_;
    }
    if (pos_ >= text_.size()) return HeaderError("unterminated string");
    std::string out(text_.substr(start, pos_ - start));
    ++pos_;
    return out;
  }

  absl::StatusOr<bool> ParseBool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return HeaderError("'fortran_order' must be True or False");
  }

  absl::StatusOr<Shape> ParseShape() {
    if (!Consume('(')) return HeaderError("'shape' must be a tuple");
    Shape shape;
    while (true) {
      SkipSpace();
      if (Consume(')')) break;
      if (Peek() < '0' || Peek() > '9') {
        return HeaderError("'shape' must hold non-negative integers");
      }
      int64_t value = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, Peek() - '0', &value)) {
          return absl::OutOfRangeError("a .npy shape dimension overflows int64");
        }
        ++pos_;
      }
      if (Peek() == 'L') ++pos_;  // Python 2 long literal
      shape.push_back(value);
      if (shape.size() > kMaxDims) {
        return HeaderError(fmt::format("more than {} dimensions", kMaxDims));
      }
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume(')')) break;
      return HeaderError("expected ',' or ')' in 'shape'");
    }
    return shape;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

void ByteSwapInPlace(std::byte* data, size_t count, size_t item) {
  for (size_t i = 0; i < count; ++i) std::reverse(data + i * item, data + (i + 1) * item);
}

// Copies Fortran-ordered `src` into C-ordered `dst`.
void FortranToC(const std::byte* src, std::byte* dst, const Shape& shape, size_t item,
                int64_t count) {
  const size_t n = shape.size();
  std::vector<int64_t> fstride(n, 1);
  for (size_t k = 1; k < n; ++k) fstride[k] = fstride[k - 1] * shape[k - 1];
  std::vector<int64_t> index(n, 0);
  int64_t src_elem = 0;
  for (int64_t c = 0; c < count; ++c) {
    std::memcpy(dst + c * item, src + src_elem * item, item);
    for (size_t k = n; k-- > 0;) {  // advance the C-order index, last axis fastest
      ++index[k];
      src_elem += fstride[k];
      if (index[k] < shape[k]) break;
      src_elem -= fstride[k] * shape[k];
      index[k] = 0;
    }
  }
}

uint32_t ReadLE(std::string_view bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return v;
}

// Builds the header dict text numpy writes (before newline and padding).
std::string HeaderDict(const NDArray& array) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                  DescrFor(array.dtype()), ShapeToString(array.shape()));
  if (!array.shape().empty()) {
    size_t digits = fmt::formatted_size("{}", array.shape()[0]);
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  return dict;
}

struct Preamble {
  int major;
  size_t length_width;
  size_t header_len;  // dict + padding + '\n'
};

Preamble ChoosePreamble(size_t dict_len) {
  const size_t hlen = dict_len + 1;  // the trailing '\n'
  for (auto [major, width] : {std::pair<int, size_t>{1, 2}, std::pair<int, size_t>{2, 4}}) {
    size_t pad = kArrayAlign - ((kMagicLen + width + hlen) % kArrayAlign);
    size_t total = hlen + pad;
    if (width == 4 || total <= 0xFFFF) return Preamble{major, width, total};
  }
  return Preamble{2, 4, hlen};  // unreachable
}

}  // namespace

size_t EncodedNpySize(const NDArray& array) {
  Preamble p = ChoosePreamble(HeaderDict(array).size());
  return kMagicLen + p.length_width + p.header_len + array.nbytes();
}

void AppendNpy(const NDArray& array, std::string* out) {
  const std::string dict = HeaderDict(array);
  const Preamble p = ChoosePreamble(dict.size());
  out->reserve(out->size() + kMagicLen + p.length_width + p.header_len + array.nbytes());
  out->append(kMagic);
  out->push_back(static_cast<char>(p.major));
  out->push_back('\0');
  for (size_t i = 0; i < p.length_width; ++i) {
    out->push_back(static_cast<char>((p.header_len >> (8 * i)) & 0xFF));
  }
  out->append(dict);
  out->append(p.header_len - dict.size() - 1, ' ');
  out->push_back('\n');
  out->append(array.bytes());
}

std::string EncodeNpy(const NDArray& array) {
  std::string out;
  AppendNpy(array, &out);
  return out;
}

absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view bytes) {
  if (bytes.size() < kMagicLen) {
    return absl::InvalidArgumentError(
        fmt::format("truncated .npy data: {} bytes, shorter than the magic", bytes.size()));
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError("not a .npy file: bad magic (expected \\x93NUMPY)");
  }
  NpyHeader header;
  header.major_version = static_cast<unsigned char>(bytes[6]);
  header.minor_version = static_cast<unsigned char>(bytes[7]);
  if (header.minor_version != 0 || header.major_version < 1 || header.major_version > 3) {
    return absl::InvalidArgumentError(fmt::format("unsupported .npy format version {}.{}",
                                                  header.major_version, header.minor_version));
  }
  const size_t width = header.major_version == 1 ? 2 : 4;
  if (bytes.size() < kMagicLen + width) {
    return absl::InvalidArgumentError("truncated .npy data: the header length is cut off");
  }
  const size_t header_len = ReadLE(bytes, kMagicLen, width);
  if (bytes.size() - kMagicLen - width < header_len) {
    return absl::InvalidArgumentError(fmt::format(
        "truncated .npy data: the header says {} bytes but only {} follow", header_len,
        bytes.size() - kMagicLen - width));
  }
  std::string_view dict = bytes.substr(kMagicLen + width, header_len);
  PETAL_RETURN_IF_ERROR(HeaderParser(dict).Parse(&header));
  header.data_offset = kMagicLen + width + header_len;

  PETAL_ASSIGN_OR_RETURN(int64_t count, NumElements(header.shape, DTypeSize(header.dtype)));
  header.data_size = static_cast<size_t>(count) * DTypeSize(header.dtype);
  const size_t available = bytes.size() - header.data_offset;
  if (available < header.data_size) {
    return absl::InvalidArgumentError(fmt::format(
        "truncated .npy data: {}{} needs {} bytes of data but only {} are present",
        DTypeName(header.dtype), ShapeToString(header.shape), header.data_size, available));
  }
  if (available > header.data_size) {
    return absl::InvalidArgumentError(fmt::format(
        ".npy size mismatch: {}{} needs {} bytes of data but {} are present ({} trailing bytes)",
        DTypeName(header.dtype), ShapeToString(header.shape), header.data_size, available,
        available - header.data_size));
  }
  return header;
}

namespace {

absl::StatusOr<NDArray> ConvertPayload(const NpyHeader& header, std::string_view bytes) {
  const size_t item = DTypeSize(header.dtype);
  const int64_t count = static_cast<int64_t>(header.data_size / item);
  const std::byte* src = reinterpret_cast<const std::byte*>(bytes.data() + header.data_offset);
  std::shared_ptr<std::byte> buf = AllocateBuffer(header.data_size);
  if (header.fortran_order && header.shape.size() > 1 && count > 0) {
    FortranToC(src, buf.get(), header.shape, item, count);
  } else if (header.data_size > 0) {
    std::memcpy(buf.get(), src, header.data_size);
  }
  if (header.big_endian) ByteSwapInPlace(buf.get(), static_cast<size_t>(count), item);
  return NDArray::Wrap(header.dtype, header.shape, buf.get(), header.data_size, buf);
}

}  // namespace

absl::StatusOr<NDArray> DecodeNpy(std::string_view bytes) {
  PETAL_ASSIGN_OR_RETURN(NpyHeader header, ParseNpyHeader(bytes));
  return ConvertPayload(header, bytes);
}

absl::StatusOr<NDArray> DecodeNpy(std::string&& bytes) {
  PETAL_ASSIGN_OR_RETURN(NpyHeader header, ParseNpyHeader(bytes));
  const bool c_order = !header.fortran_order || header.shape.size() <= 1;
  const size_t item = DTypeSize(header.dtype);
  const auto address = reinterpret_cast<uintptr_t>(bytes.data() + header.data_offset);
  if (!c_order || header.big_endian || address % item != 0 || header.data_size == 0) {
    return ConvertPayload(header, bytes);
  }
  // Zero copy: the array views the payload inside the string it now owns.
  auto owner = std::make_shared<std::string>(std::move(bytes));
  auto* data = reinterpret_cast<std::byte*>(owner->data() + header.data_offset);
  return NDArray::Wrap(header.dtype, header.shape, data, header.data_size, std::move(owner));
}

}  // namespace petal::common
