#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessKernel.h"
#include "chaosd/base/ProcessTable.h"
#include "experiments/model/Experiment.h"
#include "injectors/Injector.h"
#include "injectors/process/ProcessRecords.h"

// What process.kill and process.pause share: resolving a process target into victims named by
// pid AND start time (the undo record: ProcessPlan, ProcessRecords.h), and reaching a victim
// again through a pidfd that is proven to be the same process before it is signalled.
// docs/faults/process.md.
namespace chaosd {

// The processes a selector matches now, split into those a fault may hit and those refused.
struct Candidates {
  size_t matched = 0;
  std::vector<ProcessInfo> eligible;  // not protected, not a zombie; by ascending pid
  std::vector<std::string> refused;   // "pid 1 (init) is protected: ..."
};

// Of the processes `table` matched, those a fault may hit: protected ones (checkNotProtected,
// with every chaosd guardian in the table added to the guarded pids) are refused; zombies
// are skipped (dead already, a signal would change nothing).
Candidates eligibleAmong(const ProcessTable& table, std::vector<ProcessInfo> matched,
                         const ProtectionContext& protection);

// Scans the kernel's process table, matches the selector, and keeps the eligible.
Result<Candidates> findCandidates(ProcessKernel& kernel, const ProcessSelector& selector,
                                  const ProtectionContext& protection);
// The same on the real kernel, over procRoot (a fixture tree in benchmarks).
Result<Candidates> findCandidates(const ProcessSelector& selector,
                                  const ProtectionContext& protection,
                                  const std::string& procRoot = "/proc");

// What protects processes from our faults: this process (chaosd, or chaosctl running the
// engine), which is also the invoker here, and its ancestors.
ProtectionContext defaultProtection();

// The common half of prepare(): the target resolved now, the seed decided (the experiment's,
// or a fresh one that is recorded), the victims chosen. Errors: kUnsupported for exec
// targets, kPermission when every match is protected, kNotFound when nothing matches (a
// no-op plan with `empty: skip`), kInvalid past the sanity bound of kMaxVictims.
Result<ProcessPlan> planProcessFault(ProcessKernel& kernel, const FaultRequest& request, int signal,
                                     std::chrono::nanoseconds interval);

inline constexpr size_t kMaxVictims = 10000;

// Round k of an interval kill: the selection applied to the candidates with a seed derived
// from (seed, k), then one of the selected drawn with the same derived generator.
// nullopt when there are no candidates. The same seed and candidates give the same choice.
std::optional<ProcessInfo> chooseForRound(std::vector<ProcessInfo> candidates,
                                          const Selection& selection, uint64_t seed,
                                          uint64_t round);

// A victim reached again: a pidfd opened, then its start time re-read and compared.
enum class VictimState {
  kLive,    // pidfd refers to the recorded process, which has not exited
  kExited,  // gone (or a zombie) before we could signal it
  kReused,  // the pid now names another process: never signalled
};
std::string_view victimStateText(VictimState state);

struct ReachedVictim {
  VictimState state = VictimState::kExited;
  Fd pidfd;  // valid when kLive
};
// Errors only for failures other than "gone" (EPERM from pidfd_open, an unreadable /proc).
Result<ReachedVictim> reachVictim(ProcessKernel& kernel, const Victim& victim);
Result<ReachedVictim> reachVictim(const Victim& victim);  // on the real kernel

// pidfd_send_signal. The error keeps the errno: ESRCH when the process has exited meanwhile.
Result<void> signalVictim(ProcessKernel& kernel, const Fd& pidfd, int signal, const Victim& victim);
Result<void> signalVictim(const Fd& pidfd, int signal, const Victim& victim);  // real kernel

// The state letter of the recorded process, or nullopt when it is gone or the pid reused.
std::optional<char> victimStateLetter(ProcessKernel& kernel, const Victim& victim);

// Milliseconds from `from` to `to`, with a microsecond's precision.
double millisBetween(std::chrono::steady_clock::time_point from,
                     std::chrono::steady_clock::time_point to);

std::string describeVictims(const std::vector<Victim>& victims);  // "12 (a), 34 (b), ..."

}  // namespace chaosd
