#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/ExitCode.h"
#include "chaosd/engine/States.h"
#include "chaosd/engine/load/LoadReport.h"
#include "chaosd/engine/probes/ProbeSample.h"
#include "chaosd/engine/probes/Verdict.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

using WallClock = std::chrono::system_clock::time_point;

struct PhaseRecord {
  Phase phase = Phase::kBefore;
  WallClock startedAt{};
  WallClock endedAt{};
  bool ran = false;
  std::string skipped;  // why it did not run ("baseline deviated", "aborted")
};

// What one fault did to one probe: how long after the fault was applied the probe first
// showed it (time to detect: a failing sample, a sample over a latency bound its phase broke,
// or the statistical test rejecting), and how long after the fault was reverted it was good
// again for kRecoverySamples samples in a row (time to recover). Impact.h has the rules.
struct ProbeImpact {
  std::string probe;
  bool detected = false;
  Duration detectedAfter{0};   // the detecting sample's end - applied; when detected
  std::string by;              // how: "sample", "latency" or "baseline"; when detected
  std::string detail;          // what was seen then
  bool recovered = false;      // detected, reverted, and good again before the run ended
  Duration recoveredAfter{0};  // start of the first of the good run - reverted; when recovered
};

struct FaultRecordOut {
  std::string faultId;
  std::string step;
  std::string type;
  std::string target;
  std::string description;
  std::string backend;
  nlohmann::json args;
  nlohmann::json observed = nlohmann::json::object();
  bool revertible = true;
  // not-started, apply-failed, applied, reverted, revert-failed or skipped
  FaultState state = FaultState::kNotStarted;
  std::string error;
  Duration plannedStart{0};
  Duration plannedEnd{0};
  std::optional<WallClock> intentAt;
  std::optional<WallClock> appliedAt;
  std::optional<WallClock> revertedAt;
  std::optional<WallClock> deadline;
  std::optional<Clock::TimePoint> appliedMono;
  std::optional<Clock::TimePoint> revertedMono;
  std::vector<std::string> leftovers;  // what the audit found
  std::vector<ProbeImpact> impact;     // one per probe, when the fault was applied
};

// A process an exec target started for the run, and how it was stopped.
struct ExecRecordOut {
  std::string target;
  std::vector<std::string> argv;
  pid_t pid = 0;
  std::string log;  // where its stdout and stderr went ("" for nowhere)
  std::optional<WallClock> startedAt;
  std::optional<WallClock> stoppedAt;
  std::string state =
      "not-started";  // not-started | start-failed | running | stopped | stop-failed
  std::string error;
  nlohmann::json observed = nlohmann::json::object();  // how it exited: term, kill, gone
};

struct RollbackRecord {
  std::string name;
  std::vector<std::string> command;
  bool ok = false;
  std::optional<int> exitCode;
  std::string detail;
  Duration duration{0};
};

struct ProbeRecord {
  std::string name;
  std::vector<ProbeSample> samples;
  std::vector<PhaseVerdict> verdicts;  // one per phase it ran in
};

struct RunResult {
  std::string runId;
  std::string experimentName;
  WallClock startedAt{};
  WallClock endedAt{};
  Clock::TimePoint startedMono{};
  std::optional<WallClock> startAt;  // a synchronised start's instant (--start-at)
  Outcome outcome = Outcome::kOk;
  std::vector<std::string> reasons;  // why the outcome is what it is, in words
  std::vector<PhaseRecord> phases;
  std::vector<FaultRecordOut> faults;
  std::vector<RollbackRecord> rollbacks;
  std::vector<ProbeRecord> probes;
  std::vector<ExecRecordOut> execs;
  std::optional<LoadReport> load;  // the experiment's `load:`, per phase
  bool auditClean = true;
  int exitCode() const { return exitCodeOf(outcome); }
};

}  // namespace chaosd
