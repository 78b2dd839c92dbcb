#include "chaosd/engine/journal/FaultJournal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include "chaosd/base/Fd.h"
#include "chaosd/engine/journal/JournalSchema.h"
#include "chaosd/engine/journal/Sqlite.h"

namespace chaosd {
namespace {

using sqlite::DbPtr;
using sqlite::exec;
using sqlite::fromNanos;
using sqlite::queryInt;
using sqlite::queryText;
using sqlite::sqlError;
using sqlite::Statement;
using sqlite::toNanos;

constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kScheduleColumns =
    "id, name, cron, timezone, window_start, window_end, max_runs, runs_started, paused, "
    "experiment, vars, created_at, last_fire_at, last_run_id";

constexpr const char* kFaultColumns =
    "seq, fault_id, run_id, step, fault_type, target, undo, resources, state, error, "
    "reverted_by, intent_at, applied_at, reverted_at, deadline_at, revertible, durable";
constexpr const char* kRunColumns =
    "run_id, experiment, owner_pid, owner_start_time, started_at, ended_at, outcome, targets";

Result<FaultRecord> readFault(const Statement& s) {
  FaultRecord f;
  f.seq = s.integer(0);
  f.faultId = s.text(1);
  f.runId = s.text(2);
  f.step = s.text(3);
  f.faultType = s.text(4);
  f.target = s.text(5);
  f.undo = nlohmann::json::parse(s.text(6), nullptr, false);
  auto resources = nlohmann::json::parse(s.text(7), nullptr, false);
  if (f.undo.is_discarded() || !resources.is_array()) {
    return Error(ErrorCode::kIo, "fault " + f.faultId + " has a corrupt undo or resources record");
  }
  for (const auto& r : resources)
    f.resources.push_back(r.is_string() ? r.get<std::string>() : r.dump());
  auto state = parseFaultState(s.text(8));
  if (!state) return std::move(state).error().withContext("fault " + f.faultId);
  f.state = *state;
  f.error = s.text(9);
  f.revertedBy = s.text(10);
  f.intentAt = fromNanos(s.integer(11));
  f.appliedAt = s.time(12);
  f.revertedAt = s.time(13);
  f.deadline = s.time(14);
  f.revertible = s.integer(15) != 0;
  f.durable = s.integer(16) != 0;
  return f;
}

RunRecord readRun(const Statement& s) {
  RunRecord r;
  r.runId = s.text(0);
  r.experiment = s.text(1);
  r.ownerPid = static_cast<pid_t>(s.integer(2));
  r.ownerStartTime = static_cast<uint64_t>(s.integer(3));
  r.startedAt = fromNanos(s.integer(4));
  r.endedAt = s.time(5);
  r.outcome = s.text(6);
  auto targets = nlohmann::json::parse(s.text(7), nullptr, false);
  if (targets.is_array()) {
    for (const auto& t : targets) {
      if (!t.is_object()) continue;
      r.targets.push_back({t.value("key", ""), t.value("target", ""), t.value("what", "")});
    }
  }
  return r;
}

std::string targetsJson(const std::vector<TargetKey>& targets) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : targets) {
    out.push_back({{"key", t.key}, {"target", t.target}, {"what", t.what}});
  }
  return out.dump();
}

ScheduleRecord readSchedule(const Statement& s) {
  ScheduleRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.cron = s.text(2);
  r.timezone = s.text(3);
  r.windowStart = s.text(4);
  r.windowEnd = s.text(5);
  if (!s.isNull(6)) r.maxRuns = static_cast<uint32_t>(s.integer(6));
  r.runsStarted = static_cast<uint32_t>(s.integer(7));
  r.paused = s.integer(8) != 0;
  r.experimentYaml = s.text(9);
  r.vars = nlohmann::json::parse(s.text(10), nullptr, false);
  if (!r.vars.is_object()) r.vars = nlohmann::json::object();
  r.createdAt = fromNanos(s.integer(11));
  r.lastFireAt = s.time(12);
  r.lastRunId = s.text(13);
  return r;
}

// Creates the journal's directory (one level of parents is enough for /var/lib/chaosd) and
// syncs its parent, so a journal created just before a crash still has its directory.
Result<void> ensureDirectory(const std::filesystem::path& dir) {
  if (dir.empty()) return success();
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return Error::fromErrno("creating journal directory " + dir.string(), ec.value());
  if (created) {
    auto parent = dir.parent_path().empty() ? std::filesystem::path(".") : dir.parent_path();
    Fd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (pfd) ::fsync(pfd.get());
  }
  return success();
}

}  // namespace

