#include <gtest/gtest.h>

#include "reports/ResilienceScore.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd::report {
namespace {

TEST(ResilienceScoreTest, AllPhasesPassingScores100) {
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 1.0, 1.0}), 100);
}

TEST(ResilienceScoreTest, WeightsAreBefore02During05After03) {
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 0.0, 1.0}), 50);   // 0.2 + 0.3
  EXPECT_EQ(resilienceScore(ScoreInputs{0.0, 1.0, 0.0}), 50);   // 0.5
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 0.5, 0.0}), 45);   // 0.2 + 0.25
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 0.75, 1.0}), 88);  // 0.2 + 0.375 + 0.3 = 87.5
}

TEST(ResilienceScoreTest, PhasesThatDidNotRunAreLeftOutAndTheRestRenormalised) {
  // The baseline deviated: only before ran.
  EXPECT_EQ(resilienceScore(ScoreInputs{0.5, std::nullopt, std::nullopt}), 50);
  // Aborted during the faults: before and during, weights 0.2 and 0.5 over 0.7.
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 0.3, std::nullopt}), 50);  // (0.2 + 0.15) / 0.7
}

TEST(ResilienceScoreTest, LeftoversOrAnErrorScoreZero) {
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 1.0, 1.0, true, false}), 0);
  EXPECT_EQ(resilienceScore(ScoreInputs{1.0, 1.0, 1.0, false, true}), 0);
  EXPECT_EQ(resilienceScore(ScoreInputs{}), 0);  // nothing ran
  EXPECT_EQ(scoreNote(ScoreInputs{1.0, 1.0, 1.0, true, false}), " (something was left behind)");
  EXPECT_EQ(scoreNote(ScoreInputs{1.0, 1.0, 1.0}), "");
}

TEST(ResilienceScoreTest, RatesOutsideZeroToOneAreClamped) {
  EXPECT_EQ(resilienceScore(ScoreInputs{2.0, 1.5, -1.0}), 70);  // 0.2 + 0.5 + 0
}

TEST(ResilienceScoreTest, InputsFromAReportAverageProbesPerPhase) {
  auto report = chaosd::testing::fixtureReport();
  auto in = scoreInputsOf(report);
  ASSERT_TRUE(in.before && in.during && in.after);
  EXPECT_DOUBLE_EQ(*in.before, 1.0);
  EXPECT_DOUBLE_EQ(*in.during, (0.75 + 1.0) / 2);  // checkout-health 30/40, db-port 20/20
  EXPECT_DOUBLE_EQ(*in.after, 1.0);                // db-port does not run after
  EXPECT_TRUE(in.leftovers);
  EXPECT_EQ(resilienceScore(report), 0);

  // The same run without the leftover and the failed rollback: deviated.
  report["outcome"] = "deviated";
  report["auditClean"] = true;
  report["faults"][1]["leftovers"] = nlohmann::json::array();
  EXPECT_EQ(resilienceScore(report), 94);  // 0.2 + 0.5 * 0.875 + 0.3 = 0.9375
  report["outcome"] = "error";
  EXPECT_EQ(resilienceScore(report), 0);
}

}  // namespace
}  // namespace chaosd::report
