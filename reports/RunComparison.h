#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// What got better or worse between two runs of the same experiment (chaosctl report
// --compare; docs/reports.md): availability per probe and phase, time to recover per fault
// step, p95 latency in the during phase (while faults are applied) per probe, and the
// resilience score.
namespace chaosd::report {

enum class Direction { kBetter, kWorse, kSame, kOnlyOld, kOnlyNew };
const char* directionName(Direction d);

struct MetricChange {
  std::string metric;   // availability | timeToRecover | p95During | score
  std::string subject;  // in words: "availability of probe health in the during phase"
  std::string probe;    // availability and p95During
  std::string phase;    // availability
  std::string step;     // timeToRecover
  // The values: availability 0..1, durations in ns, the score 0..100. A fault that no probe
  // detected recovers in 0; one that did not recover in +infinity. nullopt: not in that run.
  std::optional<double> oldValue;
  std::optional<double> newValue;
  std::string oldText;  // the value for people ("62%", "1.2s", "not recovered")
  std::string newText;
  Direction direction = Direction::kSame;
};

struct RunSide {
  std::string runId;
  std::string outcome;
  int exitCode = 0;
  int score = 0;
};

struct RunComparison {
  std::string oldExperiment;
  std::string newExperiment;
  RunSide oldRun;
  RunSide newRun;
  std::vector<MetricChange> changes;  // score first, then per probe, then per fault step
  bool sameExperiment() const { return oldExperiment == newExperiment; }
  size_t count(Direction d) const;
};

// Thresholds below which a difference is noise: durations must differ by more than 10% and
// more than 1 ms; availability by any amount; the score by at least 1.
inline constexpr double kDurationRelativeNoise = 0.10;
inline constexpr double kDurationAbsoluteNoiseNs = 1e6;

// A pure function of the two report.json documents.
RunComparison compareRuns(const nlohmann::json& oldReport, const nlohmann::json& newReport);

nlohmann::json comparisonJson(const RunComparison& comparison);
std::string comparisonText(const RunComparison& comparison);

}  // namespace chaosd::report
