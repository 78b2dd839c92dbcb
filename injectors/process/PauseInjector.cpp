#include "injectors/process/PauseInjector.h"

#include <signal.h>

#include <chrono>
#include <thread>

#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/process/VictimStates.h"

namespace chaosd {
namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

PauseInjector::PauseInjector() : PauseInjector(systemProcessKernel()) {}
PauseInjector::PauseInjector(std::shared_ptr<ProcessKernel> kernel)
    : PauseInjector(std::move(kernel), Options{}) {}
PauseInjector::PauseInjector(std::shared_ptr<ProcessKernel> kernel, Options options)
    : kernel_(std::move(kernel)), options_(options) {}

Result<PreparedFault> PauseInjector::prepare(const FaultRequest& request) {
  auto plan = planProcessFault(*kernel_, request, SIGSTOP, std::chrono::nanoseconds(0));
  if (!plan) return std::move(plan).error();
  for (const Victim& v : plan->victims) {
    auto state = victimStateLetter(*kernel_, v);
    (state && isStoppedState(*state) ? plan->alreadyStopped : plan->stopped).push_back(v);
  }
  PreparedFault prepared;
  prepared.undo = plan->toJson();
  if (plan->noop) {
    prepared.description =
        "pause: no process matches " + plan->selectorText + " (empty: skip, nothing to do)";
    return prepared;
  }
  for (const Victim& v : plan->stopped) {
    prepared.resources.push_back("pid:" + std::to_string(v.pid) + "@" +
                                 std::to_string(v.startTime));
  }
  prepared.description = "pause (SIGSTOP) " + std::to_string(plan->stopped.size()) + " of " +
                         std::to_string(plan->eligible) + " processes matching " +
                         plan->selectorText + " (seed " + std::to_string(plan->seed) +
                         (plan->seedFromExperiment ? "" : ", drawn at random") +
                         "): " + describeVictims(plan->stopped);
  if (!plan->alreadyStopped.empty()) {
    prepared.description +=
        "; already stopped by someone else, left alone: " + describeVictims(plan->alreadyStopped);
  }
  return prepared;
}

Result<AppliedFault> PauseInjector::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto plan = ProcessPlan::fromJson(undo, faultId);
  if (!plan) return std::move(plan).error();
  AppliedFault applied;
  applied.backend = "pidfd";
  if (plan->noop) {
    applied.backend = "none";
    applied.observed = {{"noop", true}, {"seed", plan->seed}, {"stopped", 0}};
    return applied;
  }
  const auto start = Clock::now();
  const std::vector<Victim>& victims = plan->stopped;
  std::vector<PauseOutcome> records;
  std::vector<size_t> signalled;
  for (size_t i = 0; i < victims.size(); ++i) {
    records.emplace_back().victim = victims[i];
    auto reached = reachVictim(*kernel_, victims[i]);
    if (!reached) return std::move(reached).error().withContext("process.pause");
    if (reached->state == VictimState::kLive) {
      auto sent = signalVictim(*kernel_, reached->pidfd, SIGSTOP, victims[i]);
      if (sent) {
        records[i].outcome = "signalled";
        records[i].signalledMs = millisBetween(start, Clock::now());
        signalled.push_back(i);
        continue;
      }
      if (sent.error().sysErrno() != ESRCH) {
        return std::move(sent).error().withContext("process.pause");
      }
      reached->state = VictimState::kExited;
    }
    records[i].outcome = std::string(victimStateText(reached->state));
  }
  size_t stopped = 0;
  auto left = pollVictimStates(*kernel_, victims, signalled, start + options_.stopWait,
                               [&](size_t i, std::optional<char> state) {
                                 if (!state) {
                                   records[i].outcome = "exited after the signal";
                                   return true;
                                 }
                                 if (!isStoppedState(*state)) return false;
                                 records[i].outcome = "stopped";
                                 records[i].stoppedMs = millisBetween(start, Clock::now());
                                 ++stopped;
                                 return true;
                               });
  for (size_t i : left) {
    auto state = victimStateLetter(*kernel_, victims[i]);
    records[i].outcome = "signalled, not seen stopped within " +
                         units::formatDuration(options_.stopWait) + " (state " +
                         std::string(1, state.value_or('?')) + ")";
    log::get("process")->warn("pause not confirmed fault={} pid={} state={}", faultId,
                              victims[i].pid, state.value_or('?'));
  }
  nlohmann::json observedVictims = nlohmann::json::array();
  for (const PauseOutcome& r : records) observedVictims.push_back(r.toJson());
  applied.observed = {{"seed", plan->seed},
                      {"seedSource", plan->seedFromExperiment ? "experiment" : "random"},
                      {"victims", observedVictims},
                      {"stopped", stopped},
                      {"notConfirmed", left.size()}};
  if (!plan->alreadyStopped.empty()) {
    nlohmann::json already = nlohmann::json::array();
    for (const Victim& v : plan->alreadyStopped) already.push_back(v.toJson());
    applied.observed["alreadyStopped"] = already;
  }
  if (!plan->refused.empty()) applied.observed["refused"] = plan->refused;
  log::get("process")->info("pause applied fault={} stopped={} of={}", faultId, stopped,
                            victims.size());
  return applied;
}

Result<nlohmann::json> PauseInjector::revert(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto plan = ProcessPlan::fromJson(undo, faultId);
  if (!plan) return std::move(plan).error();
  const std::vector<Victim>& victims = plan->stopped;
  ResumedVictims r = resumeVictims(*kernel_, victims, options_.resumeWait);
  for (size_t i : r.stillStopped) {
    r.errors.push_back("pid " + std::to_string(victims[i].pid) + " (" + victims[i].comm +
                       ") is still stopped after SIGCONT");
  }
  if (!r.errors.empty()) {
    std::string all;
    for (const auto& e : r.errors) all += (all.empty() ? "" : "; ") + e;
    return Error(ErrorCode::kKernel, "process.pause revert: " + all);
  }
  const auto pids = [&](const std::vector<size_t>& indexes) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i : indexes) out.push_back(victims[i].pid);
    return out;
  };
  const nlohmann::json resumed = pids(r.resumed), gone = pids(r.gone), reused = pids(r.reused);
  log::get("process")->info("pause reverted fault={} resumed={} gone={} reused={}", faultId,
                            resumed.size(), gone.size(), reused.size());
  return nlohmann::json{{"resumed", resumed}, {"gone", gone}, {"pidReused", reused}};
}

Result<std::vector<std::string>> PauseInjector::audit(const nlohmann::json& undo) {
  auto plan = ProcessPlan::fromJson(undo, "");
  if (!plan) return std::move(plan).error();
  std::vector<std::string> left;
  for (const Victim& v : plan->stopped) {
    auto state = victimStateLetter(*kernel_, v);
    if (state && isStoppedState(*state)) {
      left.push_back("process.pause: pid " + std::to_string(v.pid) + " (" + v.comm +
                     ") is still stopped (state " + std::string(1, *state) + ")");
    }
  }
  return left;
}

}  // namespace chaosd
