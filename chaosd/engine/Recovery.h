#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/FaultRegistry.h"

// Reverting what the journal says is still on the machine, from the undo records alone: by
// the guardian when its owner dies, by `chaosctl recover`, and by the daemon at start.
namespace chaosd {

// Whether the process (pid, startTime) still runs. A zombie, a missing pid or a pid reused by
// a process with another start time count as dead.
bool ownerAlive(pid_t pid, uint64_t startTime);

// ownerAlive() of a run's owner, as FaultJournal::beginRun wants it; false for an owner of
// another boot (ownedByAnotherBoot), whatever process has its pid and start time now.
bool journalOwnerAlive(const RunRecord& run);

// The run's owner ran in another boot than this one (both boot ids known and different).
bool ownedByAnotherBoot(const RunRecord& run);

// The start time (/proc/self/stat field 22) of the calling process, for RunRecord.
Result<uint64_t> selfStartTime();

struct RevertOutcome {
  FaultRecord fault;  // as it was before the attempt
  bool reverted = false;
  std::string error;  // why not, when !reverted
};

// Reverts the given faults in reverse order of intent, each through its injector, and marks
// each reverted (by `by`) or revert-failed in the journal. Logs one line per fault to the
// logger named `by`. Never touches anything the records do not name.
std::vector<RevertOutcome> revertFaults(FaultJournal& journal, const FaultRegistry& registry,
                                        std::vector<FaultRecord> faults, std::string_view by);

struct RecoveryFilter {
  std::string runId;   // only this run; "" for every run
  bool force = false;  // also revert the faults of owners that are still alive
  std::string by = "recovery";
};

struct RecoveryReport {
  std::vector<RevertOutcome> outcomes;  // one per fault attempted, in the order tried
  std::vector<FaultRecord> ownerAlive;  // left alone: their owner runs (not forced)
  std::vector<std::string> runsEnded;   // runs of dead owners closed by this recovery
  size_t reverted() const;
  size_t failed() const;
  bool clean() const { return failed() == 0; }
};

// Reverts every unreverted fault (intent, applied or revert-failed) whose owner is dead, or
// every one with filter.force, newest first (a fault of a run of another boot that does not
// survive a reboot is only marked reverted, by "reboot": the reboot undid it); then ends the open
// runs of dead owners that were selected ("recovered", or "recovery-failed" when a fault of theirs
// could not be reverted). Errors only when the journal cannot be read; a fault that fails to revert
// is an outcome.
Result<RecoveryReport> recoverAll(FaultJournal& journal, const FaultRegistry& registry,
                                  const RecoveryFilter& filter = {});

}  // namespace chaosd
