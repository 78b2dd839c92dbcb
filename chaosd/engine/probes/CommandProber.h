#pragma once

#include <memory>
#include <optional>

#include "chaosd/base/SearchRegex.h"
#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {

// `command:` probe. Runs argv (no shell) with runBoundedCommand; passes when it exits within
// the timeout with a matching exit code (0 when the tolerance names none) and, if a stdout
// regex is set, its stdout (first 64 KiB) matches. value = the exit code.
class CommandProber final : public TimedProbe {
 public:
  static constexpr size_t kMaxStdoutBytes = size_t{64} * 1024;

  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock);

 protected:
  Observation observe() override;

 private:
  CommandProber(const ProbeSpec& spec, const Clock& clock, ValueMatcher exitCode,
                std::optional<SearchRegex> stdoutRegex)
      : TimedProbe(spec, clock), exitCode_(std::move(exitCode)), stdout_(std::move(stdoutRegex)) {}

  ValueMatcher exitCode_;
  std::optional<SearchRegex> stdout_;
};

}  // namespace chaosd
