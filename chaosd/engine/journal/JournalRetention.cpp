#include <sqlite3.h>

#include <mutex>
#include <string>

#include "chaosd/engine/journal/FaultJournal.h"
#include "chaosd/engine/journal/JournalImpl.h"
#include "chaosd/engine/journal/Sqlite.h"

// The journal's retention: old runs, their faults and old audit lines are deleted so that a
// daemon firing schedules for months keeps a journal of bounded size (docs/daemon.md).
namespace chaosd {
using sqlite::Statement;
using sqlite::toNanos;

Result<PruneResult> FaultJournal::prune(const Retention& retention, WallTime now, size_t batch) {
  std::lock_guard lock(impl_->mu);
  PruneResult out;
  if (retention.keepRuns == 0 && !retention.keepFor && retention.keepAudit == 0) return out;
  const int64_t cutoff = retention.keepFor ? toNanos(now - *retention.keepFor) : 0;
  auto tx = Impl::WriteTx::begin(*impl_, false);
  if (!tx) return std::move(tx).error();

  if (retention.keepRuns > 0 || retention.keepFor) {
    // Ended runs with nothing left on the machine, beyond the newest keepRuns or ended before
    // the cutoff; the oldest first. An open run, or one whose fault a recovery still owes, is
    // never deleted: the journal is what reverts it.
    std::string sql =
        "SELECT run_id FROM runs WHERE ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM faults "
        "f WHERE f.run_id = runs.run_id AND f.state IN ('intent', 'applied', 'revert-failed')) "
        "AND (";
    std::string why;
    if (retention.keepRuns > 0) {
      why +=
          "run_id NOT IN (SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC "
          "LIMIT ?1)";
    }
    if (retention.keepFor) why += std::string(why.empty() ? "" : " OR ") + "ended_at < ?2";
    sql += why + ") ORDER BY started_at, run_id LIMIT ?3";
    auto s = Statement::prepare(impl_->db.get(), sql);
    if (!s) return std::move(s).error();
    if (retention.keepRuns > 0) s->bind(1, static_cast<int64_t>(retention.keepRuns));
    if (retention.keepFor) s->bind(2, cutoff);
    s->bind(3, static_cast<int64_t>(batch));
    for (;;) {
      auto row = s->step();
      if (!row) return std::move(row).error().withContext("choosing runs to prune");
      if (!*row) break;
      out.runs.push_back(s->text(0));
    }
    for (const auto& id : out.runs) {
      auto faults = Statement::prepare(impl_->db.get(), "DELETE FROM faults WHERE run_id = ?1");
      if (!faults) return std::move(faults).error();
      faults->bind(1, id);
      CHAOSD_TRY(faults->run());
      out.faults += sqlite3_changes(impl_->db.get());
      auto run = Statement::prepare(impl_->db.get(), "DELETE FROM runs WHERE run_id = ?1");
      if (!run) return std::move(run).error();
      run->bind(1, id);
      CHAOSD_TRY(run->run());
    }
  }

  if (retention.keepAudit > 0 || retention.keepFor) {
    std::string where;
    if (retention.keepAudit > 0) where += "seq <= (SELECT MAX(seq) FROM audit) - ?1";
    if (retention.keepFor) where += std::string(where.empty() ? "" : " OR ") + "at < ?2";
    auto s = Statement::prepare(impl_->db.get(), "DELETE FROM audit WHERE " + where);
    if (!s) return std::move(s).error();
    if (retention.keepAudit > 0) s->bind(1, static_cast<int64_t>(retention.keepAudit));
    if (retention.keepFor) s->bind(2, cutoff);
    CHAOSD_TRY(s->run());
    out.auditLines = sqlite3_changes(impl_->db.get());
  }
  CHAOSD_TRY(tx->commit());
  return out;
}

}  // namespace chaosd
