// verdict_table: every decision rule of the statistical mode on every recording of
// tests/data/verdict/ (README there): in how many of the 20 runs the during or the after phase
// of the probe "web" deviated, at alpha 0.05 on the p90. The table of docs/verdicts.md.
//
// `verdict_table [DIR]` (default tests/data/verdict, run from the source tree).
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/engine/probes/Verdict.h"

namespace {

using namespace chaosd;
using Run = std::map<std::string, std::map<std::string, std::vector<double>>>;

std::vector<Run> load(const std::string& path) {
  std::ifstream in(path);
  std::vector<Run> runs;
  if (!in) return runs;
  const auto doc = nlohmann::json::parse(in);
  for (const auto& run : doc.at("runs")) {
    Run r;
    for (const auto& [probe, phases] : run.items()) {
      for (const auto& [phase, values] : phases.items()) {
        for (const auto& us : values) r[probe][phase].push_back(us.get<double>() * 1000);
      }
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

std::vector<ProbeSample> samples(const std::vector<double>& ns, Phase phase) {
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

int deviatedRuns(const std::vector<Run>& runs, const BaselineTolerance& t) {
  ProbeSpec spec;
  spec.name = "web";
  spec.timeout = std::chrono::seconds(2);
  spec.tolerance.baseline = t;
  int deviated = 0;
  for (const auto& run : runs) {
    bool any = false;
    for (const std::string phase : {"during", "after"}) {
      const Phase p = phase == "during" ? Phase::kDuring : Phase::kAfter;
      const auto ref =
          samples(t.control.empty() ? run.at("web").at("before") : run.at(t.control).at(phase), p);
      const auto v = judgePhase(spec, p, samples(run.at("web").at(phase), p), std::span(ref));
      any = any || (v.baseline && v.baseline->deviated);
    }
    deviated += any;
  }
  return deviated;
}

BaselineTolerance rule(BaselineTest test, double minEffect, std::string control) {
  BaselineTolerance t;
  t.alpha = 0.05;
  t.quantile = 0.9;
  t.test = test;
  t.minRelative = minEffect;
  t.control = std::move(control);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/data/verdict";
  struct Rule {
    const char* name;
    BaselineTolerance tolerance;
  };
  const std::vector<Rule> rules = {
      {"count", rule(BaselineTest::kExceedance, 0, "")},
      {"blocks", rule(BaselineTest::kBlocks, 0, "")},
      {"blocks+10%", rule(BaselineTest::kBlocks, 0.1, "")},
      {"blocks+20%", rule(BaselineTest::kBlocks, 0.2, "")},
      {"count/control", rule(BaselineTest::kExceedance, 0, "control")},
      {"blocks/control", rule(BaselineTest::kBlocks, 0, "control")},
      {"blocks+10%/control", rule(BaselineTest::kBlocks, 0.1, "control")}};
  std::printf("| recording |");
  for (const auto& r : rules) std::printf(" %s |", r.name);
  std::printf("\n|---|");
  for (size_t i = 0; i < rules.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const char* name : {"harmless-idle", "delay-single-idle", "harmless-10s-idle",
                           "delay-10s-idle", "harmless-load", "delay-load", "pair-idle",
                           "delay-idle", "pair-staggered-idle", "delay-staggered-idle"}) {
    const auto runs = load(dir + "/" + name + ".json");
    if (runs.empty()) {
      std::fprintf(stderr, "verdict_table: %s/%s.json: missing or empty\n", dir.c_str(), name);
      return 1;
    }
    std::printf("| %s |", name);
    for (const auto& r : rules) {
      if (!r.tolerance.control.empty() && !runs[0].contains("control")) {
        std::printf(" - |");
        continue;
      }
      std::printf(" %d/%zu |", deviatedRuns(runs, r.tolerance), runs.size());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
