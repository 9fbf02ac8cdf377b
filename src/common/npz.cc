#include "common/npz.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/npy.h"
#include "common/status_macros.h"

namespace petal::common {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr uint16_t kMax16 = 0xFFFFu;
constexpr uint16_t kDosDate1980 = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, reproducible archives
constexpr uint16_t kFlagUtf8 = 1 << 11;

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}
void Put32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Put64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint32_t Crc32(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  while (left > 0) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Bounds-checked little-endian reader over the archive.
class Reader {
 public:
  Reader(std::string_view bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  bool Has(uint64_t offset, uint64_t n) const {
    return offset <= bytes_.size() && n <= bytes_.size() - offset;
  }
  uint64_t Get(uint64_t offset, int width) const {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[offset + i])) << (8 * i);
    }
    return v;
  }
  std::string_view Slice(uint64_t offset, uint64_t n) const { return bytes_.substr(offset, n); }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(fmt::format("{}: not a valid .npz/zip archive: {}", source_, what));
  }
  size_t size() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
  std::string_view source_;
};

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t local_offset = 0;
};

absl::StatusOr<std::string> Inflate(std::string_view data, uint64_t expected, std::string_view name) {
  std::string out;
  if (expected > (uint64_t{1} << 40)) {
    return absl::OutOfRangeError(fmt::format("member '{}' claims {} bytes uncompressed", name, expected));
  }
  if (data.size() > std::numeric_limits<uInt>::max() || expected > std::numeric_limits<uInt>::max()) {
    return absl::OutOfRangeError(fmt::format("member '{}' is too large to inflate in one piece", name));
  }
  out.resize(static_cast<size_t>(expected));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return absl::InternalError("zlib inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  const uint64_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != expected) {
    return absl::InvalidArgumentError(
        fmt::format("member '{}': corrupt deflate data (zlib code {})", name, rc));
  }
  return out;
}

