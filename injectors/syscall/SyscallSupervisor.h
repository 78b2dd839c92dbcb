#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"

struct seccomp_notif;  // <linux/seccomp.h>, included by the .cpp only

// The supervisor of one started process's seccomp listener: a thread that answers every
// intercepted call. Outside a fault it answers CONTINUE (the call runs); while a syscall
// fault is applied, matching calls fail with its errno or are held for its delay.
// docs/faults/syscall.md.
namespace chaosd {

// One applied syscall fault.
struct SyscallRule {
  std::string faultId;
  std::set<int> syscalls;             // numbers
  int errnoValue = 0;                 // syscall.error: the errno; 0 for syscall.delay
  std::chrono::nanoseconds delay{0};  // syscall.delay
  double probability = 1.0;
  std::string pathGlob;  // "" for any; else fnmatch against the call's path or fd's path
  uint64_t first = 0;    // hit at most this many (0: no limit)
  uint64_t after = 0;    // let this many matching calls through first
  uint64_t seed = 0;     // of the probability draws
};

struct SyscallRuleStats {
  uint64_t matched = 0;  // calls of the rule's syscalls (and path) seen while applied
  uint64_t hit = 0;      // of those, failed or delayed
  uint64_t passed = 0;   // let through (probability, after, first)
};

class SyscallSupervisor {
 public:
  // Starts answering the listener of the process (pid, startTime) at once.
  SyscallSupervisor(pid_t pid, uint64_t startTime, Fd listener);
  // Stops the thread; calls still held are answered CONTINUE first.
  ~SyscallSupervisor();
  SyscallSupervisor(const SyscallSupervisor&) = delete;
  SyscallSupervisor& operator=(const SyscallSupervisor&) = delete;

  pid_t pid() const { return pid_; }
  uint64_t startTime() const { return startTime_; }
  // The syscalls the filter sends here (a rule may use only these).
  void setFiltered(std::set<int> syscalls) { filtered_ = std::move(syscalls); }
  const std::set<int>& filtered() const { return filtered_; }
  // Whether the kernel's synchronous wake-up could be set on the listener (kernel >= 6.6).
  bool syncWakeUp() const { return syncWakeUp_; }

  // kConflict when a rule with that fault id is already applied.
  Result<void> addRule(SyscallRule rule);
  // Removes the rule; its counts, or nullopt when it was not applied.
  std::optional<SyscallRuleStats> removeRule(const std::string& faultId);
  bool hasRule(const std::string& faultId) const;
  // Every call answered so far (intercepted while no rule matched included).
  uint64_t answered() const { return answered_.load(); }

  // The supervisors of this process, by the pid they supervise: how an injector reaches the
  // one the engine started for an exec target.
  static SyscallSupervisor* find(pid_t pid);

 private:
  // What the applied rules make of one intercepted call, tried in fault id order: each that
  // matches counts it, the first that hits it decides, and no hit lets the call run.
  struct Verdict {
    bool hit = false;
    int err = 0;                        // fail the call with this errno
    std::chrono::nanoseconds delay{0};  // else hold it this long
  };
  Verdict judge(const seccomp_notif& req);
  void loop();

  struct ActiveRule {
    SyscallRule rule;
    SyscallRuleStats stats;
    std::mt19937_64 rng;
  };

  pid_t pid_;
  uint64_t startTime_;
  Fd listener_;
  Fd stop_;  // an eventfd that ends the loop
  std::set<int> filtered_;
  bool syncWakeUp_ = false;
  mutable std::mutex mu_;
  std::map<std::string, ActiveRule> rules_;
  std::atomic<uint64_t> answered_{0};
  std::thread thread_;
};

}  // namespace chaosd
