#pragma once

#include <sys/types.h>

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "chaosd/engine/Engine.h"
#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/RunResult.h"
#include "chaosd/engine/TargetKeys.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "reports/ReportFiles.h"

// One run of an experiment owned by this process, from begin to end, the same for
// `chaosctl run` and the daemon: the run and its targets journalled (refused when another live
// run holds one of them), its guardian started (no fault without one), the engine run with the
// process's own protections (itself, its guardian, the caller), the run folder written
// (report.json, then the reports made from it), the run's end journalled, the guardian
// finished. The callers only choose names, print and count.
namespace chaosd {

struct OwnedRunConfig {
  FaultJournal* journal = nullptr;
  const FaultRegistry* registry = nullptr;
  std::string runId;
  // The run folder: exec targets' logs go there from the start, the reports at the end.
  std::string runDir;
  // The guardian's program and leading arguments, and the log level (GuardianConfig); the
  // journal path and run id are filled in.
  GuardianConfig guardian;
  // The process that asked for the run (a daemon's client); protected from its own faults
  // like this process and the guardian. 0: this process.
  pid_t invokerPid = 0;
  // Who every command of the run executes as (command probes, exec targets, rollbacks): the
  // daemon's non-root caller. Unset: this process (`chaosctl run`, root callers).
  std::optional<Credentials> runAs;
  // Who asked for the run, journalled with it (RunRecord::caller); empty for chaosctl run.
  nlohmann::json caller = nlohmann::json::object();
  EngineObserver* observer = nullptr;
  // Called once the journal records the run's end (every fault reverted by then), before the
  // guardian is finished: a caller that counts runs or frees their targets does it here.
  std::function<void(Outcome)> onEnded;
  // Called with the judged run before report.json is written from it: a caller that adds to
  // the verdicts (`chaosctl run --calibration`) does it here.
  std::function<void(RunResult&)> beforeReport;
  // A synchronised start (EngineDeps::startAt).
  std::optional<WallClock> startAt;
};

struct OwnedRunResult {
  RunResult run;
  std::string runDir;
  // Why report.json was not written; the other reports are listed with their own errors.
  std::optional<Error> reportError;
  std::vector<report::WrittenFile> reports;
  // The run's exit code; a run whose report.json is missing is a runtime error (5) unless
  // something was left behind (4).
  int exitCode() const;
};

class OwnedRun {
 public:
  OwnedRun(const Experiment& experiment, OwnedRunConfig config);
  OwnedRun(const OwnedRun&) = delete;
  OwnedRun& operator=(const OwnedRun&) = delete;

  // Runs it. An error when it could not begin (kConflict: another live run holds one of its
  // targets; the journal or the guardian failed): nothing was applied then, and the run, if
  // journalled, is ended as "error".
  Result<OwnedRunResult> run();

  // Stops the run: every fault is reverted at once and the outcome is aborted. Thread-safe;
  // may come before the engine starts (then the engine stops at once) or after it ended.
  void requestAbort(const std::string& reason);
  std::optional<std::string> abortReason() const;

  // The targets the run holds, as journalled (computed at construction from the process
  // table of that moment).
  const std::vector<TargetKey>& targets() const { return targets_; }

 private:
  EngineDeps engineDeps(const Clock& clock, Waiter& waiter, GuardianHandle& guardian);
  OwnedRunResult finish(RunResult result, GuardianHandle& guardian);

  const Experiment& experiment_;
  OwnedRunConfig config_;
  std::vector<TargetKey> targets_;
  mutable std::mutex mu_;  // guards engine_ and abortReason_
  Engine* engine_ = nullptr;
  std::optional<std::string> abortReason_;
};

}  // namespace chaosd
