#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "chaosd/base/Result.h"
#include "injectors/syscall/FileCorruption.h"

// The rules of the syscall faults applied to one supervised process, and the decision they
// make for one intercepted call: no kernel contact, so the decision is unit-tested directly.
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
  // file.corrupt: a hit open gets a corrupted copy of the file instead. Only read-only opens
  // can be hit (others match and pass).
  std::optional<FileCorruption> corrupt;
};

struct SyscallRuleStats {
  uint64_t matched = 0;  // calls of the rule's syscalls (and path) seen while applied
  uint64_t hit = 0;      // of those, failed or delayed
  uint64_t passed = 0;   // let through (probability, after, first)
  // file.corrupt: opens handed a corrupted copy (hit counts them too), and opens let through
  // because they were not read-only or the copy could not be made (passed counts them too).
  uint64_t corrupted = 0;
  uint64_t notReadOnly = 0;
  uint64_t copyFailed = 0;
};

// What the applied rules make of one intercepted call.
struct SyscallVerdict {
  bool hit = false;
  int err = 0;                            // fail the call with this errno
  std::chrono::nanoseconds delay{0};      // else hold it this long
  std::string faultId;                    // the rule that hit
  std::optional<FileCorruption> corrupt;  // else answer with a corrupted copy of the file
};

// The applied rules, by fault id. Not locked: its owner (the supervisor) serialises calls.
class SyscallRuleSet {
 public:
  // kConflict when a rule with that fault id is already applied.
  Result<void> add(SyscallRule rule);
  // Removes the rule; its counts, or nullopt when it was not applied.
  std::optional<SyscallRuleStats> remove(const std::string& faultId);
  bool has(const std::string& faultId) const;
  bool empty() const { return rules_.empty(); }

  // The decision for one call of syscall nr: the rules are tried in fault id order; each that
  // matches counts it, the first that hits it decides, and no hit lets the call run. pathOf
  // gives the call's path (absolute, "" for none); it is asked at most once, and only when a
  // rule of that syscall has a path glob (reading it costs the target's memory).
  // `readOnlyOpen`: the call is an open for reading only (no O_DIRECT, O_PATH, O_CREAT or
  // O_TRUNC), the only kind a file.corrupt rule may hit.
  SyscallVerdict judge(int nr, const std::function<std::string()>& pathOf,
                       bool readOnlyOpen = false);
  // The supervisor's account of a corrupting hit: the copy was handed over, or could not be
  // made (the open then ran as usual: counted as passed, not hit).
  void corruptionDone(const std::string& faultId, bool handedOver);

 private:
  struct ActiveRule {
    SyscallRule rule;
    SyscallRuleStats stats;
    std::mt19937_64 rng;
  };
  std::map<std::string, ActiveRule> rules_;
};

}  // namespace chaosd
