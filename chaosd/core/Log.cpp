#include "chaosd/core/Log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace chaosd::log {
namespace {

struct State {
  std::mutex mu;
  Format format = Format::kText;
  spdlog::level::level_enum level = spdlog::level::info;
};

State& state() {
  static State s;
  return s;
}

// JSON lines: one object per line, message escaped by spdlog's %v is not enough for
// quotes, so the text pattern is only used for the text format.
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
constexpr const char* kJsonPattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%v"})";

void configure(spdlog::logger& logger, Format format, spdlog::level::level_enum level) {
  logger.set_pattern(format == Format::kJson ? kJsonPattern : kTextPattern,
                     spdlog::pattern_time_type::utc);
  logger.set_level(level);
}

}  // namespace

Result<Format> parseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return Error(ErrorCode::kInvalid,
               "unknown log format '" + std::string(name) + "' (expected text or json)");
}

Result<void> setup(Format format, std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return Error(ErrorCode::kInvalid, "unknown log level '" + std::string(level) +
                                          "' (expected trace, debug, info, warn, error, "
                                          "critical or off)");
  }
  auto& s = state();
  std::lock_guard lock(s.mu);
  s.format = format;
  s.level = lvl;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { configure(*l, format, lvl); });
  return success();
}

std::shared_ptr<spdlog::logger> get(const std::string& subsystem) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  if (auto existing = spdlog::get(subsystem)) return existing;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(subsystem, sink);
  configure(*logger, s.format, s.level);
  spdlog::register_logger(logger);
  return logger;
}

void reopen() {
  // stderr sinks need no reopening; file sinks added later hook in here.
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
}

}  // namespace chaosd::log
