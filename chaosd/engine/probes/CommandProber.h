#pragma once

#include <memory>
#include <optional>

#include "chaosd/base/Credentials.h"
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

  // `runAs`: who the command runs as (unset: this process).
  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock,
                                               std::optional<Credentials> runAs = std::nullopt);

 protected:
  Observation observe() override;

 private:
  CommandProber(const ProbeSpec& spec, const Clock& clock, ValueMatcher exitCode,
                std::optional<SearchRegex> stdoutRegex, std::optional<Credentials> runAs)
      : TimedProbe(spec, clock),
        exitCode_(std::move(exitCode)),
        stdout_(std::move(stdoutRegex)),
        runAs_(std::move(runAs)) {}

  ValueMatcher exitCode_;
  std::optional<SearchRegex> stdout_;
  std::optional<Credentials> runAs_;
};

}  // namespace chaosd
