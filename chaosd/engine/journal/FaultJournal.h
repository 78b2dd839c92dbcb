#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/engine/States.h"
#include "chaosd/engine/journal/TargetKey.h"
#include "injectors/Injector.h"

// The crash-safe record of every fault chaosd applies (DESIGN.md 2.1). Several processes use
// one journal at once (the owner of a run, its guardian, `chaosctl recover`, the daemon): it
// is an SQLite database in WAL mode with a busy timeout, and every write is one transaction.
//
// Durability: one connection whose `synchronous` pragma is switched per transaction. A
// transaction holding a durable fault (its effect survives a reboot: a filler file) commits
// with synchronous=FULL, so the WAL is fsynced before the call returns and therefore before the
// fault is applied; every other write commits with synchronous=NORMAL (survives a crash of the
// process, not of the machine). One connection rather than two keeps commits in order, and a
// FULL commit also makes every earlier NORMAL commit durable (the WAL is append-only).
namespace chaosd {

inline constexpr std::string_view kDefaultJournalPath = "/var/lib/chaosd/journal.db";
// 1: runs, faults. 2: schedules (the daemon's game days). 3: the targets of each run.
// 4: the caller of each run and schedule, and the daemon's audit trail. 5: the boot of each
// run's owner.
inline constexpr int kJournalSchemaVersion = 5;

using WallTime = std::chrono::system_clock::time_point;

// intent -> applied -> reverted | revert-failed; intent -> skipped (never applied).
// revert-failed -> reverted when a later attempt succeeds.

// One run of an experiment and the process that owns its faults. (ownerPid, ownerStartTime)
// names one process even after the pid is reused; the start time is /proc/PID/stat field 22.
struct RunRecord {
  std::string runId;
  std::string experiment;
  pid_t ownerPid = 0;
  uint64_t ownerStartTime = 0;
  WallTime startedAt{};
  std::optional<WallTime> endedAt;  // unset while the run is open
  std::string outcome;              // "" while open; "ok", "aborted", "owner-died", ...
  // What the run's faults touch (targetKeys()); runs journalled before version 3 have none.
  std::vector<TargetKey> targets;
  // Who asked for it through the daemon: {"uid", "gid", "groups", "user", "pid",
  // "experimentHash", "source"}; empty for `chaosctl run` and runs before version 4.
  nlohmann::json caller = nlohmann::json::object();
  // The boot its owner ran in (currentBootId()); "" before version 5. An owner of another
  // boot is dead, and the run's faults that do not survive a reboot are gone with it.
  std::string bootId;
};

// Whether the owner of an open run still runs (ownerAlive() of chaosd/engine/Recovery.h; the
// journal itself reads no /proc).
using OwnerAliveFn = std::function<bool(const RunRecord&)>;

// A fault as journalled before it is applied: everything revert() needs, from the
// injector's PreparedFault.
struct FaultIntent {
  std::string faultId;
  std::string step;
  std::string faultType;
  std::string target;  // a description for people ("delay 200ms on veth-db")
  nlohmann::json undo = nlohmann::json::object();
  std::vector<std::string> resources;
  std::optional<WallTime> deadline;  // when the fault must be gone
  bool revertible = true;
  bool durable = false;  // survives a reboot: committed with synchronous=FULL
};

// Builds the intent from what prepare() decided.
FaultIntent makeIntent(const FaultRequest& request, const PreparedFault& prepared,
                       std::optional<WallTime> deadline, bool durable);

struct FaultRecord {
  int64_t seq = 0;  // order of intent, increasing; revert in reverse
  std::string faultId;
  std::string runId;
  std::string step;
  std::string faultType;
  std::string target;
  nlohmann::json undo;
  std::vector<std::string> resources;
  FaultState state = FaultState::kIntent;
  std::string error;       // why the revert failed, or why it was skipped
  std::string revertedBy;  // "owner", "guardian", "recovery" once reverted
  WallTime intentAt{};
  std::optional<WallTime> appliedAt;
  std::optional<WallTime> revertedAt;  // reverted, revert-failed (last attempt) or skipped
  std::optional<WallTime> deadline;
  bool revertible = true;
  bool durable = false;
};

// A schedule of the daemon: an experiment (its YAML and variables) started by a cron
// expression read in a time zone, optionally only inside a daily window and up to maxRuns
// times. Kept in the journal so that it survives restarts.
struct ScheduleRecord {
  std::string id;
  std::string name;  // the experiment's metadata.name
  std::string cron;
  std::string timezone;             // IANA name; "" = UTC
  std::string windowStart;          // "HH:MM" or "" for none
  std::string windowEnd;            // "HH:MM"
  std::optional<uint32_t> maxRuns;  // unset: unlimited
  uint32_t runsStarted = 0;
  bool paused = false;
  std::string experimentYaml;
  nlohmann::json vars = nlohmann::json::object();  // NAME -> VALUE (strings)
  WallTime createdAt{};
  std::optional<WallTime> lastFireAt;  // the cron time of the last run started (or skipped)
  std::string lastRunId;
  // Who created it (as RunRecord::caller): its runs execute commands as this caller.
  nlohmann::json creator = nlohmann::json::object();
};

// One line of the daemon's audit trail: an action a caller asked for and what came of it.
struct AuditRecord {
  int64_t seq = 0;
  WallTime at{};
  std::string action;  // "submit", "abort", "schedule-add", "schedule-delete", ...
  std::string result;  // "accepted", "refused", "failed"
  uid_t uid = 0;
  pid_t pid = 0;
  std::string experimentHash;  // sha256 of the experiment's YAML, "" when none
  std::string runId;
  std::string scheduleId;
  std::string detail;  // why it was refused: the policy rule and line, the error
};

// How much history the journal keeps (the daemon's --keep-runs, --keep-days, --keep-audit).
// A run is deleted, with its faults, once it has ended, none of its faults may still be on the
// machine (intent, applied, revert-failed), and it is beyond the newest keepRuns runs or ended
// more than keepFor ago. Audit lines beyond the newest keepAudit or older than keepFor go too.
// 0 (or unset) keeps everything of that kind.
struct Retention {
  size_t keepRuns = 0;
  std::optional<std::chrono::seconds> keepFor;
  size_t keepAudit = 0;
};

struct PruneResult {
  std::vector<std::string> runs;  // the runs deleted (their folders are the caller's)
  int64_t faults = 0;
  int64_t auditLines = 0;
};

enum class JournalOpen { kCreate, kExisting };

class FaultJournal {
 public:
  FaultJournal(FaultJournal&&) noexcept;
  FaultJournal& operator=(FaultJournal&&) noexcept;
  ~FaultJournal();

