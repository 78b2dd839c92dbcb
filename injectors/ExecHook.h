#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "injectors/process/ExecTarget.h"

// What a fault family adds to an exec target its steps aim at, for the whole life of the
// process: what can only be set up at exec (a seccomp filter today; a cgroup or a namespace
// tomorrow). A family registers a hook with the FaultRegistry; the engine asks every hook for a
// contribution per exec target before it starts it, and keeps it until the process is
// stopped. The engine names no fault family itself.
namespace chaosd {

class ExecContribution {
 public:
  virtual ~ExecContribution() = default;
  // Adds what the child must get before exec to `options`.
  virtual void beforeExec(ExecOptions& options) = 0;
  // The process runs: takes what it keeps of it (the seccomp listener) and says what it set
  // up in `observed`, which goes into the exec target's record in the report.
  virtual void started(StartedExec& process, nlohmann::json& observed) = 0;
};

// A fault step of the method aimed at the exec target: its type and normalised args.
struct ExecStep {
  std::string faultType;
  nlohmann::json args;
};

// Given every fault step aimed at one exec target (of any type: a hook picks its family's);
// nullptr when the family needs nothing at exec for them.
using ExecHook =
    std::function<std::unique_ptr<ExecContribution>(const std::vector<ExecStep>& steps)>;

}  // namespace chaosd
