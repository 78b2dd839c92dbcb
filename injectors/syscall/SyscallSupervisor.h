#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"
#include "injectors/syscall/SupervisorRegistry.h"
#include "injectors/syscall/SyscallRules.h"

struct seccomp_notif;  // <linux/seccomp.h>, included by the .cpp only

// The supervisor of one started process's seccomp listener: a thread that answers every
// intercepted call. Outside a fault it answers CONTINUE (the call runs); while a syscall
// fault is applied, matching calls fail with its errno or are held for its delay.
// docs/faults/syscall.md.
namespace chaosd {

class SyscallSupervisor final : public RuleSupervisor {
 public:
  // Starts answering the listener of the process (pid, startTime) at once. Its owner makes it
  // findable (SupervisorRegistry::add) for the injectors.
  SyscallSupervisor(pid_t pid, uint64_t startTime, Fd listener);
  // Stops the thread; calls still held are answered CONTINUE first.
  ~SyscallSupervisor() override;
  SyscallSupervisor(const SyscallSupervisor&) = delete;
  SyscallSupervisor& operator=(const SyscallSupervisor&) = delete;

  pid_t pid() const { return pid_; }
  uint64_t startTime() const override { return startTime_; }
  // The syscalls the filter sends here (a rule may use only these).
  void setFiltered(std::set<int> syscalls) { filtered_ = std::move(syscalls); }
  const std::set<int>& filtered() const override { return filtered_; }
  // Whether the kernel's synchronous wake-up could be set on the listener (kernel >= 6.6).
  bool syncWakeUp() const override { return syncWakeUp_; }

  Result<void> addRule(SyscallRule rule) override;
  std::optional<SyscallRuleStats> removeRule(const std::string& faultId) override;
  bool hasRule(const std::string& faultId) const override;
  // Every call answered so far (intercepted while no rule matched included).
  uint64_t answered() const { return answered_.load(); }

  // The decision for one intercepted call of syscall nr (SyscallRuleSet::judge), under the
  // lock the rules are changed under; pathOf is asked only when a rule needs the path.
  SyscallVerdict judge(int nr, const std::function<std::string()>& pathOf,
                       bool readOnlyOpen = false);

 private:
  void loop();

  pid_t pid_;
  uint64_t startTime_;
  Fd listener_;
  Fd stop_;  // an eventfd that ends the loop
  std::set<int> filtered_;
  bool syncWakeUp_ = false;
  mutable std::mutex mu_;
  SyscallRuleSet rules_;
  std::atomic<uint64_t> answered_{0};
  std::thread thread_;
};

}  // namespace chaosd