  const std::string& path() const;

  // Opens a run owned by run.ownerPid. kConflict when the id exists, and kConflict when
  // another open run holds one of run.targets (keysOverlap) and either its owner is alive or
  // it still has faults not reverted (its guardian is at work, or was killed too and
  // `chaosctl recover` is due): checked and recorded in one transaction, so of two runs that
  // start at once on one target exactly one begins. The message names the other run, its
  // experiment, its owner and the target.
  // Without `alive`, every owner counts as alive.
  Result<void> beginRun(const RunRecord& run, const OwnerAliveFn& alive = {});
  // The same check alone, writing nothing: the error beginRun would return, or success.
  Result<void> checkTargetsFree(const std::vector<TargetKey>& targets,
                                const OwnerAliveFn& alive = {}) const;
  // Closes a run with its outcome. The first outcome wins: returns false (and changes
  // nothing) when the run was already ended. kNotFound for an unknown run.
  Result<bool> endRun(const std::string& runId, std::string_view outcome);

  // Journals a fault as intent, committed before return (durably if fault.durable).
  // kConflict when the fault id exists; kNotFound when the run does not.
  Result<void> recordIntent(const std::string& runId, const FaultIntent& fault);
  // The same for several faults in one transaction: all or none are journalled. FULL when
  // any of them is durable.
  Result<void> recordIntents(const std::string& runId, const std::vector<FaultIntent>& faults);

