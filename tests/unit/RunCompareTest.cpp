#include <gtest/gtest.h>

#include <cmath>

#include "reports/RunComparison.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd::report {
namespace {

// The fixture run after a fix: clean, every sample passing during the fault, faster recovery.
nlohmann::json improvedRun() {
  auto r = chaosd::testing::fixtureReport();
  r["runId"] = "aaaabbbbccccdddd";
  r["outcome"] = "ok";
  r["exitCode"] = 0;
  r["auditClean"] = true;
  r["faults"][1]["leftovers"] = nlohmann::json::array();
  auto& during = r["probes"][0]["verdicts"][1];
  during["passed"] = 40;
  during["availability"] = 1.0;
  during["held"] = true;
  during["p95Ns"] = 180'000'000;
  r["faults"][0]["impact"][0]["recoveredAfterNs"] = 400'000'000;
  return r;
}

const MetricChange* find(const RunComparison& c, const std::string& subject) {
  for (const auto& m : c.changes) {
    if (m.subject == subject) return &m;
  }
  return nullptr;
}

TEST(RunCompareTest, ReportsWhatGotBetter) {
  const auto c = compareRuns(chaosd::testing::fixtureReport(), improvedRun());
  ASSERT_TRUE(c.sameExperiment());
  const auto* score = find(c, "resilience score");
  ASSERT_NE(score, nullptr);
  EXPECT_EQ(score->direction, Direction::kBetter);
  EXPECT_EQ(score->oldText, "0");
  EXPECT_EQ(score->newText, "100");

  const auto* avail = find(c, "availability of probe checkout-health in the during phase");
  ASSERT_NE(avail, nullptr);
  EXPECT_EQ(avail->direction, Direction::kBetter);
  EXPECT_EQ(avail->oldText, "75%");
  EXPECT_EQ(avail->newText, "100%");
  EXPECT_EQ(avail->probe, "checkout-health");
  EXPECT_EQ(avail->phase, "during");

  const auto* p95 = find(c, "p95 latency of probe checkout-health during faults");
  ASSERT_NE(p95, nullptr);
  EXPECT_EQ(p95->direction, Direction::kBetter);
  EXPECT_EQ(p95->oldText, "1s");
  EXPECT_EQ(p95->newText, "180ms");

  const auto* ttr = find(c, "time to recover after fault db-latency");
  ASSERT_NE(ttr, nullptr);
  EXPECT_EQ(ttr->direction, Direction::kBetter);
  EXPECT_EQ(ttr->oldText, "900ms");
  EXPECT_EQ(ttr->newText, "400ms");
  EXPECT_EQ(ttr->step, "db-latency");

  const auto* same = find(c, "availability of probe db-port in the before phase");
  ASSERT_NE(same, nullptr);
  EXPECT_EQ(same->direction, Direction::kSame);
  EXPECT_EQ(c.count(Direction::kWorse), 0u);
}

TEST(RunCompareTest, TheReverseIsWorse) {
  const auto c = compareRuns(improvedRun(), chaosd::testing::fixtureReport());
  EXPECT_EQ(c.count(Direction::kBetter), 0u);
  EXPECT_EQ(c.count(Direction::kWorse), 4u);  // score, availability, p95, time to recover
}

TEST(RunCompareTest, SmallLatencyChangesAreNoise) {
  auto oldRun = chaosd::testing::fixtureReport();
  auto newRun = oldRun;
  newRun["probes"][0]["verdicts"][1]["p95Ns"] = 1'050'000'000;         // +5%
  newRun["faults"][0]["impact"][0]["recoveredAfterNs"] = 900'500'000;  // +0.5 ms
  const auto c = compareRuns(oldRun, newRun);
  EXPECT_EQ(find(c, "p95 latency of probe checkout-health during faults")->direction,
            Direction::kSame);
  EXPECT_EQ(find(c, "time to recover after fault db-latency")->direction, Direction::kSame);
  EXPECT_EQ(c.count(Direction::kBetter) + c.count(Direction::kWorse), 0u);
}

TEST(RunCompareTest, NotRecoveringIsWorseThanAnyRecoveryAndNotDetectingIsBest) {
  auto oldRun = chaosd::testing::fixtureReport();
  auto newRun = oldRun;
  newRun["faults"][0]["impact"][0]["recovered"] = false;
  newRun["faults"][0]["impact"][0]["recoveredAfterNs"] = nullptr;
  auto c = compareRuns(oldRun, newRun);
  const auto* ttr = find(c, "time to recover after fault db-latency");
  EXPECT_EQ(ttr->direction, Direction::kWorse);
  EXPECT_EQ(ttr->newText, "not recovered");
  EXPECT_TRUE(std::isinf(*ttr->newValue));
  const nlohmann::json doc = comparisonJson(c);  // a range-for over a temporary's member dangles
  for (const auto& j : doc["changes"]) {
    if (j.value("step", "") == "db-latency") {
      EXPECT_EQ(j["new"], nullptr);  // JSON has no infinity
    }
  }

  newRun["faults"][0]["impact"][0]["detected"] = false;
  c = compareRuns(oldRun, newRun);
  ttr = find(c, "time to recover after fault db-latency");
  EXPECT_EQ(ttr->direction, Direction::kBetter);
  EXPECT_EQ(ttr->newText, "not detected");
}

TEST(RunCompareTest, ProbesAndStepsInOnlyOneRunAreNamed) {
  auto oldRun = chaosd::testing::fixtureReport();
  auto newRun = oldRun;
  newRun["probes"].erase(1);
  newRun["faults"][1]["step"] = "fill-data";
  const auto c = compareRuns(oldRun, newRun);
  EXPECT_EQ(find(c, "availability of probe db-port in the during phase")->direction,
            Direction::kOnlyOld);
  EXPECT_EQ(find(c, "time to recover after fault fill-data")->direction, Direction::kOnlyNew);
  EXPECT_EQ(find(c, "time to recover after fault fill-logs")->direction, Direction::kOnlyOld);
}

TEST(RunCompareTest, DifferentExperimentsAreFlagged) {
  auto other = chaosd::testing::fixtureReport();
  other["experiment"]["metadata"]["name"] = "something-else";
  EXPECT_FALSE(compareRuns(chaosd::testing::fixtureReport(), other).sameExperiment());
}

TEST(RunCompareTest, TextAndJsonSayBetterAndWorse) {
  const auto c = compareRuns(chaosd::testing::fixtureReport(), improvedRun());
  const std::string text = comparisonText(c);
  EXPECT_NE(text.find("better (4):\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  resilience score: 0 -> 100\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  time to recover after fault db-latency: 900ms -> 400ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("worse (0):\n"), std::string::npos) << text;
  const auto j = comparisonJson(c);
  EXPECT_EQ(j["better"], 4);
  EXPECT_EQ(j["worse"], 0);
  EXPECT_EQ(j["old"]["runId"], "3f9c2a1b7d4e5f60");
  EXPECT_EQ(j["new"]["score"], 100);
  EXPECT_EQ(j["changes"][0]["metric"], "score");
  EXPECT_EQ(j["changes"][0]["direction"], "better");
}

}  // namespace
}  // namespace chaosd::report
