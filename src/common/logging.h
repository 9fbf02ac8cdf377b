// File: logging.h
//
// Petal's logger: a thin, thread-safe front end over spdlog writing to stderr.
//
//   petal::common::log::Info("round {} done: loss {:.4f}", round, loss);
//   petal::common::log::Warn("rejected result from {}: {}", peer, status);
//
// The level comes from the environment variable PETAL_LOG_LEVEL (trace, debug,
// info, warn, error, off; default info) or SetLevel(). Deliberately not named
// LOG/CHECK so it cannot clash with the glog macros LibTorch leaks.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace petal::common::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Parses "trace" ... "off"; InvalidArgument listing the accepted names otherwise.
absl::StatusOr<Level> ParseLevel(std::string_view name);
void SetLevel(Level level);
Level GetLevel();
// Names this process in every line ("[petal-client-0]"); default "petal".
void SetProcessName(std::string_view name);
bool Enabled(Level level);
void Write(Level level, std::string_view message);

template <typename... Args>
void Trace(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kTrace)) Write(Level::kTrace, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kError)) Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace petal::common::log

// Lets absl::Status appear directly in log format strings.
template <>
struct fmt::formatter<absl::Status> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const absl::Status& s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(s.ToString(), ctx);
  }
};