  // State transitions. Each returns true when it changed the state and false when the fault
  // was already there (a second mark, or the guardian got there first), so owner and guardian
  // can both mark the same fault. kNotFound for an unknown fault id.
  //
  // intent -> applied. kConflict if the fault was already reverted or skipped (the guardian
  // reverted it past its deadline while apply() ran): the caller must revert what it applied.
  Result<bool> markApplied(const std::string& faultId);
  // intent | applied | revert-failed -> reverted. `by` says who reverted it.
  Result<bool> markReverted(const std::string& faultId, std::string_view by = "owner");
  // intent | applied | revert-failed -> revert-failed with the error. A reverted fault stays
  // reverted (someone else succeeded).
  Result<bool> markRevertFailed(const std::string& faultId, std::string_view error);
  // Replaces the undo record of a fault that is held (intent or applied): a held fault whose
  // filter changes (a host name's `refresh`) journals the record of its new state before the
  // kernel is changed. Committed before return (durably if the fault is durable). kConflict
  // when the fault is no longer held (reverted, skipped, revert-failed): the caller must not
  // change the kernel then. kNotFound for an unknown fault id.
  Result<void> updateUndo(const std::string& faultId, const nlohmann::json& undo);
  // markApplied and markReverted for several faults in one transaction, one commit: a group
  // applied or reverted together. A fault not in a state the single mark moves from stays as
  // it is (the guardian got there first); nothing is written when an id is unknown (kNotFound).
  // Safe to batch because neither mark is what makes a fault revertible: its intent is
  // journalled before it is applied, and a revert is idempotent, so a crash before the batch
  // commits leaves faults the guardian reverts (again).
  Result<void> markAppliedAll(const std::vector<std::string>& faultIds);
  Result<void> markRevertedAll(const std::vector<std::string>& faultIds,
                               std::string_view by = "owner");
  // intent -> skipped (decided not to apply it). kConflict once it was applied.
  Result<bool> markSkipped(const std::string& faultId, std::string_view reason);

  // Faults that may still be on the machine (intent, applied, revert-failed), oldest intent
  // first; of one run, or of every run when runId is empty.
  Result<std::vector<FaultRecord>> unreverted(const std::string& runId = "") const;
  // Faults held right now (intent or applied), for `chaosctl faults`; oldest first.
  Result<std::vector<FaultRecord>> faultsHeld() const;
  // Every fault of one run, in intent order.
  Result<std::vector<FaultRecord>> faultsOfRun(const std::string& runId) const;
  // kNotFound for an unknown id.
  Result<FaultRecord> fault(const std::string& faultId) const;
  Result<RunRecord> run(const std::string& runId) const;
  // Runs not yet ended, oldest first.
  Result<std::vector<RunRecord>> openRuns() const;

  // Every run, newest first; at most `limit` (0: all).
  Result<std::vector<RunRecord>> runs(size_t limit = 0) const;

  // Schedules. kConflict when the id exists; kNotFound for an unknown id.
  Result<void> addSchedule(const ScheduleRecord& schedule);
  Result<std::vector<ScheduleRecord>> schedules() const;
  Result<ScheduleRecord> schedule(const std::string& id) const;
  Result<void> deleteSchedule(const std::string& id);
  Result<void> setSchedulePaused(const std::string& id, bool paused);
  // Records a fire time of the schedule: a run started (runId, counted in runsStarted) or a
  // time passed without a run ("" runId: missed or outside the window; not counted).
  Result<void> recordScheduleFire(const std::string& id, WallTime fireAt, const std::string& runId);

  // The audit trail: appended (synchronous=NORMAL), read newest first (at most `limit`, 0:
  // all).
  Result<void> audit(const AuditRecord& record);
  Result<std::vector<AuditRecord>> auditTrail(size_t limit = 0) const;

  // Deletes what `retention` no longer keeps, in one transaction (synchronous=NORMAL: a row
  // that comes back after a crash is deleted again). At most `batch` runs a call, the oldest
  // first, so a journal with years of history is trimmed in steps that keep the lock short.
  Result<PruneResult> prune(const Retention& retention, WallTime now, size_t batch = 500);

  // PRAGMA user_version of the open database.
  Result<int> schemaVersion() const;

 private:
  struct Impl;
  explicit FaultJournal(std::unique_ptr<Impl> impl);
  friend Result<FaultJournal> openJournal(const std::string& path, JournalOpen mode);

  std::unique_ptr<Impl> impl_;
};

// Opens and migrates the journal at path. kCreate creates it and its directory when missing
// (whoever applies faults); kExisting opens only a journal that is there and returns
// kNotFound otherwise, creating nothing (readers and reverters: `chaosctl faults`, `recover`,
// the guardian). kUnsupported when the file was written by a newer chaosd (a higher schema
// version).
Result<FaultJournal> openJournal(const std::string& path = std::string(kDefaultJournalPath),
                                 JournalOpen mode = JournalOpen::kCreate);

}  // namespace chaosd
