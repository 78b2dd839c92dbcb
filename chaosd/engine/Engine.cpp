#include "chaosd/engine/Engine.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/base/StartAt.h"
#include "chaosd/base/Units.h"
#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Impact.h"
#include "chaosd/engine/probes/Verdict.h"
#include "injectors/process/ExecTarget.h"

namespace chaosd {
Engine::Engine(const Experiment& experiment, EngineDeps deps, std::string runId)
    : experiment_(experiment), deps_(std::move(deps)) {
  result_.runId = std::move(runId);
  result_.experimentName = experiment.metadata.name;
  timeline_ = computeTimeline(experiment.method);
  for (const auto& entry : timeline_.entries) {
    if (entry.kind != StepKind::kFault) continue;
    const StepSpec* step = nullptr;
    for (const auto& s : experiment.method) {
      if (s.name == entry.step) step = &s;
      for (const auto& m : s.parallel) {
        if (m.name == entry.step) step = &m;
      }
    }
    FaultRecordOut f;
    f.faultId = result_.runId + "-" + std::to_string(result_.faults.size() + 1);
    f.step = entry.step;
    f.type = entry.fault;
    f.target = entry.target;
    f.args = step->args;
    f.plannedStart = entry.start;
    f.plannedEnd = entry.end;
    if (const FaultType* t = deps_.registry->find(entry.fault)) f.revertible = t->revertible;
    size_t index = result_.faults.size();
    result_.faults.push_back(std::move(f));
    faultSteps_.push_back(step);
    undo_.emplace_back();
    events_.push_back(FaultEvent{entry.start, false, index});
    events_.push_back(FaultEvent{entry.end, true, index});
  }
  // Time order; at the same instant, ends before starts so sequential faults never overlap,
  // except a fault's own start and end (an instantaneous fault): start first.
  std::stable_sort(events_.begin(), events_.end(), [](const FaultEvent& a, const FaultEvent& b) {
    if (a.at != b.at) return a.at < b.at;
    if (a.fault == b.fault) return !a.isEnd && b.isEnd;
    return a.isEnd && !b.isEnd;
  });
  for (const auto& p : experiment.steadyState.probes)
    result_.probes.push_back(ProbeRecord{p.name, {}, {}});
}

void Engine::note(const std::string& line) {
  log::get("engine")->debug("{}", line);
  if (deps_.observer) deps_.observer->message(line);
}

void Engine::fail(Outcome outcome, std::string reason) {
  result_.outcome = worse(result_.outcome, outcome);
  result_.reasons.push_back(std::move(reason));
}

void Engine::requestAbort(const std::string& reason) {
  {
    std::lock_guard lock(abortMu_);
    if (abortRequested_) {
      log::get("engine")->warn("{}: already stopping; the revert runs to its end", reason);
      return;
    }
    abortReason_ = reason;
    abortRequested_ = true;
  }
  deps_.waiter->notify();
}

bool Engine::prepareInjectors() {
  for (const auto& f : result_.faults) {
    if (injectors_.contains(f.type)) continue;
    const FaultType* type = deps_.registry->find(f.type);
    if (!type || !type->factory) {
      fail(Outcome::kError, "fault type " + f.type +
                                " is not implemented in this build (validate and plan only); "
                                "nothing was applied");
      return false;
    }
    injectors_[f.type] = type->factory();
  }
  return true;
}

bool Engine::checkTargets() {
  if (!deps_.checkTarget) return true;
  std::set<std::string> checked;
  bool ok = true;
  for (const auto& f : result_.faults) {
    if (f.target.empty() || !checked.insert(f.target).second) continue;
    const TargetSpec* t = experiment_.findTarget(f.target);
    if (!t) continue;
    for (const auto& problem : deps_.checkTarget(*t)) {
      fail(Outcome::kError, "target " + t->name + ": " + problem + "; nothing was applied");
      ok = false;
    }
  }
  return ok;
}

bool Engine::resolveFaultArgs() {
  bool ok = true;
  for (const auto& f : result_.faults) {
    const FaultType* type = deps_.registry->find(f.type);
    if (!type || !type->resolveArgs) continue;
    auto resolved = type->resolveArgs(f.args);
    if (!resolved) {
      fail(Outcome::kError,
           "step " + f.step + ": " + resolved.error().describe() + "; nothing was applied");
      ok = false;
    }
  }
  return ok;
}

bool Engine::prepareProbes() {
  std::vector<std::unique_ptr<Probe>> probes;
  for (const auto& spec : experiment_.steadyState.probes) {
    auto p = deps_.makeProbe(spec);
    if (!p) {
      fail(Outcome::kError, "probe " + spec.name + ": " + p.error().describe());
      return false;
    }
    probes.push_back(std::move(*p));
  }
  runner_ = deps_.makeRunner(std::move(probes), [this](size_t i, ProbeSample s) {
    {
      std::lock_guard lock(samplesMu_);
      incoming_.emplace_back(i, std::move(s));
    }
    deps_.waiter->notify();
  });
  return true;
}

void Engine::drainSamples() {
  std::vector<std::pair<size_t, ProbeSample>> batch;
  {
    std::lock_guard lock(samplesMu_);
    batch.swap(incoming_);
  }
  for (auto& [i, s] : batch) {
    const ProbeSpec& spec = experiment_.steadyState.probes[i];
    if (deps_.observer) deps_.observer->sample(s);
    // A stop condition guards the faults; before them a failure is a deviated baseline.
    if (!s.ok && spec.abort && s.phase == Phase::kDuring && !abortRequested_) {
      requestAbort("stop condition: probe " + spec.name + " failed (" + s.detail + ")");
    }
    result_.probes[i].samples.push_back(std::move(s));
  }
}

// Probe i of n takes its samples i/n of its period after the window's start, in every phase:
// probes that fire at the same instant compete for the same cores, and the one started first
// was measured 15% to 22% slower than the one started next (two identical http.server
// replicas probed every 20 ms on 2 cores, docs/verdicts.md): a bias of chaosd's own making
// that a control probe would read as an effect of the fault. At most 250 ms and a quarter of
// the window, so that a slow probe still samples a short window early.
Duration Engine::staggerOffset(size_t i, Duration window) const {
  const auto& probes = experiment_.steadyState.probes;
  const Duration spread =
      probes[i].every * static_cast<int64_t>(i) / static_cast<int64_t>(probes.size());
  return std::min({spread, Duration(std::chrono::milliseconds(250)), window / 4});
}

Engine::WindowEnd Engine::runWindow(Phase phase, Duration length,
                                    std::optional<Clock::TimePoint> anchor) {
  const Clock& clock = *deps_.clock;
  const auto calledAt = clock.now();
  const auto start = anchor.value_or(calledAt);
  const auto end = start + length;
  PhaseRecord rec{
      phase,
      clock.wallNow() + std::chrono::duration_cast<WallClock::duration>(start - calledAt),
      {},
      true,
      ""};
  if (deps_.observer) deps_.observer->phaseStarted(phase, length);
  if (load_) load_->phaseStarted(phase);
  const auto& probes = experiment_.steadyState.probes;
  std::vector<std::optional<Clock::TimePoint>> due(probes.size());
  for (size_t i = 0; i < probes.size(); ++i) {
    if (std::find(probes[i].phases.begin(), probes[i].phases.end(), phase) !=
        probes[i].phases.end()) {
      due[i] = start + staggerOffset(i, length);
    }
  }
  WindowEnd how = WindowEnd::kElapsed;
  for (;;) {
    drainSamples();
    if (abortRequested_) {
      how = WindowEnd::kAborted;
      break;
    }
    if (phase == Phase::kDuring && !processFaultEvents(start)) {
      how = WindowEnd::kFailed;
      break;
    }
    Clock::TimePoint nextRefresh =
        phase == Phase::kDuring ? refreshHeldFaults() : Clock::TimePoint::max();
    if (phase != Phase::kBefore) nextRefresh = std::min(nextRefresh, watchContainers());
    auto now = clock.now();
    if (now >= end && (phase != Phase::kDuring || nextEvent_ >= events_.size())) break;
    Clock::TimePoint next = end;
    for (size_t i = 0; i < probes.size(); ++i) {
      if (!due[i]) continue;
      if (now >= *due[i]) {
        runner_->start(i, phase);  // skipped while the previous sample still runs
        *due[i] += probes[i].every;
        if (*due[i] <= now) *due[i] = now + probes[i].every;  // fell behind: no burst
      }
      next = std::min(next, *due[i]);
    }
    if (phase == Phase::kDuring && nextEvent_ < events_.size()) {
      next = std::min(next, start + events_[nextEvent_].at);
    }
    next = std::min(next, nextRefresh);
    if (next > now) deps_.waiter->waitUntil(next);
  }
  if (load_) load_->phaseEnded(phase);
  rec.endedAt = clock.wallNow();
  result_.phases.push_back(rec);
  return how;
}

// Applies and reverts the faults whose planned time has come. False when an apply failed.
bool Engine::processFaultEvents(Clock::TimePoint windowStart) {
  const auto now = deps_.clock->now();
  auto due = [&] {
    return nextEvent_ < events_.size() && windowStart + events_[nextEvent_].at <= now;
  };
  while (due()) {
    if (events_[nextEvent_].isEnd) {
      // Every end due now (a parallel group's members) is reverted, then journalled in one
      // commit (FaultJournal::markRevertedAll).
      std::vector<std::string> reverted;
      while (due() && events_[nextEvent_].isEnd)
        revertFault(events_[nextEvent_++].fault, &reverted);
      if (deps_.journal && !reverted.empty()) (void)deps_.journal->markRevertedAll(reverted);
      continue;
    }
    // Every start due now (a parallel group, steps at one offset) is journalled at once.
    std::vector<size_t> batch;
    while (due() && !events_[nextEvent_].isEnd) batch.push_back(events_[nextEvent_++].fault);
    if (!applyFaults(batch)) return false;
  }
  return true;
}

size_t Engine::controlIndex(const std::string& name) const {
  const auto& probes = experiment_.steadyState.probes;
  for (size_t i = 0; i < probes.size(); ++i) {
    if (probes[i].name == name) return i;
  }
  return probes.size();  // the parser refuses an unknown control; then no reference
}

std::vector<PhaseVerdict> Engine::judge(Phase phase) {
  std::vector<PhaseVerdict> out;
  const auto& probes = experiment_.steadyState.probes;
  for (size_t i = 0; i < probes.size(); ++i) {
    const auto& spec = probes[i];
    if (std::find(spec.phases.begin(), spec.phases.end(), phase) == spec.phases.end()) continue;
    std::vector<ProbeSample> samples;
    for (const auto& s : result_.probes[i].samples) {
      if (s.phase == phase) samples.push_back(s);
    }
    // The statistical mode's reference: the control probe's samples of this same phase (taken
    // concurrently, so a drift both see cancels out), or this probe's own before phase.
    std::vector<ProbeSample> baseline;
    const std::string control = spec.tolerance.baseline ? spec.tolerance.baseline->control : "";
    const size_t from = control.empty() ? i : controlIndex(control);
    const Phase referencePhase = control.empty() ? Phase::kBefore : phase;
    if (from < result_.probes.size()) {
      for (const auto& s : result_.probes[from].samples) {
        if (s.phase == referencePhase) baseline.push_back(s);
      }
    }
    PhaseVerdict v = phase == Phase::kBefore || !spec.tolerance.baseline
                         ? judgePhase(spec, phase, samples)
                         : judgePhase(spec, phase, samples, std::span<const ProbeSample>(baseline));
    if (!v.held) {
      std::string why;
      for (const auto& r : v.reasons) why += (why.empty() ? "" : "; ") + r;
      fail(Outcome::kDeviated, "probe " + spec.name + " failed in the " +
                                   std::string(phaseName(phase)) + " phase: " + why);
    }
    result_.probes[i].verdicts.push_back(v);
    out.push_back(std::move(v));
  }
  return out;
}

namespace {

// A rate or a throughput for a line of the run's output: four significant digits.
std::string perSecond(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

bool Engine::measureCapacity() {
  if (!experiment_.load || !experiment_.load->capacity) return true;
  const LoadSpec& load = *experiment_.load;
  const Clock& clock = *deps_.clock;
  // Waits as the windows do: an abort (Ctrl-C, the daemon's stop) ends the wait at once.
  auto wait = [&](Duration d) {
    const auto end = clock.now() + d;
    while (!abortRequested_ && clock.now() < end) deps_.waiter->waitUntil(end);
    return !abortRequested_;
  };
  const auto rates = load.capacity->rates();
  if (rates.empty()) return true;  // the parser refuses such a ramp; nothing to measure
  note("capacity of " + load.http.url + ": the load at " + perSecond(rates.front()) + " to " +
       perSecond(rates.back()) + "/s, " + units::formatDuration(load.capacity->every) +
       " a step, until its tolerance breaks");
  auto measured = chaosd::measureCapacity(load, wait, [&](const LoadCapacityStep& s) {
    const LoadPhase& f = s.figures;
    std::string line = "capacity step " + perSecond(s.rate) + "/s: " + perSecond(f.throughput) +
                       " ok/s, p99 " + formatLatency(Duration(f.p99)) + ", " +
                       (f.held ? "held" : "broke");
    for (const auto& r : f.reasons) line += "; " + r;
    note(line);
  });
  if (!measured) {
    fail(Outcome::kError, "load capacity: " + measured.error().message());
    return false;
  }
  capacity_ = std::move(*measured);
  if (capacity_->stopped) {
    std::lock_guard lock(abortMu_);
    fail(Outcome::kAborted, abortReason_);
    return false;
  }
  if (capacity_->capacity) {
    note("capacity μ ≈ " + perSecond(*capacity_->capacity) + "/s" +
         (capacity_->brokeAt ? " (broke at " + perSecond(*capacity_->brokeAt) + "/s)"
                             : " at least (no step up to the ramp's max broke)"));
  } else {
    note("capacity: the first step (" + perSecond(rates.front()) + "/s) already broke");
  }
  // The service drains what the last step queued before the baseline measures it.
  if (!wait(load.capacity->cooldown)) {
    std::lock_guard lock(abortMu_);
    fail(Outcome::kAborted, abortReason_);
    return false;
  }
  return true;
}

bool Engine::startLoad() {
  if (!experiment_.load) return true;
  load_ = std::make_unique<LoadGenerator>(*experiment_.load);
  if (auto started = load_->start(); !started) {
    load_.reset();
    fail(Outcome::kError, "load: " + started.error().message());
    return false;
  }
  return true;
}

void Engine::finishLoad() {
  if (!load_) return;
  load_->stop();
  result_.load = load_->report();
  load_.reset();
  result_.load->capacity = capacity_;
  setUtilisation(*result_.load);
  for (const auto& p : result_.load->phases) {
    if (p.held) continue;
    std::string why;
    for (const auto& r : p.reasons) why += (why.empty() ? "" : "; ") + r;
    fail(Outcome::kDeviated, "load " + result_.load->name + " failed in the " +
                                 std::string(phaseName(p.phase)) + " phase: " + why);
  }
}

bool Engine::planStart(Duration& baseline, std::optional<Clock::TimePoint>& methodStart) {
  const Clock& clock = *deps_.clock;
  result_.startAt = deps_.startAt;
  if (!deps_.startAt) return true;
  const Duration untilStart =
      std::chrono::duration_cast<Duration>(*deps_.startAt - clock.wallNow());
  methodStart = clock.now() + untilStart;
  // The before phase ends early enough for a sample started at its very end to finish (its
  // timeout) before the start: the engine collects the before phase's samples and judges them
  // before the method's window opens, and a late sample would make every fault late.
  Duration guard = std::chrono::milliseconds(50);
  for (const auto& p : experiment_.steadyState.probes) {
    if (std::find(p.phases.begin(), p.phases.end(), Phase::kBefore) == p.phases.end()) continue;
    guard = std::max(guard, p.timeout + std::chrono::milliseconds(50));
  }
  const Duration& wanted = experiment_.steadyState.baseline;
  if (untilStart < wanted + guard) {
    const std::string when = untilStart <= Duration::zero()
                                 ? "has passed"
                                 : "is " + units::formatDuration(untilStart) + " away";
    fail(Outcome::kError, "the start " + formatStartAt(*deps_.startAt) + " " + when +
                              ", too soon for the baseline (" + units::formatDuration(wanted) +
                              ") and its last samples (" + units::formatDuration(guard) +
                              "): the faults would start late; nothing was applied");
    return false;
  }
  baseline = untilStart - guard;
  note("synchronised start at " + formatStartAt(*deps_.startAt) + ": the baseline lasts " +
       units::formatDuration(baseline));
  return true;
}

RunResult Engine::run() {
  const Clock& clock = *deps_.clock;
  result_.startedAt = clock.wallNow();
  result_.startedMono = clock.now();
  const auto& ss = experiment_.steadyState;
  auto skip = [&](Phase phase, std::string why) {
    result_.phases.push_back(
        PhaseRecord{phase, clock.wallNow(), clock.wallNow(), false, std::move(why)});
  };

  // Exec targets start before the other targets are checked: a process target may select
  // what they start (the replicas a started front spawns). A failed check stops them again.
  Duration baselineLength = ss.baseline;
  std::optional<Clock::TimePoint> methodStart;
  bool ready = prepareInjectors() && resolveFaultArgs() && prepareProbes() && startExecTargets() &&
               checkTargets() && measureCapacity() && planStart(baselineLength, methodStart) &&
               startLoad();
  if (!ready) {
    skip(Phase::kBefore, "not started: " + result_.reasons.back());
    stopExecTargets();
    result_.endedAt = clock.wallNow();
    return result_;
  }

  // 1. Baseline: the hypothesis must hold before anything is touched.
  WindowEnd base = runWindow(Phase::kBefore, baselineLength);
  runner_->drain();
  drainSamples();
  bool baselineHeld = true;
  if (base == WindowEnd::kElapsed) {
    auto verdicts = judge(Phase::kBefore);
    if (deps_.observer) deps_.observer->phaseEnded(Phase::kBefore, verdicts);
    for (const auto& v : verdicts) baselineHeld = baselineHeld && v.held;
    if (!baselineHeld) note("the steady state does not hold before any fault: nothing is applied");
  }

  // 2. Method: faults at their planned times, reverted at their deadlines.
  bool methodRan = false;
  if (base == WindowEnd::kElapsed && baselineHeld) {
    methodRan = true;
    WindowEnd how = runWindow(Phase::kDuring, timeline_.total, methodStart);
    revertAllHeld();  // after an abort or a failure; a no-op when every deadline passed
    releaseShared();
    runner_->drain();
    drainSamples();
    if (how == WindowEnd::kElapsed) {
      auto verdicts = judge(Phase::kDuring);
      if (deps_.observer) deps_.observer->phaseEnded(Phase::kDuring, verdicts);
    }
  } else {
    skip(Phase::kDuring, base != WindowEnd::kElapsed ? "aborted" : "the baseline deviated");
  }
  if (abortRequested_) {
    std::lock_guard lock(abortMu_);
    fail(Outcome::kAborted, abortReason_);
  }

  // 3. Rollbacks always run; 4. the audit checks nothing of ours is left.
  runRollbacks();
  audit();

  // 5. Recovery: the probes again, unless the run was stopped.
  if (methodRan && !abortRequested_ && result_.outcome != Outcome::kError) {
    WindowEnd after = runWindow(Phase::kAfter, ss.recovery);
    runner_->drain();
    drainSamples();
    if (after == WindowEnd::kElapsed) {
      auto verdicts = judge(Phase::kAfter);
      if (deps_.observer) deps_.observer->phaseEnded(Phase::kAfter, verdicts);
    } else {
      std::lock_guard lock(abortMu_);
      fail(Outcome::kAborted, abortReason_);
    }
  } else {
    skip(Phase::kAfter, abortRequested_ ? "aborted"
                        : methodRan     ? "the run failed"
                                        : "no faults ran");
  }
  revertAllHeld();  // belt and braces: nothing may be held past run()
  releaseShared();
  finishLoad();
  stopExecTargets();
  computeImpacts(result_, experiment_.steadyState.probes);
  result_.endedAt = clock.wallNow();
  return result_;
}

}  // namespace chaosd
