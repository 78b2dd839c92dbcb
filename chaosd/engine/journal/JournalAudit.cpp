#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <string>

#include "chaosd/engine/journal/JournalImpl.h"

// The daemon's audit trail (journal schema version 4): who asked for what, and what came of it.
namespace chaosd {

using sqlite::fromNanos;
using sqlite::Statement;
using sqlite::toNanos;

Result<void> FaultJournal::audit(const AuditRecord& r) {
  std::lock_guard lock(impl_->mu);
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();
  auto s = Statement::prepare(impl_->db.get(),
                              "INSERT INTO audit (at, action, result, uid, pid, experiment_hash, "
                              "run_id, schedule_id, detail) VALUES (?,?,?,?,?,?,?,?,?)");
  if (!s) return std::move(s).error();
  s->bind(1, toNanos(r.at == WallTime{} ? std::chrono::system_clock::now() : r.at))
      .bind(2, r.action)
      .bind(3, r.result)
      .bind(4, int64_t{r.uid})
      .bind(5, int64_t{r.pid})
      .bind(6, r.experimentHash)
      .bind(7, r.runId)
      .bind(8, r.scheduleId)
      .bind(9, r.detail);
  auto done = s->run();
  if (!done) return std::move(done).error().withContext("journalling an audit line");
  return tx->commit();
}

Result<std::vector<AuditRecord>> FaultJournal::auditTrail(size_t limit) const {
  std::lock_guard lock(impl_->mu);
  std::string sql =
      "SELECT seq, at, action, result, uid, pid, experiment_hash, run_id, schedule_id, detail "
      "FROM audit ORDER BY seq DESC";
  if (limit > 0) sql += " LIMIT " + std::to_string(limit);
  auto s = Statement::prepare(impl_->db.get(), sql);
  if (!s) return std::move(s).error();
  std::vector<AuditRecord> out;
  for (;;) {
    auto row = s->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    AuditRecord a;
    a.seq = s->integer(0);
    a.at = fromNanos(s->integer(1));
    a.action = s->text(2);
    a.result = s->text(3);
    a.uid = static_cast<uid_t>(s->integer(4));
    a.pid = static_cast<pid_t>(s->integer(5));
    a.experimentHash = s->text(6);
    a.runId = s->text(7);
    a.scheduleId = s->text(8);
    a.detail = s->text(9);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace chaosd
