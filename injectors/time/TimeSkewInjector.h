#pragma once

#include <memory>

#include "injectors/Injector.h"
#include "injectors/time/ClockKernel.h"
#include "injectors/time/FakeTime.h"

// time.skew: on an exec target, the clock of the process and its children, through
// libfaketime's control file (the exec hook in TimeFaults.cpp preloads the library);
// without a target, the host's CLOCK_REALTIME. docs/faults/time.md.
namespace chaosd {

class TimeSkewInjector final : public Injector {
 public:
  TimeSkewInjector(std::shared_ptr<FakeTimeTargets> targets, std::shared_ptr<ClockKernel> clock);

  Result<PreparedFault> prepare(const FaultRequest& request) override;
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  Result<PreparedFault> prepareExec(const FaultRequest& request, pid_t pid);
  Result<AppliedFault> applyExec(const std::string& faultId, const nlohmann::json& undo);
  Result<nlohmann::json> revertExec(const std::string& faultId, const nlohmann::json& undo);
  Result<std::vector<std::string>> auditExec(const nlohmann::json& undo);

  std::shared_ptr<FakeTimeTargets> targets_;
  std::shared_ptr<ClockKernel> clock_;
};

}  // namespace chaosd
