#include "chaosd/engine/Recovery.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "chaosd/base/Log.h"
#include "chaosd/base/ProcessTable.h"

namespace chaosd {
namespace {

// One injector per fault type for a whole recovery, as the engine holds one per type for a
// run: an injector keeps what it opened for the faults it reverts (the nftables context of a
// namespace: closing a netfilter socket after a change waits for an RCU grace period, 10-20 ms,
// so a context per fault made the guardian's revert of 500 partitions take seconds).
class Reverters {
 public:
  explicit Reverters(const FaultRegistry& registry) : registry_(registry) {}

  Result<void> revert(const FaultRecord& fault) {
    auto it = injectors_.find(fault.faultType);
    if (it == injectors_.end()) {
      const FaultType* type = registry_.find(fault.faultType);
      if (type == nullptr || !type->factory) {
        return Error(ErrorCode::kUnsupported,
                     "fault type " + fault.faultType + " is not available in this build");
      }
      it = injectors_.emplace(fault.faultType, type->factory()).first;
    }
    auto reverted = it->second->revert(fault.faultId, fault.undo);
    if (!reverted) return std::move(reverted).error();
    return success();
  }

 private:
  const FaultRegistry& registry_;
  std::map<std::string, std::unique_ptr<Injector>> injectors_;
};

}  // namespace

bool ownerAlive(pid_t pid, uint64_t startTime) {
  if (pid <= 0) return false;
  auto info = readProcess(pid);
  if (!info) return info.error().code() != ErrorCode::kNotFound;  // unreadable: assume alive
  return info->startTime == startTime && info->state != 'Z' && info->state != 'X';
}

bool journalOwnerAlive(const RunRecord& run) {
  if (ownedByAnotherBoot(run)) return false;
  return ownerAlive(run.ownerPid, run.ownerStartTime);
}

bool ownedByAnotherBoot(const RunRecord& run) {
  const std::string now = currentBootId();
  return !run.bootId.empty() && !now.empty() && run.bootId != now;
}

Result<uint64_t> selfStartTime() { return readStartTime(::getpid()); }

std::vector<RevertOutcome> revertFaults(FaultJournal& journal, const FaultRegistry& registry,
                                        std::vector<FaultRecord> faults, std::string_view by) {
  std::sort(faults.begin(), faults.end(),
            [](const FaultRecord& a, const FaultRecord& b) { return a.seq > b.seq; });
  auto logger = log::get(std::string(by));
  std::vector<RevertOutcome> outcomes;
  Reverters reverters(registry);
  for (auto& fault : faults) {
    RevertOutcome outcome{fault, false, ""};
    auto reverted = reverters.revert(fault);
    if (reverted) {
      auto marked = journal.markReverted(fault.faultId, by);
      outcome.reverted = true;
      if (!marked)
        outcome.error = "reverted, but the journal write failed: " + marked.error().describe();
    } else {
      outcome.error = reverted.error().describe();
      auto marked = journal.markRevertFailed(fault.faultId, outcome.error);
      if (!marked)
        outcome.error += " (and the journal write failed: " + marked.error().describe() + ")";
    }
    if (outcome.reverted) {
      logger->info("fault reverted fault={} type={} run={} was={} target=\"{}\"{}", fault.faultId,
                   fault.faultType, fault.runId, faultStateName(fault.state), fault.target,
                   outcome.error.empty() ? "" : " warning=\"" + outcome.error + "\"");
    } else {
      logger->error("fault revert failed fault={} type={} run={} was={} target=\"{}\" error=\"{}\"",
                    fault.faultId, fault.faultType, fault.runId, faultStateName(fault.state),
                    fault.target, outcome.error);
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

size_t RecoveryReport::reverted() const {
  return static_cast<size_t>(std::count_if(outcomes.begin(), outcomes.end(),
                                           [](const RevertOutcome& o) { return o.reverted; }));
}

size_t RecoveryReport::failed() const { return outcomes.size() - reverted(); }

Result<RecoveryReport> recoverAll(FaultJournal& journal, const FaultRegistry& registry,
                                  const RecoveryFilter& filter) {
  auto faults = journal.unreverted(filter.runId);
  if (!faults) return std::move(faults).error().withContext("recovering faults");
  auto runs = journal.openRuns();
  if (!runs) return std::move(runs).error().withContext("recovering faults");

  // Owner liveness and boot, looked up once per run.
  std::map<std::string, std::pair<bool, bool>> owners;  // run -> (alive, of another boot)
  auto ownerOf = [&](const std::string& runId) -> std::pair<bool, bool> {
    auto it = owners.find(runId);
    if (it != owners.end()) return it->second;
    auto run = journal.run(runId);
    std::pair<bool, bool> o{run.ok() && journalOwnerAlive(*run),
                            run.ok() && ownedByAnotherBoot(*run)};
    owners.emplace(runId, o);
    return o;
  };

  RecoveryReport report;
  std::vector<FaultRecord> selected;
  std::vector<FaultRecord> goneWithBoot;
  for (auto& f : *faults) {
    auto [live, earlierBoot] = ownerOf(f.runId);
    if (!filter.force && live) {
      report.ownerAlive.push_back(std::move(f));
    } else if (earlierBoot && !f.durable) {
      goneWithBoot.push_back(std::move(f));
    } else {
      selected.push_back(std::move(f));
    }
  }
  // Kernel state (qdiscs, nft tables, a stopped process, a cgroup) of an earlier boot died
  // with it: nothing to undo, and its pids and start times may name this boot's processes,
  // which a revert must not signal. Only what survives a reboot (durable: filler files) is
  // reverted through its injector.
  auto logger = log::get(filter.by);
  for (auto& f : goneWithBoot) {
    RevertOutcome outcome{f, true, ""};
    auto marked = journal.markReverted(f.faultId, "reboot");
    if (!marked) outcome.error = "the journal write failed: " + marked.error().describe();
    logger->info("fault gone with a reboot fault={} type={} run={} was={} target=\"{}\"", f.faultId,
                 f.faultType, f.runId, faultStateName(f.state), f.target);
    report.outcomes.push_back(std::move(outcome));
  }
  auto reverted = revertFaults(journal, registry, std::move(selected), filter.by);
  for (auto& o : reverted) report.outcomes.push_back(std::move(o));

  std::set<std::string> failedRuns;
  for (const auto& o : report.outcomes) {
    if (!o.reverted) failedRuns.insert(o.fault.runId);
  }
  for (const auto& run : *runs) {
    if (!filter.runId.empty() && run.runId != filter.runId) continue;
    if (ownerOf(run.runId).first) continue;
    bool failed = failedRuns.contains(run.runId);
    auto ended = journal.endRun(run.runId, failed ? "recovery-failed" : "recovered");
    if (ended.ok() && *ended) report.runsEnded.push_back(run.runId);
  }
  return report;
}

}  // namespace chaosd