// Reads the Zip64 extended-information extra field into the entry's
// placeholders (those equal to 0xFFFFFFFF), in the order the format defines.
absl::Status ApplyZip64Extra(const Reader& r, uint64_t extra, uint64_t extra_len, Entry* e) {
  uint64_t pos = extra;
  const uint64_t end = extra + extra_len;
  while (pos + 4 <= end) {
    const uint64_t id = r.Get(pos, 2), len = r.Get(pos + 2, 2);
    if (pos + 4 + len > end) return r.Error("extra field overruns its record");
    if (id == kZip64ExtraId) {
      uint64_t p = pos + 4;
      auto take = [&](uint64_t* field) -> absl::Status {
        if (*field != kMax32) return absl::OkStatus();
        if (p + 8 > pos + 4 + len) return r.Error("short Zip64 extra field");
        *field = r.Get(p, 8);
        p += 8;
        return absl::OkStatus();
      };
      PETAL_RETURN_IF_ERROR(take(&e->uncompressed));
      PETAL_RETURN_IF_ERROR(take(&e->compressed));
      PETAL_RETURN_IF_ERROR(take(&e->local_offset));
    }
    pos += 4 + len;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeNpz(const NamedArrays& arrays) {
  std::string out;
  std::string central;
  std::set<std::string> seen;
  for (const auto& [name, array] : arrays) {
    if (name.empty()) return absl::InvalidArgumentError("npz member names must not be empty");
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(fmt::format("duplicate npz member name '{}'", name));
    }
    const std::string file_name = name + ".npy";
    if (file_name.size() > kMax16) {
      return absl::InvalidArgumentError(fmt::format("npz member name '{}' is too long", name));
    }
    const std::string npy = EncodeNpy(array);
    const uint32_t crc = Crc32(npy);
    const uint64_t size = npy.size();
    const uint64_t offset = out.size();
    const bool zip64 = size >= kMax32 || offset >= kMax32;
    const uint16_t flags = IsAscii(file_name) ? 0 : kFlagUtf8;
    const uint16_t version = zip64 ? 45 : 20;

    Put32(&out, kLocalHeaderSig);
    Put16(&out, version);
    Put16(&out, flags);
    Put16(&out, 0);  // stored
    Put16(&out, 0);  // time
    Put16(&out, kDosDate1980);
    Put32(&out, crc);
    Put32(&out, zip64 ? kMax32 : static_cast<uint32_t>(size));
    Put32(&out, zip64 ? kMax32 : static_cast<uint32_t>(size));
    Put16(&out, static_cast<uint16_t>(file_name.size()));
    Put16(&out, zip64 ? 20 : 0);
    out += file_name;
    if (zip64) {
      Put16(&out, kZip64ExtraId);
      Put16(&out, 16);
      Put64(&out, size);
      Put64(&out, size);
    }
    out += npy;

    Put32(&central, kCentralHeaderSig);
    Put16(&central, version);  // made by (MS-DOS attributes, spec version)
    Put16(&central, version);
    Put16(&central, flags);
    Put16(&central, 0);
    Put16(&central, 0);
    Put16(&central, kDosDate1980);
    Put32(&central, crc);
    Put32(&central, zip64 ? kMax32 : static_cast<uint32_t>(size));
    Put32(&central, zip64 ? kMax32 : static_cast<uint32_t>(size));
    Put16(&central, static_cast<uint16_t>(file_name.size()));
    Put16(&central, zip64 ? 28 : 0);
    Put16(&central, 0);  // comment
    Put16(&central, 0);  // disk
    Put16(&central, 0);  // internal attributes
    Put32(&central, 0);  // external attributes
    Put32(&central, zip64 ? kMax32 : static_cast<uint32_t>(offset));
    central += file_name;
    if (zip64) {
      Put16(&central, kZip64ExtraId);
      Put16(&central, 24);
      Put64(&central, size);
      Put64(&central, size);
      Put64(&central, offset);
    }
  }
  const uint64_t cd_offset = out.size();
  const uint64_t cd_size = central.size();
  const uint64_t count = arrays.size();
  out += central;
  if (cd_offset >= kMax32 || cd_size >= kMax32 || count >= kMax16) {
    const uint64_t zip64_end = out.size();
    Put32(&out, kZip64EndSig);
    Put64(&out, 44);
    Put16(&out, 45);
    Put16(&out, 45);
    Put32(&out, 0);
    Put32(&out, 0);
    Put64(&out, count);
    Put64(&out, count);
    Put64(&out, cd_size);
    Put64(&out, cd_offset);
    Put32(&out, kZip64LocatorSig);
    Put32(&out, 0);
    Put64(&out, zip64_end);
    Put32(&out, 1);
  }
  Put32(&out, kEndSig);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, static_cast<uint16_t>(std::min<uint64_t>(count, kMax16)));
  Put16(&out, static_cast<uint16_t>(std::min<uint64_t>(count, kMax16)));
  Put32(&out, static_cast<uint32_t>(std::min<uint64_t>(cd_size, kMax32)));
  Put32(&out, static_cast<uint32_t>(std::min<uint64_t>(cd_offset, kMax32)));
  Put16(&out, 0);
  return out;
}

