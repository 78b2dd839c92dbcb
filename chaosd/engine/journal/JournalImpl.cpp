#include "chaosd/engine/journal/JournalImpl.h"

#include <chrono>

#include "chaosd/engine/journal/JournalSchema.h"

namespace chaosd {
using sqlite::exec;
using sqlite::fromNanos;
using sqlite::queryText;
using sqlite::Statement;
using sqlite::toNanos;

namespace journal {

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
  r.caller = nlohmann::json::parse(s.text(8), nullptr, false);
  if (!r.caller.is_object()) r.caller = nlohmann::json::object();
  r.bootId = s.text(9);
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
  r.creator = nlohmann::json::parse(s.text(14), nullptr, false);
  if (!r.creator.is_object()) r.creator = nlohmann::json::object();
  return r;
}

}  // namespace journal

Result<void> FaultJournal::Impl::migrate() {
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

Result<void> FaultJournal::Impl::insertIntent(const std::string& runId, const FaultIntent& f) {
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

Result<void> FaultJournal::Impl::checkTargetsFree(const std::vector<TargetKey>& targets,
                                                  const OwnerAliveFn& alive,
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

Result<int64_t> FaultJournal::Impl::countUnreverted(const std::string& runId) const {
  auto s = Statement::prepare(db.get(),
                              "SELECT COUNT(*) FROM faults WHERE run_id = ? AND state IN "
                              "('intent', 'applied', 'revert-failed')");
  if (!s) return std::move(s).error();
  s->bind(1, runId);
  auto row = s->step();
  if (!row) return std::move(row).error();
  return s->integer(0);
}

Result<bool> FaultJournal::Impl::runExists(const std::string& runId) {
  auto s = Statement::prepare(db.get(), "SELECT 1 FROM runs WHERE run_id = ?");
  if (!s) return std::move(s).error();
  s->bind(1, runId);
  return s->step();
}

Result<FaultState> FaultJournal::Impl::stateOf(const std::string& faultId) {
  auto s = Statement::prepare(db.get(), "SELECT state FROM faults WHERE fault_id = ?");
  if (!s) return std::move(s).error();
  s->bind(1, faultId);
  auto row = s->step();
  if (!row) return std::move(row).error();
  if (!*row) return Error(ErrorCode::kNotFound, "unknown fault " + faultId);
  return parseFaultState(s->text(0));
}

Result<bool> FaultJournal::Impl::durableOf(const std::string& faultId) {
  auto s = Statement::prepare(db.get(), "SELECT durable FROM faults WHERE fault_id = ?");
  if (!s) return std::move(s).error();
  s->bind(1, faultId);
  auto row = s->step();
  if (!row) return std::move(row).error();
  if (!*row) return Error(ErrorCode::kNotFound, "unknown fault " + faultId);
  return s->integer(0) != 0;
}

Result<std::pair<FaultState, bool>> FaultJournal::Impl::transition(
    const std::string& faultId, std::initializer_list<FaultState> from, const std::string& sql,
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

Result<void> FaultJournal::Impl::transitionAll(const std::vector<std::string>& faultIds,
                                               std::initializer_list<FaultState> from,
                                               const std::string& sql,
                                               const std::vector<std::string>& extra) {
  if (faultIds.empty()) return success();
  auto tx = WriteTx::begin(*this, false);
  if (!tx) return std::move(tx).error();
  // Prepared once for the batch: a statement per fault was a third of a mark's cost.
  auto select = Statement::prepare(db.get(), "SELECT state FROM faults WHERE fault_id = ?");
  if (!select) return std::move(select).error();
  auto update = Statement::prepare(db.get(), sql);
  if (!update) return std::move(update).error();
  const int64_t now = toNanos(std::chrono::system_clock::now());
  for (const std::string& faultId : faultIds) {
    select->reset();
    select->bind(1, faultId);
    auto row = select->step();
    if (!row) return std::move(row).error();
    if (!*row) return Error(ErrorCode::kNotFound, "unknown fault " + faultId);
    auto current = parseFaultState(select->text(0));
    if (!current) return std::move(current).error();
    bool allowed = false;
    for (auto s : from) allowed = allowed || s == *current;
    if (!allowed) continue;
    update->reset();
    update->bind(1, faultId).bind(2, now);
    for (size_t i = 0; i < extra.size(); ++i) update->bind(static_cast<int>(i) + 3, extra[i]);
    CHAOSD_TRY(update->run());
  }
  return tx->commit();
}

}  // namespace chaosd
