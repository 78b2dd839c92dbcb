#include "chaosd/app/run/OwnedRun.h"

#include <unistd.h>

#include <filesystem>

#include "chaosd/base/Log.h"
#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/ProbeRunner.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/Rollbacks.h"
#include "chaosd/engine/Waiter.h"
#include "chaosd/engine/probes/Probe.h"
#include "injectors/process/TargetResolution.h"
#include "reports/ReportJson.h"

namespace chaosd {
namespace {

std::vector<TargetKey> keysNow(const Experiment& experiment) {
  auto table = ProcessTable::scan();
  return targetKeys(experiment, table ? &*table : nullptr);
}

bool hasExecTarget(const Experiment& experiment) {
  for (const auto& t : experiment.targets) {
    if (t.kind == TargetKind::kExec) return true;
  }
  return false;
}

}  // namespace

int OwnedRunResult::exitCode() const {
  if (!reportError) return run.exitCode();
  return worse(run.outcome, Outcome::kError) == Outcome::kError ? exitCodeOf(Outcome::kError)
                                                                : run.exitCode();
}

OwnedRun::OwnedRun(const Experiment& experiment, OwnedRunConfig config)
    : experiment_(experiment), config_(std::move(config)), targets_(keysNow(experiment)) {
  config_.guardian.journalPath = config_.journal->path();
  config_.guardian.runId = config_.runId;
}

Result<OwnedRunResult> OwnedRun::run() {
  FaultJournal& journal = *config_.journal;
  auto start = selfStartTime();
  RunRecord record{config_.runId,
                   experiment_.metadata.name,
                   ::getpid(),
                   start ? *start : 0,
                   std::chrono::system_clock::now(),
                   std::nullopt,
                   "",
                   targets_,
                   config_.caller,
                   currentBootId()};
  auto begun = journal.beginRun(record, journalOwnerAlive);
  if (!begun) {
    if (begun.error().code() == ErrorCode::kConflict) return std::move(begun).error();
    return Error(begun.error().code(), "journal: " + begun.error().describe());
  }
  auto guardian = startGuardian(config_.guardian);
  if (!guardian) {
    (void)journal.endRun(config_.runId, "error");
    return Error(guardian.error().code(),
                 "cannot start the guardian: " + guardian.error().describe() +
                     "; no fault is applied without a guardian");
  }
  RealClock clock;
  RealWaiter waiter(clock);
  RunResult result;
  {
    Engine engine(experiment_, engineDeps(clock, waiter, *guardian), config_.runId);
    {
      std::lock_guard lock(mu_);
      engine_ = &engine;
      if (abortReason_) engine.requestAbort(*abortReason_);
    }
    result = engine.run();
    std::lock_guard lock(mu_);
    engine_ = nullptr;
  }
  return finish(std::move(result), *guardian);
}

EngineDeps OwnedRun::engineDeps(const Clock& clock, Waiter& waiter, GuardianHandle& guardian) {
  EngineDeps deps;
  deps.clock = &clock;
  deps.waiter = &waiter;
  deps.registry = config_.registry;
  deps.journal = config_.journal;
  deps.guardian = &guardian;
  deps.makeProbe = [&clock, runAs = config_.runAs](const ProbeSpec& spec) {
    return makeProbe(spec, clock, runAs);
  };
  deps.makeRunner = [](std::vector<std::unique_ptr<Probe>> probes, ProbeRunner::Deliver d) {
    return std::make_unique<ThreadedProbeRunner>(std::move(probes), std::move(d));
  };
  deps.runRollback = [runAs = config_.runAs](const RollbackSpec& r) {
    return runRollbackCommand(r, runAs);
  };
  deps.runAs = config_.runAs;
  deps.observer = config_.observer;
  deps.startAt = config_.startAt;
  // Exec targets write their output into the run folder, next to the report; when it cannot
  // be made, the output is lost and the run goes on.
  if (hasExecTarget(experiment_)) {
    std::error_code ec;
    std::filesystem::create_directories(config_.runDir, ec);
    if (!ec) deps.execLogDir = config_.runDir;
  }
  const pid_t guardianPid = guardian.pid();
  const pid_t invoker = config_.invokerPid > 0 ? config_.invokerPid : ::getpid();
  deps.checkTarget = [this, guardianPid, invoker](const TargetSpec& t) {
    // Only a process target is resolved against the process table: reading all of /proc for
    // each interface or path target made the checks of a run with 1,000 path targets cost
    // seconds of CPU (scale_bench).
    Result<ProcessTable> table = Error(ErrorCode::kNotFound, "not read");
    if (t.kind == TargetKind::kProcess) table = ProcessTable::scan();
    ResolveContext ctx;
    if (table) ctx.processes = &*table;
    ctx.protection.selfPid = ::getpid();
    ctx.protection.guardedPids.insert(guardianPid);
    ctx.protection.invokerPid = invoker;
    ctx.experiment = &experiment_;
    ctx.catalog = config_.registry;
    ResolvedTarget r = resolveTarget(t, experiment_.guardrails, ctx);
    if (r.usable) return std::vector<std::string>{};
    return r.problems;
  };
  return deps;
}

OwnedRunResult OwnedRun::finish(RunResult result, GuardianHandle& guardian) {
  OwnedRunResult out;
  out.runDir = config_.runDir;
  if (config_.beforeReport) config_.beforeReport(result);
  const nlohmann::json doc = reportJson(experiment_, result);
  // The other reports come from the same document; a failure to write one is reported, and
  // neither hides the verdict (report.json is the record).
  if (auto written = writeReportJson(doc, config_.runDir); written) {
    out.reports = report::writeReportFiles(doc, config_.runDir, report::allFormats());
  } else {
    out.reportError = std::move(written).error();
  }
  // The end is journalled (every fault is reverted by now) before the guardian's exit, which
  // can take a while: a caller that sees the run ended may start another on its targets.
  (void)config_.journal->endRun(config_.runId, outcomeName(result.outcome));
  if (config_.onEnded) config_.onEnded(result.outcome);
  if (auto done = guardian.finish(); !done) {
    log::get("run")->warn("guardian run={} error=\"{}\"", config_.runId, done.error().describe());
  }
  out.run = std::move(result);
  return out;
}

void OwnedRun::requestAbort(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (!abortReason_) abortReason_ = reason;
  if (engine_ != nullptr) engine_->requestAbort(reason);
}

std::optional<std::string> OwnedRun::abortReason() const {
  std::lock_guard lock(mu_);
  return abortReason_;
}

}  // namespace chaosd
