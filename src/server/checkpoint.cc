#include "server/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/npz.h"
#include "common/status_macros.h"

namespace petal::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kFormat[] = "petal-checkpoint-1";
constexpr char kIndex[] = "checkpoint.json";

std::string RoundFile(int64_t round) { return fmt::format("round_{:06d}.npz", round); }

// Deletes round_*.npz files other than the newest `keep` ones.
void Prune(const std::string& dir, int keep) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("round_", 0) == 0 && name.size() > 10 && name.substr(name.size() - 4) == ".npz") {
      files.push_back(name);
    }
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i) {
    fs::remove(fs::path(dir) / files[i], ec);
  }
}

}  // namespace

absl::Status SaveCheckpoint(const std::string& dir, const Checkpoint& checkpoint, int keep) {
  PETAL_RETURN_IF_ERROR(common::CreateDirectories(dir));
  common::NamedArrays arrays;
  for (size_t i = 0; i < checkpoint.parameters.size(); ++i) {
    arrays.emplace_back(fmt::format("global.{}", i), checkpoint.parameters[i]);
  }
  json strategy_arrays = json::array();
  for (const auto& [name, array] : checkpoint.strategy_state.arrays) {
    arrays.emplace_back("strategy." + name, array);
    strategy_arrays.push_back(name);
  }
  const std::string file = RoundFile(checkpoint.round);
  PETAL_RETURN_IF_ERROR(
      common::Annotate(common::WriteNpz((fs::path(dir) / file).string(), arrays), "checkpoint"));
  json index = {{"format", kFormat},
                {"round", checkpoint.round},
                {"strategy", checkpoint.strategy},
                {"arrays_file", file},
                {"num_parameters", checkpoint.parameters.size()},
                {"strategy_arrays", strategy_arrays},
                {"strategy_scalars", ConfigMapToJson(checkpoint.strategy_state.scalars)},
                {"history", checkpoint.history.ToJson()}};
  PETAL_RETURN_IF_ERROR(common::Annotate(
      common::WriteFileAtomically((fs::path(dir) / kIndex).string(), index.dump(1) + "\n"),
      "checkpoint"));
  Prune(dir, std::max(keep, 1));
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir) {
  const std::string index_path = (fs::path(dir) / kIndex).string();
  PETAL_ASSIGN_OR_RETURN(std::string text, common::ReadFileToString(index_path));
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("checkpoint {}: {}", index_path, why));
  };
  Checkpoint c;
  std::string arrays_file;
  int64_t num_parameters = 0;
  std::vector<std::string> strategy_arrays;
  json index;
  try {
    index = json::parse(text);
    if (index.at("format").get<std::string>() != kFormat) return bad("unknown format");
    c.round = index.at("round").get<int64_t>();
    c.strategy = index.at("strategy").get<std::string>();
    arrays_file = index.at("arrays_file").get<std::string>();
    num_parameters = index.at("num_parameters").get<int64_t>();
    strategy_arrays = index.at("strategy_arrays").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  if (c.round < 0 || num_parameters < 0) return bad("negative round or parameter count");
  if (arrays_file.find('/') != std::string::npos) return bad("arrays_file must be a plain name");
  auto scalars = ConfigMapFromJson(index["strategy_scalars"]);
  if (!scalars.ok()) return bad(std::string(scalars.status().message()));
  c.strategy_state.scalars = *std::move(scalars);
  auto history = History::FromJson(index["history"]);
  if (!history.ok()) return bad(std::string(history.status().message()));
  c.history = *std::move(history);

  PETAL_ASSIGN_OR_RETURN(common::NamedArrays arrays,
                         common::ReadNpz((fs::path(dir) / arrays_file).string()));
  size_t next = 0;
  for (auto& [name, array] : arrays) {
    if (name.rfind("global.", 0) == 0) {
      if (name != fmt::format("global.{}", next)) return bad(fmt::format("unexpected member {}", name));
      c.parameters.push_back(std::move(array));
      ++next;
    } else if (name.rfind("strategy.", 0) == 0) {
      c.strategy_state.arrays.emplace_back(name.substr(9), std::move(array));
    } else {
      return bad(fmt::format("unexpected member {}", name));
    }
  }
  if (static_cast<int64_t>(c.parameters.size()) != num_parameters) {
    return bad(fmt::format("{} holds {} global arrays, the index says {}", arrays_file,
                           c.parameters.size(), num_parameters));
  }
  if (c.strategy_state.arrays.size() != strategy_arrays.size()) {
    return bad(fmt::format("{} holds {} strategy arrays, the index says {}", arrays_file,
                           c.strategy_state.arrays.size(), strategy_arrays.size()));
  }
  return c;
}

}  // namespace petal::server
