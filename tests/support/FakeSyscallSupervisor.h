#pragma once

// FakeSyscallSupervisor: a supervisor behind the RuleSupervisor seam for the syscall
// injector's unit tests. It holds the rules in a real SyscallRuleSet, so a test can put
// "calls" through it (call()) and see applied rules fail or delay them and reverted ones stop,
// as the seccomp supervisor would; it refuses rules of syscalls outside its filter like the
// real one. The Nth addRule can be made to fail with an error.
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "injectors/syscall/SupervisorRegistry.h"
#include "injectors/syscall/SyscallRules.h"

namespace chaosd {

class FakeSyscallSupervisor final : public RuleSupervisor {
 public:
  FakeSyscallSupervisor(uint64_t startTime, std::set<int> filtered)
      : startTime_(startTime), filtered_(std::move(filtered)) {}

  uint64_t startTime() const override { return startTime_; }
  const std::set<int>& filtered() const override { return filtered_; }
  bool syncWakeUp() const override { return true; }

  Result<void> addRule(SyscallRule rule) override {
    std::lock_guard lock(mu_);
    ++addCalls_;
    if (failAt_ && *failAt_ == addCalls_) {
      failAt_.reset();
      return *failWith_;
    }
    for (int nr : rule.syscalls) {
      if (!filtered_.contains(nr)) {
        return Error(ErrorCode::kInvalid, "syscall " + std::to_string(nr) + " is not filtered");
      }
    }
    return rules_.add(std::move(rule));
  }
  std::optional<SyscallRuleStats> removeRule(const std::string& faultId) override {
    std::lock_guard lock(mu_);
    ++removeCalls_;
    return rules_.remove(faultId);
  }
  bool hasRule(const std::string& faultId) const override {
    std::lock_guard lock(mu_);
    return rules_.has(faultId);
  }

  // One intercepted call of syscall nr on path: what the applied rules make of it.
  SyscallVerdict call(int nr, const std::string& path = "") {
    std::lock_guard lock(mu_);
    return rules_.judge(nr, [&] { return path; });
  }
  // The Nth addRule from now (1: the next) fails with error, once.
  void failAddRule(int nth, Error error) {
    std::lock_guard lock(mu_);
    failAt_ = addCalls_ + nth;
    failWith_ = std::move(error);
  }
  bool empty() const {
    std::lock_guard lock(mu_);
    return rules_.empty();
  }
  int addCalls() const { return addCalls_; }
  int removeCalls() const { return removeCalls_; }

 private:
  uint64_t startTime_;
  std::set<int> filtered_;
  mutable std::mutex mu_;
  SyscallRuleSet rules_;
  int addCalls_ = 0;
  int removeCalls_ = 0;
  std::optional<int> failAt_;
  std::optional<Error> failWith_;
};

}  // namespace chaosd
