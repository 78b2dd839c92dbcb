#pragma once

#include "injectors/Injector.h"

// process.pause: SIGSTOP through a pidfd to each selected process for the step's duration,
// SIGCONT at revert, in the owner or in the guardian (from the undo record alone). Processes
// already stopped by someone else are left alone, and never resumed by us.
// docs/faults/process.md.
namespace chaosd {

class PauseInjector final : public Injector {
 public:
  // Resolves the selector now and chooses the victims with the experiment's seed or a
  // recorded fresh one. The undo record lists `stopped`: the victims (pid and start time)
  // revert resumes. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // SIGSTOP to every victim still the recorded process; then waits (up to 2 s) until /proc
  // shows each one stopped (T). Observed: per victim its outcome and stoppedMs.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // SIGCONT to every recorded victim that is still the same process (pid and start time),
  // then checks it left the stopped state. Gone or reused pids are fine. Idempotent.
  // Fails (after trying every victim) when one stays stopped or cannot be signalled.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // A recorded victim (same pid and start time) still stopped (T or t).
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;
};

}  // namespace chaosd
