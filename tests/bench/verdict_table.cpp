// verdict_table: every decision rule of the statistical mode on every recording of
// tests/data/verdict/ (README there): in how many of the 20 runs the during or the after phase
// of the probe "web" deviated, at alpha 0.05 on the p90. The table of docs/verdicts.md.
// "+10%": a minEffect of 10% by estimate (the default), "by bound": compared with the bound.
//
// `verdict_table [DIR] [--candidates]` (default tests/data/verdict, run from the source tree).
// --candidates adds the tables of the rules chaosd does not use (tests/support/
// VerdictCandidates.h): half an hour and more in the -O0 build, a few minutes in an optimized one.
#include <cstdio>
#include <string>
#include <vector>

#include "chaosd/engine/probes/Verdict.h"
#include "tests/support/RecordedVerdicts.h"
#include "tests/support/VerdictCandidates.h"

namespace {

using namespace chaosd;
using chaosd::testing::deviatedRuns;

BaselineTolerance rule(BaselineTest test, double minEffect, std::string control,
                       MinEffectBy by = MinEffectBy::kEstimate) {
  BaselineTolerance t;
  t.minEffectBy = by;
  t.alpha = 0.05;
  t.quantile = 0.9;
  t.test = test;
  t.minRelative = minEffect;
  t.control = std::move(control);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "tests/data/verdict";
  bool candidates = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--candidates") {
      candidates = true;
    } else {
      dir = argv[i];
    }
  }
  struct Rule {
    const char* name;
    BaselineTolerance tolerance;
  };
  const std::vector<Rule> rules = {
      {"count", rule(BaselineTest::kExceedance, 0, "")},
      {"blocks", rule(BaselineTest::kBlocks, 0, "")},
      {"blocks+10%", rule(BaselineTest::kBlocks, 0.1, "")},
      {"blocks+20%", rule(BaselineTest::kBlocks, 0.2, "")},
      {"blocks+10% by bound", rule(BaselineTest::kBlocks, 0.1, "", MinEffectBy::kBound)},
      {"count/control", rule(BaselineTest::kExceedance, 0, "control")},
      {"blocks/control", rule(BaselineTest::kBlocks, 0, "control")},
      {"blocks+10%/control", rule(BaselineTest::kBlocks, 0.1, "control")},
      {"blocks+20%/control", rule(BaselineTest::kBlocks, 0.2, "control")},
      {"blocks+10% by bound/control",
       rule(BaselineTest::kBlocks, 0.1, "control", MinEffectBy::kBound)}};
  std::printf("| recording |");
  for (const auto& r : rules) std::printf(" %s |", r.name);
  std::printf("\n|---|");
  for (size_t i = 0; i < rules.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const char* name :
       {"harmless-idle", "delay-single-idle", "harmless-10s-idle", "delay-10s-idle",
        "harmless-load", "delay-load", "pair-idle", "delay-idle", "pair-staggered-idle",
        "delay-staggered-idle", "pair-7s-idle", "delay-7s-idle"}) {
    const auto runs = chaosd::testing::loadRecording(dir + "/" + name + ".json");
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
  if (candidates) chaosd::testing::candidates::printCandidateTables(dir);
  return 0;
}