absl::StatusOr<NamedArrays> DecodeNpz(std::string_view bytes, std::string_view source) {
  Reader r(bytes, source);
  if (r.size() < 22) return r.Error("too short for an end-of-central-directory record");
  // The end record is the last 22 bytes plus an optional comment of up to 64 KiB.
  uint64_t end = 0;
  bool found = false;
  const uint64_t lowest = r.size() >= 22 + 0xFFFF ? r.size() - 22 - 0xFFFF : 0;
  for (uint64_t pos = r.size() - 22 + 1; pos-- > lowest;) {
    if (r.Get(pos, 4) == kEndSig && pos + 22 + r.Get(pos + 20, 2) == r.size()) {
      end = pos;
      found = true;
      break;
    }
  }
  if (!found) return r.Error("no end-of-central-directory record");
  uint64_t count = r.Get(end + 10, 2);
  uint64_t cd_size = r.Get(end + 12, 4);
  uint64_t cd_offset = r.Get(end + 16, 4);
  if (count == kMax16 || cd_size == kMax32 || cd_offset == kMax32) {
    if (end < 20 || r.Get(end - 20, 4) != kZip64LocatorSig) return r.Error("missing Zip64 locator");
    const uint64_t z64 = r.Get(end - 12, 8);
    if (!r.Has(z64, 56) || r.Get(z64, 4) != kZip64EndSig) return r.Error("bad Zip64 end record");
    count = r.Get(z64 + 32, 8);
    cd_size = r.Get(z64 + 40, 8);
    cd_offset = r.Get(z64 + 48, 8);
  }
  if (!r.Has(cd_offset, cd_size)) return r.Error("central directory lies outside the file");

  NamedArrays out;
  std::set<std::string> seen;
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (!r.Has(pos, 46) || r.Get(pos, 4) != kCentralHeaderSig) {
      return r.Error(fmt::format("bad central directory entry {}", i));
    }
    Entry e;
    const uint64_t flags = r.Get(pos + 8, 2);
    e.method = static_cast<uint16_t>(r.Get(pos + 10, 2));
    e.crc = static_cast<uint32_t>(r.Get(pos + 16, 4));
    e.compressed = r.Get(pos + 20, 4);
    e.uncompressed = r.Get(pos + 24, 4);
    const uint64_t name_len = r.Get(pos + 28, 2), extra_len = r.Get(pos + 30, 2),
                   comment_len = r.Get(pos + 32, 2);
    e.local_offset = r.Get(pos + 42, 4);
    if (!r.Has(pos + 46, name_len + extra_len + comment_len)) return r.Error("truncated entry");
    e.name = std::string(r.Slice(pos + 46, name_len));
    PETAL_RETURN_IF_ERROR(ApplyZip64Extra(r, pos + 46 + name_len, extra_len, &e));
    pos += 46 + name_len + extra_len + comment_len;

    if ((flags & 1) != 0) return r.Error(fmt::format("member '{}' is encrypted", e.name));
    if (e.method != 0 && e.method != 8) {
      return r.Error(fmt::format("member '{}' uses unsupported compression method {}", e.name, e.method));
    }
    if (!r.Has(e.local_offset, 30) || r.Get(e.local_offset, 4) != kLocalHeaderSig) {
      return r.Error(fmt::format("bad local header for member '{}'", e.name));
    }
    const uint64_t data = e.local_offset + 30 + r.Get(e.local_offset + 26, 2) + r.Get(e.local_offset + 28, 2);
    if (!r.Has(data, e.compressed)) {
      return r.Error(fmt::format("member '{}' is truncated", e.name));
    }
    std::string_view stored = r.Slice(data, e.compressed);
    std::string inflated;
    std::string_view npy = stored;
    if (e.method == 8) {
      PETAL_ASSIGN_OR_RETURN(inflated, Inflate(stored, e.uncompressed, e.name));
      npy = inflated;
    } else if (e.compressed != e.uncompressed) {
      return r.Error(fmt::format("member '{}' has inconsistent sizes", e.name));
    }
    if (Crc32(npy) != e.crc) return r.Error(fmt::format("CRC mismatch in member '{}'", e.name));
    if (e.name.size() < 4 || e.name.substr(e.name.size() - 4) != ".npy") {
      return r.Error(fmt::format("member '{}' is not a .npy file", e.name));
    }
    std::string key = e.name.substr(0, e.name.size() - 4);
    if (!seen.insert(key).second) return r.Error(fmt::format("duplicate member '{}'", e.name));
    absl::StatusOr<NDArray> array = DecodeNpy(npy);
    if (!array.ok()) return Annotate(array.status(), fmt::format("{}: member '{}'", source, e.name));
    out.emplace_back(std::move(key), *std::move(array));
  }
  return out;
}

absl::Status WriteNpz(const std::string& path, const NamedArrays& arrays) {
  PETAL_ASSIGN_OR_RETURN(std::string bytes, EncodeNpz(arrays));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<NamedArrays> ReadNpz(const std::string& path) {
  PETAL_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  return DecodeNpz(bytes, path);
}

}  // namespace petal::common
