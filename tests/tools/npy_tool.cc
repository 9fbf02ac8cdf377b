// petal_npy_tool: exercise Petal's .npy codec from the command line.
//
//   petal_npy_tool decode IN.npy RAW_OUT        prints {"dtype","shape","nbytes"},
//                                               writes the decoded C-order LE bytes
//   petal_npy_tool encode DTYPE SHAPE RAW OUT   SHAPE like "2,3" ("" for 0-d)
//   petal_npy_tool reencode IN.npy OUT.npy      decode then encode
//   petal_npy_tool npz-list IN.npz              prints [{"name","dtype","shape"}] in order
//   petal_npy_tool npz-reencode IN.npz OUT.npz  read with Petal, write with Petal
// Exit status 0 on success, 2 with the error on stderr otherwise.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/npy.h"
#include "common/npz.h"

namespace {

using petal::common::NDArray;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

int Fail(std::string_view message) {
  std::cerr << message << "\n";
  return 2;
}

int Decode(const std::string& in, const std::string& raw_out) {
  std::string bytes;
  if (!ReadFile(in, &bytes)) return Fail("cannot read " + in);
  absl::StatusOr<NDArray> a = petal::common::DecodeNpy(std::move(bytes));
  if (!a.ok()) return Fail(a.status().ToString());
  if (!WriteFile(raw_out, a->bytes())) return Fail("cannot write " + raw_out);
  nlohmann::json j{{"dtype", std::string(petal::common::DTypeName(a->dtype()))},
                   {"shape", a->shape()},
                   {"nbytes", a->nbytes()}};
  std::cout << j.dump() << "\n";
  return 0;
}

int Encode(const std::string& dtype_name, const std::string& shape_text, const std::string& raw,
           const std::string& out) {
  absl::StatusOr<petal::common::DType> dtype = petal::common::DTypeFromName(dtype_name);
  if (!dtype.ok()) return Fail(dtype.status().ToString());
  petal::common::Shape shape;
  std::istringstream parts(shape_text);
  for (std::string part; std::getline(parts, part, ',');) {
    if (part.empty()) continue;
    size_t used = 0;
    int64_t dim = 0;
    try {
      dim = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size()) return Fail("bad shape " + shape_text);
    shape.push_back(dim);
  }
  std::string bytes;
  if (!ReadFile(raw, &bytes)) return Fail("cannot read " + raw);
  absl::StatusOr<NDArray> a = NDArray::FromBytes(*dtype, shape, bytes);
  if (!a.ok()) return Fail(a.status().ToString());
  if (!WriteFile(out, petal::common::EncodeNpy(*a))) return Fail("cannot write " + out);
  return 0;
}

int Reencode(const std::string& in, const std::string& out) {
  std::string bytes;
  if (!ReadFile(in, &bytes)) return Fail("cannot read " + in);
  absl::StatusOr<NDArray> a = petal::common::DecodeNpy(std::string_view(bytes));
  if (!a.ok()) return Fail(a.status().ToString());
  if (!WriteFile(out, petal::common::EncodeNpy(*a))) return Fail("cannot write " + out);
  return 0;
}

int NpzList(const std::string& in) {
  absl::StatusOr<petal::common::NamedArrays> arrays = petal::common::ReadNpz(in);
  if (!arrays.ok()) return Fail(arrays.status().ToString());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, a] : *arrays) {
    out.push_back(nlohmann::json{{"name", name},
                                 {"dtype", std::string(petal::common::DTypeName(a.dtype()))},
                                 {"shape", a.shape()}});
  }
  std::cout << out.dump() << "\n";
  return 0;
}

int NpzReencode(const std::string& in, const std::string& out) {
  absl::StatusOr<petal::common::NamedArrays> arrays = petal::common::ReadNpz(in);
  if (!arrays.ok()) return Fail(arrays.status().ToString());
  absl::Status st = petal::common::WriteNpz(out, *arrays);
  if (!st.ok()) return Fail(st.ToString());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: petal_npy_tool decode IN RAW | encode DTYPE SHAPE RAW OUT | reencode IN OUT | "
      "npz-list IN | npz-reencode IN OUT";
  if (argc < 2) return Fail(usage);
  const std::string cmd = argv[1];
  if (cmd == "decode" && argc == 4) return Decode(argv[2], argv[3]);
  if (cmd == "encode" && argc == 6) return Encode(argv[2], argv[3], argv[4], argv[5]);
  if (cmd == "reencode" && argc == 4) return Reencode(argv[2], argv[3]);
  if (cmd == "npz-list" && argc == 3) return NpzList(argv[2]);
  if (cmd == "npz-reencode" && argc == 4) return NpzReencode(argv[2], argv[3]);
  return Fail(usage);
}
