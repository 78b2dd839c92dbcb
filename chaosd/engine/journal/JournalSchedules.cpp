#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <string>

#include "chaosd/engine/journal/JournalImpl.h"

// The schedules of chaosd's game days (chaosd/app/daemon/Scheduler.h), kept in the journal so
// they survive a restart.
namespace chaosd {
namespace {

using journal::kScheduleColumns;
using journal::readSchedule;
using sqlite::exec;
using sqlite::Statement;
using sqlite::toNanos;

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

Result<void> FaultJournal::addSchedule(const ScheduleRecord& r) {
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();
  auto s = Statement::prepare(impl_->db.get(),
                              "INSERT INTO schedules (id, name, cron, timezone, window_start, "
                              "window_end, max_runs, runs_started, paused, experiment, vars, "
                              "created_at, creator) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
      .bind(11, r.vars.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .bind(12, toNanos(r.createdAt == WallTime{} ? std::chrono::system_clock::now() : r.createdAt))
      .bind(13, r.creator.dump());
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

}  // namespace chaosd
