#include "chaosd/base/Log.h"

#include <spdlog/pattern_formatter.h>
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

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
// JSON lines: %* is the message escaped as a JSON string body (spdlog's %v is raw).
constexpr const char* kJsonPattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%*"})";

class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static const char* kHex = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xF], kHex[c & 0xF]};
            dest.append(esc, esc + sizeof esc);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

void configure(spdlog::logger& logger, Format format, spdlog::level::level_enum level) {
  if (format == Format::kJson) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonEscapedMessage>('*').set_pattern(kJsonPattern);
    logger.set_formatter(std::move(f));
  } else {
    logger.set_pattern(kTextPattern, spdlog::pattern_time_type::utc);
  }
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
