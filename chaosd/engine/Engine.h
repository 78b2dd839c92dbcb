#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/engine/ProbeRunner.h"
#include "chaosd/engine/RunResult.h"
#include "chaosd/engine/Waiter.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "chaosd/engine/load/LoadCapacity.h"
#include "chaosd/engine/load/LoadGenerator.h"
#include "experiments/model/Experiment.h"
#include "experiments/model/Timeline.h"
#include "injectors/FaultRegistry.h"
#include "injectors/container/ContainerFinder.h"

namespace chaosd {

class GuardianHandle;

// Live progress, for a terminal or the daemon's status endpoint. Called on the engine thread.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void phaseStarted(Phase /*phase*/, Duration /*length*/) {}
  virtual void phaseEnded(Phase /*phase*/, const std::vector<PhaseVerdict>& /*verdicts*/) {}
  virtual void faultApplied(const FaultRecordOut& /*fault*/) {}
  virtual void faultReverted(const FaultRecordOut& /*fault*/) {}
  virtual void sample(const ProbeSample& /*sample*/) {}
  virtual void message(const std::string& /*line*/) {}
};

struct EngineDeps {
  const Clock* clock = nullptr;
  Waiter* waiter = nullptr;
  const FaultRegistry* registry = nullptr;
  FaultJournal* journal = nullptr;     // null only in unit tests
  GuardianHandle* guardian = nullptr;  // null only in unit tests
  std::function<Result<std::unique_ptr<Probe>>(const ProbeSpec&)> makeProbe;
  std::function<std::unique_ptr<ProbeRunner>(std::vector<std::unique_ptr<Probe>>,
                                             ProbeRunner::Deliver)>
      makeRunner;
  std::function<RollbackRecord(const RollbackSpec&)> runRollback;
  // Resolves a target now; returns its problems (missing, protected, over a guardrail). Run
  // for every target a fault uses, before the baseline. Optional (unit tests leave it empty).
  std::function<std::vector<std::string>(const TargetSpec&)> checkTarget;
  EngineObserver* observer = nullptr;
  // Where an exec target's stdout and stderr go: <execLogDir>/<target>.log. "" for nowhere.
  std::string execLogDir;
  // Who exec targets run as (the daemon's non-root caller); unset: this process. Command
  // probes and rollbacks get it through makeProbe and runRollback.
  std::optional<Credentials> runAs;
  // A synchronised start (`--start-at`): the method's clock starts at this instant, so the
  // faults of every host given the same instant begin together. The before phase lasts until
  // then; a start too soon for the baseline is an error before anything is applied.
  std::optional<WallClock> startAt;
};

// Runs one experiment: baseline, method (faults applied, held, reverted at their deadlines),
// rollbacks, audit, recovery, outcome. Every fault is journalled before it is applied and is
// reverted on every path out of run().
class Engine {
 public:
  Engine(const Experiment& experiment, EngineDeps deps, std::string runId);

  RunResult run();
  // Stops the run: faults are reverted at once, rollbacks run, the outcome is aborted.
  // Thread-safe; a second call does not skip anything.
  void requestAbort(const std::string& reason);

 private:
  struct Held;
  enum class WindowEnd { kElapsed, kAborted, kFailed };

