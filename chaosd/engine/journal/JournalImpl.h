#pragma once

#include <sqlite3.h>

#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chaosd/engine/journal/FaultJournal.h"
#include "chaosd/engine/journal/Sqlite.h"

// The inside of FaultJournal, shared by its two source files (FaultJournal.cpp: runs and
// faults; JournalSchedules.cpp: schedules). Internal to chaosd/engine/journal.
namespace chaosd {
namespace journal {

inline constexpr const char* kScheduleColumns =
    "id, name, cron, timezone, window_start, window_end, max_runs, runs_started, paused, "
    "experiment, vars, created_at, last_fire_at, last_run_id, creator";
inline constexpr const char* kFaultColumns =
    "seq, fault_id, run_id, step, fault_type, target, undo, resources, state, error, "
    "reverted_by, intent_at, applied_at, reverted_at, deadline_at, revertible, durable";
inline constexpr const char* kRunColumns =
    "run_id, experiment, owner_pid, owner_start_time, started_at, ended_at, outcome, targets, "
    "caller, boot_id";

// A row of each table, read from a statement that selected the columns above.
Result<FaultRecord> readFault(const sqlite::Statement& s);
RunRecord readRun(const sqlite::Statement& s);
ScheduleRecord readSchedule(const sqlite::Statement& s);
std::string targetsJson(const std::vector<TargetKey>& targets);

}  // namespace journal

struct FaultJournal::Impl {
  std::string path;
  sqlite::DbPtr db;
  mutable std::mutex mu;
  bool full = false;  // the current value of PRAGMA synchronous: FULL or NORMAL

  // One write transaction: the synchronous level for its commit, then BEGIN IMMEDIATE (takes
  // the write lock at once, so the busy timeout applies; a deferred transaction upgrading
  // from read to write can fail with SQLITE_BUSY without waiting).
  class WriteTx {
   public:
    static Result<WriteTx> begin(Impl& impl, bool durable) {
      if (durable != impl.full) {
        CHAOSD_TRY(sqlite::exec(impl.db.get(),
                                durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                                "setting journal durability"));
        impl.full = durable;
      }
      CHAOSD_TRY(sqlite::exec(impl.db.get(), "BEGIN IMMEDIATE", "starting a journal transaction"));
      return WriteTx(impl.db.get());
    }
    WriteTx(WriteTx&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
    WriteTx& operator=(WriteTx&&) = delete;
    ~WriteTx() {
      if (db_ != nullptr) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Result<void> commit() {
      auto r = sqlite::exec(std::exchange(db_, nullptr), "COMMIT", "committing to the journal");
      return r;
    }

   private:
    explicit WriteTx(sqlite3* db) : db_(db) {}
    sqlite3* db_;
  };

  // Foreign keys, WAL, and the schema brought to this release's version, in one transaction.
  Result<void> migrate();

  // One intent row, in the caller's transaction; kNotFound for an unknown run.
  Result<void> insertIntent(const std::string& runId, const FaultIntent& f);

  // The conflict beginRun refuses, or success: the first open run (other than `self`) with
  // a target overlapping one of `targets` whose owner is alive or whose faults are not all
  // reverted yet.
  Result<void> checkTargetsFree(const std::vector<TargetKey>& targets, const OwnerAliveFn& alive,
                                const std::string& self) const;

  // The run's faults in intent, applied or revert-failed.
  Result<int64_t> countUnreverted(const std::string& runId) const;

  Result<bool> runExists(const std::string& runId);

  Result<FaultState> stateOf(const std::string& faultId);
  // Whether the fault was journalled durable (its writes commit with synchronous=FULL).
  Result<bool> durableOf(const std::string& faultId);

  // Moves a fault to `to` when its current state is in `from`; returns the state it found.
  // `sql` sets the new state's columns; parameter 1 is the fault id, 2.. are `extra`.
  Result<std::pair<FaultState, bool>> transition(const std::string& faultId,
                                                 std::initializer_list<FaultState> from,
                                                 const std::string& sql,
                                                 const std::vector<std::string>& extra);
  // The same for several faults in one transaction (one commit): each fault whose state is in
  // `from` moves; the others stay as they are. kNotFound (and nothing written) for an unknown id.
  Result<void> transitionAll(const std::vector<std::string>& faultIds,
                             std::initializer_list<FaultState> from, const std::string& sql,
                             const std::vector<std::string>& extra);

  template <typename Bind>
  Result<std::vector<FaultRecord>> selectFaults(const std::string& where, Bind&& bind) const {
    return selectRows<FaultRecord>(
        std::string("SELECT ") + journal::kFaultColumns + " FROM faults " + where, bind,
        [](sqlite::Statement& s) { return journal::readFault(s); });
  }

  template <typename Bind>
  Result<std::vector<RunRecord>> selectRuns(const std::string& where, Bind&& bind) const {
    return selectRows<RunRecord>(
        std::string("SELECT ") + journal::kRunColumns + " FROM runs " + where, bind,
        [](sqlite::Statement& s) -> Result<RunRecord> { return journal::readRun(s); });
  }

  // Every row of a query, each read by `read` (a Result: a corrupt row fails the query).
  template <typename Record, typename Bind, typename Read>
  Result<std::vector<Record>> selectRows(const std::string& sql, Bind& bind, Read&& read) const {
    auto s = sqlite::Statement::prepare(db.get(), sql);
    if (!s) return std::move(s).error();
    bind(*s);
    std::vector<Record> out;
    for (;;) {
      auto row = s->step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      auto r = read(*s);
      if (!r) return std::move(r).error();
      out.push_back(std::move(*r));
    }
    return out;
  }
};

}  // namespace chaosd
