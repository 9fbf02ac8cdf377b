#include "common/logging.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>


namespace petal::common::log {
namespace {

std::atomic<Level>& CurrentLevel() {
  static std::atomic<Level> level = [] {
    const char* env = std::getenv("PETAL_LOG_LEVEL");
    if (env != nullptr) {
      absl::StatusOr<Level> parsed = ParseLevel(env);
      if (parsed.ok()) return *parsed;
    }
    return Level::kInfo;
  }();
  return level;
}

struct LoggerHolder {
  std::mutex mu;
  std::shared_ptr<spdlog::logger> logger;
};

constexpr const char* kPattern = "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v";

std::shared_ptr<spdlog::logger> MakeLogger(std::string name, spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>(std::move(name), std::move(sink));
  logger->set_pattern(kPattern);
  logger->set_level(spdlog::level::trace);  // filtering happens in Enabled()
  logger->flush_on(spdlog::level::trace);
  return logger;
}

LoggerHolder& Holder() {
  static LoggerHolder holder{
      .mu = {}, .logger = MakeLogger("petal", std::make_shared<spdlog::sinks::stderr_sink_mt>())};
  return holder;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return absl::InvalidArgumentError(
      fmt::format("unknown log level '{}' (use trace, debug, info, warn, error, off)", name));
}

void SetLevel(Level level) { CurrentLevel().store(level); }
Level GetLevel() { return CurrentLevel().load(); }

void SetProcessName(std::string_view name) {
  LoggerHolder& h = Holder();
  std::lock_guard<std::mutex> lock(h.mu);
  auto renamed = MakeLogger(std::string(name), h.logger->sinks().front());
  h.logger = std::move(renamed);
}

bool Enabled(Level level) {
  Level current = GetLevel();
  return current != Level::kOff && level >= current;
}

void Write(Level level, std::string_view message) {
  std::shared_ptr<spdlog::logger> logger;
  {
    LoggerHolder& h = Holder();
    std::lock_guard<std::mutex> lock(h.mu);
    logger = h.logger;
  }
  logger->log(ToSpd(level), message);
}

}  // namespace petal::common::log
