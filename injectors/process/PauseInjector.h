#pragma once

#include <chrono>
#include <memory>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/Injector.h"

// process.pause: SIGSTOP through a pidfd to each selected process for the step's duration,
// SIGCONT at revert, in the owner or in the guardian (from the undo record alone). Processes
// already stopped by someone else are left alone, and never resumed by us.
// docs/faults/process.md.
namespace chaosd {

class PauseInjector final : public Injector {
 public:
  struct Options {
    // How long apply() waits to see each victim stopped: a stop is delivered when the
    // target next runs, which for one in uninterruptible sleep (D) is when its call ends.
    std::chrono::milliseconds stopWait{2000};
    // How long revert() waits to see each victim leave the stopped state.
    std::chrono::milliseconds resumeWait{1000};
  };
  PauseInjector();  // the real kernel
  explicit PauseInjector(std::shared_ptr<ProcessKernel> kernel);
  PauseInjector(std::shared_ptr<ProcessKernel> kernel, Options options);

  // Resolves the selector now and chooses the victims with the experiment's seed or a
  // recorded fresh one. The undo record lists `stopped`: the victims (pid and start time)
  // revert resumes. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // SIGSTOP to every victim still the recorded process; then waits (up to stopWait) until
  // /proc shows each one stopped (T). A failure half-way returns the error: revert then
  // resumes the victims already stopped (every recorded one that is stopped). Observed: per victim
  // its outcome and stoppedMs.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // SIGCONT to every recorded victim that is still the same process (pid and start time),
  // then checks it left the stopped state. Gone or reused pids are fine. Idempotent.
  // Fails (after trying every victim) when one stays stopped or cannot be signalled.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // A recorded victim (same pid and start time) still stopped (T or t).
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<ProcessKernel> kernel_;
  Options options_;
};

}  // namespace chaosd
