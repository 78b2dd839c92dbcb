// The engine's exec targets: processes an experiment starts itself before the baseline (each
// journalled first, as process.exec, so whoever reverts faults also stops them), waited for
// until ready, and stopped after the recovery window on every path out of run().
#include <sys/wait.h>

#include <algorithm>
#include <cstring>

#include "chaosd/base/Log.h"
#include "chaosd/base/Quote.h"
#include "chaosd/base/Units.h"
#include "chaosd/engine/Engine.h"
#include "injectors/process/ExecTarget.h"

namespace chaosd {

std::vector<std::unique_ptr<ExecContribution>> Engine::execContributions(const TargetSpec& t) {
  std::vector<ExecStep> aimed;
  std::function<void(const std::vector<StepSpec>&)> collect =
      [&](const std::vector<StepSpec>& steps) {
        for (const auto& step : steps) {
          collect(step.parallel);
          if (!step.fault.empty() && step.target == t.name)
            aimed.push_back({step.fault, step.args});
        }
      };
  collect(experiment_.method);
  std::vector<std::unique_ptr<ExecContribution>> out;
  if (aimed.empty()) return out;
  for (const auto& hook : deps_.registry->execHooks()) {
    if (auto c = hook(aimed)) out.push_back(std::move(c));
  }
  return out;
}

bool Engine::startExecTargets() {
  const auto& ss = experiment_.steadyState;
  const Duration expected = ss.baseline + timeline_.total + ss.recovery;
  size_t n = 0;
  for (const auto& t : experiment_.targets) {
    if (t.kind != TargetKind::kExec) continue;
    ExecRecordOut rec;
    rec.target = t.name;
    rec.argv = t.exec.argv;
    if (!deps_.execLogDir.empty()) rec.log = deps_.execLogDir + "/" + t.name + ".log";
    const std::string faultId = result_.runId + "-exec-" + std::to_string(++n);
    // What the method's fault types add to the process at exec (a seccomp filter): it
    // cannot change later.
    ExecOptions options;
    options.runDir = deps_.execLogDir;
    options.runAs = deps_.runAs;
    auto contributions = execContributions(t);
    for (auto& c : contributions) c->beforeExec(options);
    nlohmann::json undo;
    auto started = startExec(
        t.exec, rec.log,
        [&](const StartedExec& s) -> Result<void> {
          undo = execUndo(s, std::chrono::milliseconds(5000));
          if (!deps_.journal) return success();
          FaultIntent intent;
          intent.faultId = faultId;
          intent.step = "exec:" + t.name;
          intent.faultType = std::string(kExecFaultType);
          intent.target =
              "pid " + std::to_string(s.pid) + " started for target " + t.name + ": " + s.program;
          intent.undo = undo;
          intent.resources = {"exec:" + std::to_string(s.pid)};
          // Past the run's expected end (plus a minute), the guardian stops it even if we hang.
          intent.deadline = deadlineNow() +
                            std::chrono::duration_cast<WallClock::duration>(expected) +
                            std::chrono::minutes(1);
          CHAOSD_TRY(deps_.journal->recordIntent(result_.runId, intent));
          (void)deps_.journal->markApplied(faultId);
          return success();
        },
        options);
    if (!started) {
      rec.state = "start-failed";
      rec.error = started.error().describe();
      // Journalled, then the exec failed: startExec killed and reaped the child already.
      if (deps_.journal && !undo.is_null()) (void)deps_.journal->markReverted(faultId);
      result_.execs.push_back(std::move(rec));
      fail(Outcome::kError,
           "target " + t.name + ": cannot start it: " + started.error().describe());
      return false;
    }
    rec.pid = started->pid;
    rec.startedAt = deps_.clock->wallNow();
    rec.state = "running";
    note("started target " + t.name + ": pid " + std::to_string(started->pid) +
         (rec.log.empty() ? "" : ", output in " + rec.log));
    ExecHeld held;
    held.index = result_.execs.size();
    held.faultId = faultId;
    held.undo = undo;
    held.asProcess.name = t.name;
    held.asProcess.kind = TargetKind::kProcess;
    held.asProcess.process.pid = started->pid;
    held.asProcess.selection.mode = SelectionMode::kAll;
    for (auto& c : contributions) c->started(*started, rec.observed);
    held.contributions = std::move(contributions);
    result_.execs.push_back(std::move(rec));
    execs_[t.name] = std::move(held);
  }
  // Then wait for each to be ready, when the target says how to tell.
  for (const auto& t : experiment_.targets) {
    if (t.kind != TargetKind::kExec || t.exec.readyPort == 0) continue;
    if (!waitExecReady(t)) return false;
  }
  return true;
}

namespace {
std::string describeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}
}  // namespace

