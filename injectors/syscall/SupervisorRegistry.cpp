#include "injectors/syscall/SupervisorRegistry.h"

namespace chaosd {

void SupervisorRegistry::add(pid_t pid, RuleSupervisor& supervisor) {
  std::lock_guard lock(mu_);
  supervisors_[pid] = &supervisor;
}

void SupervisorRegistry::remove(pid_t pid, const RuleSupervisor& supervisor) {
  std::lock_guard lock(mu_);
  auto it = supervisors_.find(pid);
  if (it != supervisors_.end() && it->second == &supervisor) supervisors_.erase(it);
}

RuleSupervisor* SupervisorRegistry::find(pid_t pid) const {
  std::lock_guard lock(mu_);
  auto it = supervisors_.find(pid);
  return it == supervisors_.end() ? nullptr : it->second;
}

}  // namespace chaosd
