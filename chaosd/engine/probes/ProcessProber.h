#pragma once

#include <memory>
#include <optional>

#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {

// `process:` probe. Scans /proc (ProcessTable) and counts the live processes matching the
// selector; zombies do not count (a killed process its parent has not reaped is not
// running). Judged by `count` and/or `running` (at least one matches and none is stopped,
// state T or t); with neither set, `running: true` applies. value = the count.
class ProcessProber final : public TimedProbe {
 public:
  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock,
                                               std::string procRoot = "/proc");

 protected:
  Observation observe() override;

 private:
  ProcessProber(const ProbeSpec& spec, const Clock& clock, std::optional<ValueMatcher> count,
                std::optional<bool> running, std::string procRoot)
      : TimedProbe(spec, clock),
        count_(std::move(count)),
        running_(running),
        procRoot_(std::move(procRoot)) {}

  std::optional<ValueMatcher> count_;
  std::optional<bool> running_;
  std::string procRoot_;
};

}  // namespace chaosd
