#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "chaosd/base/Result.h"
#include "injectors/syscall/SyscallRules.h"

// How the syscall injector reaches the supervisor of an exec target: a seam, so the injector's
// paths are unit-tested with a fake supervisor (tests/support/FakeSyscallSupervisor.h), and
// the registry of supervisors is state the syscall fault types share (made by
// registerSyscallFaults, held by its exec hook and its injectors), not a process global.
namespace chaosd {

// A supervisor as the injector sees it: it answers the filtered calls of one started
// process and applies the rules handed to it.
class RuleSupervisor {
 public:
  virtual ~RuleSupervisor() = default;
  // With the pid, names the process supervised: a record naming another start is not ours.
  virtual uint64_t startTime() const = 0;
  // The syscalls the filter sends to the supervisor: a rule may use only these.
  virtual const std::set<int>& filtered() const = 0;
  // Whether the kernel wakes the supervisor synchronously (observed, kernel >= 6.6).
  virtual bool syncWakeUp() const = 0;
  // Applies the rule from the next call on. kConflict when its fault id is applied already,
  // kInvalid when it names a syscall the filter does not send.
  virtual Result<void> addRule(SyscallRule rule) = 0;
  // Takes the rule back; its counts, or nullopt when it was not applied.
  virtual std::optional<SyscallRuleStats> removeRule(const std::string& faultId) = 0;
  virtual bool hasRule(const std::string& faultId) const = 0;
};

// The supervisors of the started processes, by pid. Thread-safe.
class SupervisorRegistry {
 public:
  // From now on find(pid) answers supervisor, which must outlive its entry.
  void add(pid_t pid, RuleSupervisor& supervisor);
  // Removes pid's entry when it is still this supervisor.
  void remove(pid_t pid, const RuleSupervisor& supervisor);
  // pid's supervisor; nullptr when the process was started without a syscall filter here.
  RuleSupervisor* find(pid_t pid) const;

 private:
  mutable std::mutex mu_;
  std::map<pid_t, RuleSupervisor*> supervisors_;
};

}  // namespace chaosd
