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
#include "chaosd/engine/journal/JournalImpl.h"
#include "chaosd/engine/journal/Sqlite.h"

namespace chaosd {
namespace {

using sqlite::DbPtr;
using sqlite::queryInt;
using sqlite::sqlError;
using sqlite::Statement;
using sqlite::toNanos;

constexpr int kBusyTimeoutMs = 5000;

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
                              "started_at, targets, caller, boot_id) VALUES (?,?,?,?,?,?,?,?)");
  if (!s) return std::move(s).error();
  WallTime started = run.startedAt == WallTime{} ? std::chrono::system_clock::now() : run.startedAt;
  s->bind(1, run.runId)
      .bind(2, run.experiment)
      .bind(3, int64_t{run.ownerPid})
      .bind(4, static_cast<int64_t>(run.ownerStartTime))
      .bind(5, toNanos(started))
      .bind(6, journal::targetsJson(run.targets))
      .bind(7, run.caller.dump())
      .bind(8, run.bootId);
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

Result<void> FaultJournal::markAppliedAll(const std::vector<std::string>& faultIds) {
  std::lock_guard lock(impl_->mu);
  return impl_->transitionAll(
      faultIds, {FaultState::kIntent},
      "UPDATE faults SET state = 'applied', applied_at = ?2 WHERE fault_id = ?1", {});
}

Result<void> FaultJournal::markRevertedAll(const std::vector<std::string>& faultIds,
                                           std::string_view by) {
  std::lock_guard lock(impl_->mu);
  return impl_->transitionAll(
      faultIds, {FaultState::kIntent, FaultState::kApplied, FaultState::kRevertFailed},
      "UPDATE faults SET state = 'reverted', reverted_at = ?2, reverted_by = ?3, error = '' "
      "WHERE fault_id = ?1",
      {std::string(by)});
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

Result<void> FaultJournal::updateUndo(const std::string& faultId, const nlohmann::json& undo) {
  std::lock_guard lock(impl_->mu);
  auto durable = impl_->durableOf(faultId);
  if (!durable) return std::move(durable).error();
  auto tx = Impl::WriteTx::begin(*impl_, *durable);
  if (!tx) return std::move(tx).error();
  auto state = impl_->stateOf(faultId);
  if (!state) return std::move(state).error();
  if (*state != FaultState::kIntent && *state != FaultState::kApplied) {
    return Error(ErrorCode::kConflict, "fault " + faultId + " is already " +
                                           std::string(faultStateName(*state)) +
                                           ": its record is not changed");
  }
  auto s = sqlite::Statement::prepare(impl_->db.get(),
                                      "UPDATE faults SET undo = ?2 WHERE fault_id = ?1");
  if (!s) return std::move(s).error();
  s->bind(1, faultId).bind(2, undo.dump());
  CHAOSD_TRY(s->run());
  return tx->commit();
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

Result<int> FaultJournal::schemaVersion() const {
  std::lock_guard lock(impl_->mu);
  auto v = queryInt(impl_->db.get(), "PRAGMA user_version");
  if (!v) return std::move(v).error();
  return static_cast<int>(*v);
}

}  // namespace chaosd
