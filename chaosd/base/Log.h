#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

namespace chaosd::log {

enum class Format { kText, kJson };

// Configures every logger: text to stderr by default; JSON lines for daemons.
// level is one of trace, debug, info, warn, error, critical, off.
Result<void> setup(Format format, std::string_view level);

// Parses "text" / "json".
Result<Format> parseFormat(std::string_view name);

// The logger of one subsystem ("engine", "journal", "network"); created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& subsystem);

// Re-creates the sinks (after SIGHUP, when logs were rotated).
void reopen();

}  // namespace chaosd::log
