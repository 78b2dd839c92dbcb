#pragma once

#include <chrono>
#include <memory>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/Injector.h"
#include "injectors/time/ClockKernel.h"
#include "injectors/time/FakeTime.h"

// time.skew: on an exec target, the clock of the process and its children, through
// libfaketime's control file (the exec hook in TimeFaults.cpp preloads the library);
// without a target, the host's CLOCK_REALTIME through clock_adjtime (ADJ_SETOFFSET), NTP clients
// paused meanwhile (HostClockSkew.cpp). docs/faults/time.md.
namespace chaosd {

class TimeSkewInjector final : public Injector {
 public:
  struct Options {
    // How long apply waits to see each NTP client stopped, and revert to see it resumed.
    std::chrono::milliseconds ntpWait{1000};
  };
  // The real process table for the NTP clients.
  TimeSkewInjector(std::shared_ptr<FakeTimeTargets> targets, std::shared_ptr<ClockKernel> clock);
  TimeSkewInjector(std::shared_ptr<FakeTimeTargets> targets, std::shared_ptr<ClockKernel> clock,
                   std::shared_ptr<ProcessKernel> processes, Options options);

  // Host mode (no target): refused unless guardrails.allowHostClock. Reads both clocks, the
  // boot id and the NTP clients into the undo record; changes nothing.

  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Host mode: pauses the NTP clients, then sets CLOCK_REALTIME to the true time (from the
  // recorded pair) plus the offset.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Host mode: sets CLOCK_REALTIME to the true time now (recorded realtime + monotonic elapsed)
  // unless it is there already, then resumes the NTP clients. Idempotent; on another boot the
  // clock is left alone.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // Host mode: the clock more than 10 ms off the true time, or a paused NTP client still
  // stopped.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  Result<PreparedFault> prepareExec(const FaultRequest& request, pid_t pid);
  Result<AppliedFault> applyExec(const std::string& faultId, const nlohmann::json& undo);
  Result<nlohmann::json> revertExec(const std::string& faultId, const nlohmann::json& undo);
  Result<std::vector<std::string>> auditExec(const nlohmann::json& undo);
  Result<PreparedFault> prepareHost(const FaultRequest& request);
  Result<AppliedFault> applyHost(const std::string& faultId, const nlohmann::json& undo);
  Result<nlohmann::json> revertHost(const std::string& faultId, const nlohmann::json& undo);
  Result<std::vector<std::string>> auditHost(const nlohmann::json& undo);

  std::shared_ptr<FakeTimeTargets> targets_;
  std::shared_ptr<ClockKernel> clock_;
  std::shared_ptr<ProcessKernel> processes_;
  Options options_;
};

}  // namespace chaosd