bool Engine::waitExecReady(const TargetSpec& t) {
  ProbeSpec spec;
  spec.name = "ready:" + t.name;
  spec.kind = ProbeKind::kTcp;
  spec.tcp.host = t.exec.readyHost;
  spec.tcp.port = t.exec.readyPort;
  spec.timeout = std::chrono::milliseconds(500);
  auto probe = deps_.makeProbe(spec);
  if (!probe) {
    fail(Outcome::kError, "target " + t.name + ": readiness check: " + probe.error().describe());
    return false;
  }
  const ExecHeld& held = execs_.at(t.name);
  const std::string where = t.exec.readyHost + ":" + std::to_string(t.exec.readyPort);
  const auto deadline = deps_.clock->now() + t.exec.readyWithin;
  std::string last;
  for (;;) {
    ProbeSample s = (*probe)->sample(Phase::kBefore);
    if (s.ok) {
      note("target " + t.name + " is ready: " + where + " accepts connections");
      return true;
    }
    last = s.detail;
    int status = 0;
    if (::waitpid(result_.execs[held.index].pid, &status, WNOHANG) > 0) {
      // Reaped here: the stop at the end finds it gone.
      const std::string& log = result_.execs[held.index].log;
      const std::string said = lastLogLine(log);
      fail(Outcome::kError,
           "target " + t.name + " exited (" + describeWaitStatus(status) + ") before it was ready" +
               (said.empty() ? "" : ", its last line: " + quoteText(said, 200)) + "; see " + log);
      return false;
    }
    if (abortRequested_ || deps_.clock->now() >= deadline) break;
    deps_.waiter->waitUntil(deps_.clock->now() + std::chrono::milliseconds(100));
  }
  fail(abortRequested_ ? Outcome::kAborted : Outcome::kError,
       "target " + t.name + " was not ready within " + units::formatDuration(t.exec.readyWithin) +
           ": " + last);
  return false;
}

void Engine::stopExecTargets() {
  // The newest first, like faults.
  std::vector<ExecHeld*> order;
  for (auto& [name, held] : execs_) order.push_back(&held);
  std::sort(order.begin(), order.end(),
            [](const ExecHeld* a, const ExecHeld* b) { return a->index > b->index; });
  for (ExecHeld* held : order) {
    ExecRecordOut& rec = result_.execs[held->index];
    if (rec.state != "running") continue;
    auto stopped = stopExec(held->undo);
    rec.stoppedAt = deps_.clock->wallNow();
    if (stopped) {
      rec.state = "stopped";
      rec.observed.update(*stopped);
      if (deps_.journal) (void)deps_.journal->markReverted(held->faultId);
    } else {
      rec.state = "stop-failed";
      rec.error = stopped.error().describe();
      if (deps_.journal) (void)deps_.journal->markRevertFailed(held->faultId, rec.error);
      fail(Outcome::kLeftovers, "target " + rec.target + ": cannot stop it: " + rec.error);
    }
    held->contributions.clear();  // the process is gone: nothing left to answer for it
    auto left = execLeftovers(held->undo);
    if (left && !left->empty()) {
      result_.auditClean = false;
      for (const auto& l : *left)
        fail(Outcome::kLeftovers, "left behind by target " + rec.target + ": " + l);
    }
  }
}

}  // namespace chaosd
