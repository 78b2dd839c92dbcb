#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chaosd/engine/RunResult.h"
#include "chaosd/engine/probes/Calibration.h"
#include "experiments/model/Experiment.h"

// An A/A calibration of the statistical mode (`chaosctl calibrate`): the experiment run N times
// with every fault replaced by a pause of the same length, so that any deviation the
// statistical check reports is a false alarm. These are its pure parts: the experiment without
// faults, the tally of N run results, and handing the measured rate to a later run's verdicts.
namespace chaosd {

// The experiment with every fault step (parallel members too) turned into a pause of the
// fault's duration (0 for a fault without one, process.kill), keeping the step's name, `at`
// and `after`, so the method's timing is the same and nothing is injected. The rollbacks go
// too: they undo faults, and with none they would only disturb the after phase.
Experiment withoutFaults(const Experiment& experiment);

// "blocks" or "exceedance", as the experiment file spells the test.
std::string_view calibrationTestName(BaselineTest test);

// The false alarms of one probe's statistical check in one phase over the calibration runs.
struct PhaseCalibration {
  std::string probe;
  // "during", "after", or "both": a run counts one false alarm when either phase deviated.
  std::string phase;

  // The check as configured (what BaselineCheck says, else tolerance.baseline).
  BaselineTest test = BaselineTest::kBlocks;
  double quantile = 0.95;
  double alpha = 0.01;
  double minRelative = 0;
  Duration minAbsolute{0};
  MinEffectBy minEffectBy = MinEffectBy::kEstimate;
  std::string control;

  // The rate the check claims: alpha; for "both" the union bound min(1, 2 alpha).
  double nominal = 0.01;
  size_t runs = 0;         // runs in which the phase was judged by the statistical check
  size_t falseAlarms = 0;  // of those, runs in which it deviated
  size_t notHeld = 0;      // runs whose whole phase verdict (every check) did not hold
  double rate = 0;         // falseAlarms / runs
  RateInterval interval;   // its 95% Clopper-Pearson interval
  // The drift seen: the effect (phaseQuantile / threshold - 1) over the runs.
  double driftMedian = 0;
  double driftMax = 0;
  // allowedFalseAlarms(runs, nominal); exceeded: falseAlarms is above it.
  size_t allowed = 0;
  bool exceeded = false;
};

// The tally for every probe with tolerance.baseline: its during and after phases (those it
// runs in), and both together when it runs in both. `runs` are the calibration's results.
std::vector<PhaseCalibration> aggregateCalibration(const Experiment& experiment,
                                                   const std::vector<RunResult>& runs);

// The probes and phases of one run that deviated: "api during (+12.5%)"; empty when none.
std::vector<std::string> falseAlarmsOf(const RunResult& run);

// Sets verdict.baseline->calibration for every probe phase of `run` the calibration measured
// (matched by probe name and phase); returns how many it set. `source` is the file's path.
size_t applyCalibration(RunResult& run, const std::vector<PhaseCalibration>& calibration,
                        const std::string& source);

}  // namespace chaosd