FaultIntent makeIntent(const FaultRequest& request, const PreparedFault& prepared,
                       std::optional<WallTime> deadline, bool durable) {
  FaultIntent intent;
  intent.faultId = request.faultId;
  intent.step = request.stepName;
  intent.faultType = request.faultType;
  intent.target = prepared.description;
  intent.undo = prepared.undo;
  intent.resources = prepared.resources;
  intent.deadline = deadline;
  intent.revertible = prepared.revertible;
  intent.durable = durable;
  return intent;
}

struct FaultJournal::Impl {
  std::string path;
  DbPtr db;
  mutable std::mutex mu;
  bool full = false;  // the current value of PRAGMA synchronous: FULL or NORMAL

  // One write transaction: the synchronous level for its commit, then BEGIN IMMEDIATE (takes
  // the write lock at once, so the busy timeout applies; a deferred transaction upgrading
  // from read to write can fail with SQLITE_BUSY without waiting).
  class WriteTx {
   public:
    static Result<WriteTx> begin(Impl& impl, bool durable) {
      if (durable != impl.full) {
        CHAOSD_TRY(exec(impl.db.get(),
                        durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                        "setting journal durability"));
        impl.full = durable;
      }
      CHAOSD_TRY(exec(impl.db.get(), "BEGIN IMMEDIATE", "starting a journal transaction"));
      return WriteTx(impl.db.get());
    }
    WriteTx(WriteTx&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
    WriteTx& operator=(WriteTx&&) = delete;
    ~WriteTx() {
      if (db_ != nullptr) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Result<void> commit() {
      auto r = exec(std::exchange(db_, nullptr), "COMMIT", "committing to the journal");
      return r;
    }

   private:
    explicit WriteTx(sqlite3* db) : db_(db) {}
    sqlite3* db_;
  };

  Result<void> migrate() {
    CHAOSD_TRY(exec(db.get(), "PRAGMA foreign_keys=ON", "enabling foreign keys"));
    auto mode = queryText(db.get(), "PRAGMA journal_mode=WAL");
    if (!mode) return std::move(mode).error().withContext("switching the journal to WAL");
    if (*mode != "wal") {
      return Error(ErrorCode::kUnsupported,
                   "the journal cannot use WAL mode here (got " + *mode + ")");
    }
    CHAOSD_TRY(exec(db.get(), "PRAGMA synchronous=NORMAL", "setting journal durability"));
    full = false;
    auto tx = WriteTx::begin(*this, false);
    if (!tx) return std::move(tx).error();
    CHAOSD_TRY(upgradeJournalSchema(db.get()));
    return tx->commit();
  }

  Result<void> insertIntent(const std::string& runId, const FaultIntent& f) {
    auto s = Statement::prepare(db.get(),
                                "INSERT INTO faults (fault_id, run_id, step, fault_type, target, "
                                "undo, resources, state, intent_at, deadline_at, revertible, "
                                "durable) VALUES (?,?,?,?,?,?,?,'intent',?,?,?,?)");
    if (!s) return std::move(s).error();
    nlohmann::json resources = f.resources;
    s->bind(1, f.faultId)
        .bind(2, runId)
        .bind(3, f.step)
        .bind(4, f.faultType)
        .bind(5, f.target)
        .bind(6, f.undo.dump())
        .bind(7, resources.dump())
        .bind(8, toNanos(std::chrono::system_clock::now()))
        .bind(9, f.deadline)
        .bind(10, int64_t{f.revertible ? 1 : 0})
        .bind(11, int64_t{f.durable ? 1 : 0});
    auto r = s->run();
    if (r) return success();
    Error e = std::move(r).error();
    if (e.code() == ErrorCode::kConflict) {
      // Either the fault id is taken or the run is unknown (foreign key).
      auto known = runExists(runId);
      if (known && !*known) return Error(ErrorCode::kNotFound, "unknown run " + runId);
      return Error(ErrorCode::kConflict, "fault " + f.faultId + " is already journalled");
    }
    return std::move(e).withContext("journalling intent of fault " + f.faultId);
  }

  // The conflict beginRun refuses, or success: the first open run (other than `self`) with
  // a target overlapping one of `targets` whose owner is alive or whose faults are not all
  // reverted yet.
  Result<void> checkTargetsFree(const std::vector<TargetKey>& targets, const OwnerAliveFn& alive,
                                const std::string& self) const {
    if (targets.empty()) return success();
    auto open = selectRuns("WHERE ended_at IS NULL AND run_id != ?1 ORDER BY started_at, run_id",
                           [&](Statement& s) { s.bind(1, self); });
    if (!open) return std::move(open).error();
    for (const auto& other : *open) {
      for (const auto& theirs : other.targets) {
        for (const auto& mine : targets) {
          if (!keysOverlap(mine.key, theirs.key)) continue;
          const std::string owner = "pid " + std::to_string(other.ownerPid);
          const std::string where = "target '" + mine.target + "' (" + mine.what +
                                    ") is in use by run " + other.runId + " (" + other.experiment +
                                    ", target '" + theirs.target + "': " + theirs.what + ", ";
          if (!alive || alive(other)) {
            return Error(ErrorCode::kConflict, where + "owner " + owner + " running)");
          }
          auto held = countUnreverted(other.runId);
          if (!held) return std::move(held).error();
          if (*held > 0) {
            return Error(ErrorCode::kConflict,
                         where + "owner " + owner + " gone, " + std::to_string(*held) +
                             " fault(s) not reverted yet; `chaosctl recover` reverts them)");
          }
        }
      }
    }
    return success();
  }

  Result<int64_t> countUnreverted(const std::string& runId) const {
    auto s = Statement::prepare(db.get(),
                                "SELECT COUNT(*) FROM faults WHERE run_id = ? AND state IN "
                                "('intent', 'applied', 'revert-failed')");
    if (!s) return std::move(s).error();
    s->bind(1, runId);
    auto row = s->step();
    if (!row) return std::move(row).error();
    return s->integer(0);
  }

  Result<bool> runExists(const std::string& runId) {
    auto s = Statement::prepare(db.get(), "SELECT 1 FROM runs WHERE run_id = ?");
    if (!s) return std::move(s).error();
    s->bind(1, runId);
    return s->step();
  }

  Result<FaultState> stateOf(const std::string& faultId) {
    auto s = Statement::prepare(db.get(), "SELECT state FROM faults WHERE fault_id = ?");
    if (!s) return std::move(s).error();
    s->bind(1, faultId);
    auto row = s->step();
    if (!row) return std::move(row).error();
    if (!*row) return Error(ErrorCode::kNotFound, "unknown fault " + faultId);
    return parseFaultState(s->text(0));
  }

  // Moves a fault to `to` when its current state is in `from`; returns the state it found.
  // `sql` sets the new state's columns; parameter 1 is the fault id, 2.. are `extra`.
  Result<std::pair<FaultState, bool>> transition(const std::string& faultId,
                                                 std::initializer_list<FaultState> from,
                                                 const std::string& sql,
                                                 const std::vector<std::string>& extra) {
    auto tx = WriteTx::begin(*this, false);
    if (!tx) return std::move(tx).error();
    auto current = stateOf(faultId);
    if (!current) return std::move(current).error();
    bool allowed = false;
    for (auto s : from) allowed = allowed || s == *current;
    if (!allowed) return std::make_pair(*current, false);
    auto s = Statement::prepare(db.get(), sql);
    if (!s) return std::move(s).error();
    s->bind(1, faultId).bind(2, toNanos(std::chrono::system_clock::now()));
    for (size_t i = 0; i < extra.size(); ++i) s->bind(static_cast<int>(i) + 3, extra[i]);
    CHAOSD_TRY(s->run());
    CHAOSD_TRY(tx->commit());
    return std::make_pair(*current, true);
  }

  template <typename Bind>
  Result<std::vector<FaultRecord>> selectFaults(const std::string& where, Bind&& bind) const {
    return selectRows<FaultRecord>(std::string("SELECT ") + kFaultColumns + " FROM faults " + where,
                                   bind, [](Statement& s) { return readFault(s); });
  }

  template <typename Bind>
  Result<std::vector<RunRecord>> selectRuns(const std::string& where, Bind&& bind) const {
    return selectRows<RunRecord>(std::string("SELECT ") + kRunColumns + " FROM runs " + where, bind,
                                 [](Statement& s) -> Result<RunRecord> { return readRun(s); });
  }

  // Every row of a query, each read by `read` (a Result: a corrupt row fails the query).
  template <typename Record, typename Bind, typename Read>
  Result<std::vector<Record>> selectRows(const std::string& sql, Bind& bind, Read&& read) const {
    auto s = Statement::prepare(db.get(), sql);
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

FaultJournal::FaultJournal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaultJournal::FaultJournal(FaultJournal&&) noexcept = default;
FaultJournal& FaultJournal::operator=(FaultJournal&&) noexcept = default;
FaultJournal::~FaultJournal() = default;

const std::string& FaultJournal::path() const { return impl_->path; }

Result<FaultJournal> openJournal(const std::string& path, JournalOpen mode) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == JournalOpen::kCreate) {
    CHAOSD_TRY(ensureDirectory(std::filesystem::path(path).parent_path()));
    flags |= SQLITE_OPEN_CREATE;
  } else {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Error(ErrorCode::kNotFound, "no journal at " + path);
      return Error::fromErrno("stat " + path, errno);
    }
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return sqlError(db.get(), "opening journal " + path, rc);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  auto impl = std::make_unique<FaultJournal::Impl>();
  impl->path = path;
  impl->db = std::move(db);
  // Switching a fresh database to WAL, and the first read of one whose WAL another process is
  // recovering, can fail with SQLITE_BUSY without calling the busy handler (SQLite takes those
  // locks without waiting to avoid deadlock). Owner, guardian and `chaosctl recover` open the
  // journal at once, so retry the whole migration with backoff up to the busy timeout.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    auto migrated = impl->migrate();
    if (migrated) break;
    if (migrated.error().code() != ErrorCode::kTimeout ||
        std::chrono::steady_clock::now() + backoff > deadline) {
      return std::move(migrated).error().withContext("opening journal " + path);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
  return FaultJournal(std::move(impl));
}

Result<void> FaultJournal::beginRun(const RunRecord& run, const OwnerAliveFn& alive) {
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();
  // Under BEGIN IMMEDIATE: no other writer can begin a run between the check and the insert.
  CHAOSD_TRY(impl_->checkTargetsFree(run.targets, alive, run.runId));
  auto s = Statement::prepare(impl_->db.get(),
                              "INSERT INTO runs (run_id, experiment, owner_pid, owner_start_time, "
                              "started_at, targets) VALUES (?,?,?,?,?,?)");
  if (!s) return std::move(s).error();
  WallTime started = run.startedAt == WallTime{} ? std::chrono::system_clock::now() : run.startedAt;
  s->bind(1, run.runId)
      .bind(2, run.experiment)
      .bind(3, int64_t{run.ownerPid})
      .bind(4, static_cast<int64_t>(run.ownerStartTime))
      .bind(5, toNanos(started))
      .bind(6, targetsJson(run.targets));
  auto r = s->run();
  if (!r) {
    if (r.error().code() == ErrorCode::kConflict) {
      return Error(ErrorCode::kConflict, "run " + run.runId + " is already journalled");
    }
    return std::move(r).error().withContext("journalling run " + run.runId);
  }
  return tx->commit();
}

Result<void> FaultJournal::checkTargetsFree(const std::vector<TargetKey>& targets,
                                            const OwnerAliveFn& alive) const {
  std::lock_guard lock(impl_->mu);
  return impl_->checkTargetsFree(targets, alive, "");
}

Result<bool> FaultJournal::endRun(const std::string& runId, std::string_view outcome) {
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();
  auto s = Statement::prepare(impl_->db.get(),
                              "UPDATE runs SET ended_at = ?, outcome = ? "
                              "WHERE run_id = ? AND ended_at IS NULL");
  if (!s) return std::move(s).error();
  s->bind(1, toNanos(std::chrono::system_clock::now())).bind(2, outcome).bind(3, runId);
  CHAOSD_TRY(s->run());
  bool changed = sqlite3_changes(impl_->db.get()) > 0;
  if (!changed) {
    auto known = impl_->runExists(runId);
    if (!known) return std::move(known).error();
    if (!*known) return Error(ErrorCode::kNotFound, "unknown run " + runId);
  }
  CHAOSD_TRY(tx->commit());
  return changed;
}

Result<void> FaultJournal::recordIntent(const std::string& runId, const FaultIntent& fault) {
  return recordIntents(runId, {fault});
}

Result<void> FaultJournal::recordIntents(const std::string& runId,
                                         const std::vector<FaultIntent>& faults) {
  bool durable = false;
  for (const auto& f : faults) durable = durable || f.durable;
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, durable);
  if (!tx) return std::move(tx).error();
  for (const auto& f : faults) CHAOSD_TRY(impl_->insertIntent(runId, f));
  return tx->commit();
}

Result<bool> FaultJournal::markApplied(const std::string& faultId) {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->transition(
      faultId, {FaultState::kIntent},
      "UPDATE faults SET state = 'applied', applied_at = ?2 WHERE fault_id = ?1", {});
  if (!r) return std::move(r).error();
  auto [found, changed] = *r;
  if (changed || found == FaultState::kApplied) return changed;
  return Error(ErrorCode::kConflict, "fault " + faultId + " is already " +
                                         std::string(faultStateName(found)) +
                                         ": revert what was applied");
}

Result<bool> FaultJournal::markReverted(const std::string& faultId, std::string_view by) {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->transition(
      faultId, {FaultState::kIntent, FaultState::kApplied, FaultState::kRevertFailed},
      "UPDATE faults SET state = 'reverted', reverted_at = ?2, reverted_by = ?3, error = '' "
      "WHERE fault_id = ?1",
      {std::string(by)});
  if (!r) return std::move(r).error();
  return r->second;
}

Result<bool> FaultJournal::markRevertFailed(const std::string& faultId, std::string_view error) {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->transition(
      faultId, {FaultState::kIntent, FaultState::kApplied, FaultState::kRevertFailed},
      "UPDATE faults SET state = 'revert-failed', reverted_at = ?2, error = ?3 "
      "WHERE fault_id = ?1",
      {std::string(error)});
  if (!r) return std::move(r).error();
  return r->second;
}

Result<bool> FaultJournal::markSkipped(const std::string& faultId, std::string_view reason) {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->transition(
      faultId, {FaultState::kIntent},
      "UPDATE faults SET state = 'skipped', reverted_at = ?2, error = ?3 WHERE fault_id = ?1",
      {std::string(reason)});
  if (!r) return std::move(r).error();
  auto [found, changed] = *r;
  if (changed || found == FaultState::kSkipped) return changed;
  return Error(ErrorCode::kConflict,
               "fault " + faultId + " is already " + std::string(faultStateName(found)));
}

Result<std::vector<FaultRecord>> FaultJournal::unreverted(const std::string& runId) const {
  std::lock_guard lock(impl_->mu);
  std::string where = "WHERE state IN ('intent', 'applied', 'revert-failed')";
  if (!runId.empty()) where += " AND run_id = ?1";
  return impl_->selectFaults(where + " ORDER BY seq", [&](Statement& s) {
    if (!runId.empty()) s.bind(1, runId);
  });
}

Result<std::vector<FaultRecord>> FaultJournal::faultsHeld() const {
  std::lock_guard lock(impl_->mu);
  return impl_->selectFaults("WHERE state IN ('intent', 'applied') ORDER BY seq",
                             [](Statement&) {});
}

Result<std::vector<FaultRecord>> FaultJournal::faultsOfRun(const std::string& runId) const {
  std::lock_guard lock(impl_->mu);
  return impl_->selectFaults("WHERE run_id = ?1 ORDER BY seq",
                             [&](Statement& s) { s.bind(1, runId); });
}

Result<FaultRecord> FaultJournal::fault(const std::string& faultId) const {
  std::lock_guard lock(impl_->mu);
  auto rows = impl_->selectFaults("WHERE fault_id = ?1", [&](Statement& s) { s.bind(1, faultId); });
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return Error(ErrorCode::kNotFound, "unknown fault " + faultId);
  return std::move(rows->front());
}

Result<RunRecord> FaultJournal::run(const std::string& runId) const {
  std::lock_guard lock(impl_->mu);
  auto rows = impl_->selectRuns("WHERE run_id = ?1", [&](Statement& s) { s.bind(1, runId); });
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return Error(ErrorCode::kNotFound, "unknown run " + runId);
  return std::move(rows->front());
}

Result<std::vector<RunRecord>> FaultJournal::openRuns() const {
  std::lock_guard lock(impl_->mu);
  return impl_->selectRuns("WHERE ended_at IS NULL ORDER BY started_at, run_id", [](Statement&) {});
}

Result<std::vector<RunRecord>> FaultJournal::runs(size_t limit) const {
  std::lock_guard lock(impl_->mu);
  std::string where = "ORDER BY started_at DESC, run_id DESC";
  if (limit > 0) where += " LIMIT " + std::to_string(limit);
  return impl_->selectRuns(where, [](Statement&) {});
}

Result<void> FaultJournal::addSchedule(const ScheduleRecord& r) {
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();
  auto s = Statement::prepare(impl_->db.get(),
                              "INSERT INTO schedules (id, name, cron, timezone, window_start, "
                              "window_end, max_runs, runs_started, paused, experiment, vars, "
                              "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!s) return std::move(s).error();
  s->bind(1, r.id)
      .bind(2, r.name)
      .bind(3, r.cron)
      .bind(4, r.timezone)
      .bind(5, r.windowStart)
      .bind(6, r.windowEnd)
      .bind(8, int64_t{r.runsStarted})
      .bind(9, int64_t{r.paused ? 1 : 0})
      .bind(10, r.experimentYaml)
      .bind(11, r.vars.dump())
      .bind(12,
            toNanos(r.createdAt == WallTime{} ? std::chrono::system_clock::now() : r.createdAt));
  if (r.maxRuns) s->bind(7, int64_t{*r.maxRuns});
  auto done = s->run();
  if (!done) {
    if (done.error().code() == ErrorCode::kConflict) {
      return Error(ErrorCode::kConflict, "schedule " + r.id + " exists");
    }
    return std::move(done).error().withContext("saving schedule " + r.id);
  }
  return tx->commit();
}

Result<std::vector<ScheduleRecord>> FaultJournal::schedules() const {
  std::lock_guard lock(impl_->mu);
  auto s = Statement::prepare(impl_->db.get(), std::string("SELECT ") + kScheduleColumns +
                                                   " FROM schedules ORDER BY created_at, id");
  if (!s) return std::move(s).error();
  std::vector<ScheduleRecord> out;
  for (;;) {
    auto row = s->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    out.push_back(readSchedule(*s));
  }
  return out;
}

Result<ScheduleRecord> FaultJournal::schedule(const std::string& id) const {
  std::lock_guard lock(impl_->mu);
  auto s = Statement::prepare(
      impl_->db.get(), std::string("SELECT ") + kScheduleColumns + " FROM schedules WHERE id = ?");
  if (!s) return std::move(s).error();
  s->bind(1, id);
  auto row = s->step();
  if (!row) return std::move(row).error();
  if (!*row) return Error(ErrorCode::kNotFound, "unknown schedule " + id);
  return readSchedule(*s);
}

namespace {
// Runs one UPDATE/DELETE of a schedule by id in a transaction; kNotFound when no row changed.
template <typename Bind>
Result<void> changeSchedule(sqlite3* db, const std::string& sql, const std::string& id,
                            Bind&& bind) {
  CHAOSD_TRY(exec(db, "BEGIN IMMEDIATE", "starting a journal transaction"));
  auto fail = [db](Error e) -> Error {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  };
  auto s = Statement::prepare(db, sql);
  if (!s) return fail(std::move(s).error());
  bind(*s);
  auto r = s->run();
  if (!r) return fail(std::move(r).error());
  if (sqlite3_changes(db) == 0) return fail(Error(ErrorCode::kNotFound, "unknown schedule " + id));
  return exec(db, "COMMIT", "committing to the journal");
}
}  // namespace

Result<void> FaultJournal::deleteSchedule(const std::string& id) {
  std::lock_guard lock(impl_->mu);
  return changeSchedule(impl_->db.get(), "DELETE FROM schedules WHERE id = ?1", id,
                        [&](Statement& s) { s.bind(1, id); });
}

Result<void> FaultJournal::setSchedulePaused(const std::string& id, bool paused) {
  std::lock_guard lock(impl_->mu);
  return changeSchedule(impl_->db.get(), "UPDATE schedules SET paused = ?2 WHERE id = ?1", id,
                        [&](Statement& s) { s.bind(1, id).bind(2, int64_t{paused ? 1 : 0}); });
}

Result<void> FaultJournal::recordScheduleFire(const std::string& id, WallTime fireAt,
                                              const std::string& runId) {
  std::lock_guard lock(impl_->mu);
  return changeSchedule(impl_->db.get(),
                        runId.empty() ? "UPDATE schedules SET last_fire_at = ?2 WHERE id = ?1"
                                      : "UPDATE schedules SET last_fire_at = ?2, last_run_id = ?3, "
                                        "runs_started = runs_started + 1 WHERE id = ?1",
                        id, [&](Statement& s) {
                          s.bind(1, id).bind(2, toNanos(fireAt));
                          if (!runId.empty()) s.bind(3, runId);
                        });
}

Result<int> FaultJournal::schemaVersion() const {
  std::lock_guard lock(impl_->mu);
  auto v = queryInt(impl_->db.get(), "PRAGMA user_version");
  if (!v) return std::move(v).error();
  return static_cast<int>(*v);
}

}  // namespace chaosd