  bool prepareInjectors();
  bool checkTargets();
  // Every step's host names resolve (FaultType::resolveArgs), before anything starts.
  bool resolveFaultArgs();
  bool prepareProbes();
  // `anchor`: when the window starts (a synchronised start's instant, maybe still ahead);
  // now when empty.
  WindowEnd runWindow(Phase phase, Duration length,
                      std::optional<Clock::TimePoint> anchor = std::nullopt);
  // For a synchronised start: the before phase's length (until the last samples before the
  // start have ended) and the method's start on the monotonic clock. False (and the run's
  // error) when the start is too soon for the baseline.
  bool planStart(Duration& baseline, std::optional<Clock::TimePoint>& methodStart);
  void drainSamples();
  bool processFaultEvents(Clock::TimePoint windowStart);
  // Applies the faults that start now: prepares each, journals all their intents in one
  // transaction, then applies them in order. False when any step of that failed.
  bool applyFaults(const std::vector<size_t>& indexes);
  std::optional<FaultIntent> prepareFault(size_t index);
  bool applyPrepared(size_t index);
  // With revertedIds, a successful revert's journal mark is left to the caller, which
  // journals the marks of every fault it reverts at one instant in one commit.
  void revertFault(size_t index, std::vector<std::string>* revertedIds = nullptr);
  void revertAllHeld();
  // Held faults whose args set `refresh` (FaultType::refreshArgs): their names are resolved
  // again when due; a change of addresses is journalled (FaultJournal::updateUndo), then made
  // in the kernel (Injector::reprepare, update), and recorded in the fault's observed. Returns
  // when the next one is due (TimePoint::max() for none). EngineRefresh.cpp.
  Clock::TimePoint refreshHeldFaults();
  void refreshFault(size_t index);
  void startRefreshing(size_t index);
  // Container targets (EngineContainers.cpp): found and chosen when the fault is prepared, and
  // seen by the fault's injector as the kind it acts on (injectors/container/ContainerView.h).
  // Returns the view for faults_[index] and records the containers in containers_[index];
  // nullptr when none runs and the target says `empty: skip` (the fault is skipped).
  Result<const TargetSpec*> containerTarget(size_t index, const TargetSpec& target,
                                            const FaultType* type);
  // Every 200 ms from a container fault's apply to the run's end: whether its container's init
  // is still the one found. A container gone ends its fault (reverted); one restarted (a new
  // init) is followed (the fault applied again to it, under a new fault id) or only reported,
  // per the target's onRestart. Both are timed in the fault's observed.containerEvents. A fault
  // over several containers only reports theirs (its victims were chosen at apply). Returns
  // when the next check is due.
  Clock::TimePoint watchContainers();
  // Container `which` of faults_[index] (0: `container`, k: others[k-1]) is gone or restarted.
  void containerChanged(size_t index, size_t which);
  // Shared needs (injectors/Injector.h): each key journalled and applied once, before the
  // first fault that names it; released, newest first, once no fault is held.
  bool holdShared(const std::vector<SharedNeed>& needs);
  void releaseShared();
  // Exec targets: started (journalled first, as process.exec) before the baseline, stopped
  // after the recovery window, on every path out of run().
  bool startExecTargets();
  std::vector<std::unique_ptr<ExecContribution>> execContributions(const TargetSpec& target);
  bool waitExecReady(const TargetSpec& target);
  void stopExecTargets();
  void runRollbacks();
  void audit();
  std::vector<PhaseVerdict> judge(Phase phase);
  // `load:` started before the baseline; stopped and summarised (its phases judged against its
  // tolerance) after the last window.
  // load.capacity: the ramp that measures μ, before the baseline (LoadCapacity.h). False when
  // the run was stopped during it or the generator could not start.
  bool measureCapacity();
  bool startLoad();
  void finishLoad();
  // When probe i takes its first sample in a window of `window`, after the window's start.
  Duration staggerOffset(size_t i, Duration window) const;
  // The index of the probe named `name` (a statistical mode's control); the probe count when none.
  size_t controlIndex(const std::string& name) const;
  void fail(Outcome outcome, std::string reason);
  void note(const std::string& line);
  // "Now" for the journal's deadlines: the run's start on the wall clock plus the monotonic
  // time since, so a host clock stepped during the run (time.skew without a target) moves no
  // deadline. The guardian measures its "now" the same way (Guardian.cpp).
  WallClock deadlineNow() const;

  const Experiment& experiment_;
  EngineDeps deps_;
  RunResult result_;
  Timeline timeline_;
  std::map<std::string, std::unique_ptr<Injector>> injectors_;  // by fault type
  std::unique_ptr<ProbeRunner> runner_;
  std::unique_ptr<LoadGenerator> load_;   // the experiment's `load:`, over every phase
  std::optional<LoadCapacity> capacity_;  // what load.capacity's ramp measured

  struct FaultEvent {
    Duration at;
    bool isEnd;
    size_t fault;  // index in result_.faults
  };
  std::vector<FaultEvent> events_;
  size_t nextEvent_ = 0;
  std::vector<const StepSpec*> faultSteps_;    // parallel to result_.faults
  std::vector<nlohmann::json> undo_;           // parallel to result_.faults
  std::map<size_t, nlohmann::json> resolved_;  // what a step's args resolved to, by index
  struct Refreshing {
    Duration every{0};
    Clock::TimePoint due;
    nlohmann::json hosts;           // {name: [addresses]} the fault holds now
    std::set<std::string> failing;  // names that did not resolve at the last refresh
  };
  std::map<size_t, Refreshing> refreshing_;  // held faults with `refresh`, by index
  struct ExecHeld {
    size_t index = 0;  // into result_.execs
    std::string faultId;
    nlohmann::json undo;
    TargetSpec asProcess;  // the started process as a process target (pid), for faults
    // What fault types set up at its exec (a seccomp supervisor); dropped after the process.
    std::vector<std::unique_ptr<ExecContribution>> contributions;
  };
  std::map<std::string, ExecHeld> execs_;  // by target name
  struct ContainerHeld {
    TargetSpec view;  // what the injector was handed
    ContainerMatch container;
    // A fault over several containers (process faults, a pod's namespace): the others.
    std::vector<ContainerMatch> others;
    // Since when each was seen not running: [0] `container`, [k] others[k-1].
    std::vector<std::optional<Clock::TimePoint>> downSince;
    std::optional<Clock::TimePoint> firstApplied;  // events are timed from it
    Clock::TimePoint heldUntil{};                  // its first apply plus the step's duration
    bool revertedByWatch = false;                  // its fault was reverted when it went away
    int reapplied = 0;                             // times the fault followed a restart
  };
  std::map<size_t, ContainerHeld> containers_;  // faults on container targets, by index
  Clock::TimePoint containerWatchDue_{};
  std::unique_ptr<ContainerApi> containerApi_;  // made at the first container target
  struct SharedHeld {
    SharedNeed need;
    std::string faultId;
  };
  std::vector<SharedHeld> shared_;         // in the order applied
  std::vector<SharedNeed> pendingShared_;  // what the batch being prepared needs

  std::mutex samplesMu_;
  std::vector<std::pair<size_t, ProbeSample>> incoming_;
  std::atomic<bool> abortRequested_{false};
  std::mutex abortMu_;
  std::string abortReason_;
  bool aborted_ = false;
};

}  // namespace chaosd
