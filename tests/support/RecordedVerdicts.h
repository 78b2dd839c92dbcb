#pragma once

// The recordings of tests/data/verdict/ (README there) replayed through judgePhase: shared by
// tests/unit/BaselineDecisionTest.cpp and tests/bench/verdict_table.cpp.
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/engine/probes/Verdict.h"

namespace chaosd::testing {

// One run: probe ("web", "control") -> phase name -> latencies in ns (-1: a failed sample).
using RecordedRun = std::map<std::string, std::map<std::string, std::vector<double>>>;

// The runs of one recording file; empty when it cannot be read.
inline std::vector<RecordedRun> loadRecording(const std::string& path) {
  std::ifstream in(path);
  std::vector<RecordedRun> runs;
  if (!in) return runs;
  const auto doc = nlohmann::json::parse(in);
  for (const auto& run : doc.at("runs")) {
    RecordedRun r;
    for (const auto& [probe, phases] : run.items()) {
      for (const auto& [phase, values] : phases.items()) {
        for (const auto& us : values) r[probe][phase].push_back(us.get<double>() * 1000);
      }
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

// Samples 20 ms apart with these latencies (ns; negative: a failed sample).
inline std::vector<ProbeSample> recordedSamples(const std::vector<double>& ns, Phase phase) {
  std::vector<ProbeSample> out;
  for (size_t i = 0; i < ns.size(); ++i) {
    ProbeSample s;
    s.probe = "web";
    s.phase = phase;
    s.start = Clock::TimePoint(std::chrono::milliseconds(20 * static_cast<int64_t>(i)));
    s.ok = ns[i] >= 0;
    s.duration = Duration(static_cast<Duration::rep>(s.ok ? ns[i] : 0));
    out.push_back(s);
  }
  return out;
}

// In how many runs the probe "web" deviated in the during or the after phase, judged with
// tolerance `t` (its control, when it names one, is that probe of the recording).
inline int deviatedRuns(const std::vector<RecordedRun>& runs, const BaselineTolerance& t) {
  ProbeSpec spec;
  spec.name = "web";
  spec.timeout = std::chrono::seconds(2);
  spec.tolerance.baseline = t;
  int deviated = 0;
  for (const auto& run : runs) {
    bool any = false;
    for (const std::string phase : {"during", "after"}) {
      const Phase p = phase == "during" ? Phase::kDuring : Phase::kAfter;
      const auto& reference =
          t.control.empty() ? run.at("web").at("before") : run.at(t.control).at(phase);
      const auto ref = recordedSamples(reference, Phase::kBefore);
      const auto v = judgePhase(spec, p, recordedSamples(run.at("web").at(phase), p),
                                std::span<const ProbeSample>(ref));
      any = any || (v.baseline && v.baseline->deviated);
    }
    deviated += any;
  }
  return deviated;
}

}  // namespace chaosd::testing
