#include <gtest/gtest.h>

#include <vector>

#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {
namespace {

using std::chrono::milliseconds;

ProbeSample sampleAt(int index, bool ok, milliseconds latency, std::string detail = "") {
  ProbeSample s;
  s.probe = "api";
  s.phase = Phase::kDuring;
  s.start = Clock::TimePoint(std::chrono::seconds(100) + index * milliseconds(250));
  s.wallStart = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000) +
                                                      index * milliseconds(250));
  s.duration = latency;
  s.ok = ok;
  s.detail = detail.empty() ? (ok ? "status 200" : "status 503") : detail;
  return s;
}

// n samples; latencies 1..n ms; the listed indexes fail.
std::vector<ProbeSample> samples(int n, std::vector<int> failing = {}) {
  std::vector<ProbeSample> out;
  for (int i = 0; i < n; ++i) {
    const bool ok = std::find(failing.begin(), failing.end(), i) == failing.end();
    out.push_back(sampleAt(i, ok, milliseconds(i + 1)));
  }
  return out;
}

ProbeSpec spec() {
  ProbeSpec s;
  s.name = "api";
  s.timeout = std::chrono::seconds(1);
  return s;
}

TEST(VerdictTest, AllPassingHolds) {
  auto v = judgePhase(spec(), Phase::kDuring, samples(100));
  EXPECT_TRUE(v.held);
  EXPECT_TRUE(v.reasons.empty());
  EXPECT_EQ(v.count, 100u);
  EXPECT_EQ(v.passed, 100u);
  EXPECT_DOUBLE_EQ(v.availability, 1.0);
  EXPECT_TRUE(v.successRateHeld);
  // Nearest rank over 1..100 ms.
  EXPECT_EQ(v.p50, milliseconds(50));
  EXPECT_EQ(v.p95, milliseconds(95));
  EXPECT_EQ(v.p99, milliseconds(99));
  EXPECT_FALSE(v.firstFailure.has_value());
  EXPECT_FALSE(v.baseline.has_value());
}

TEST(VerdictTest, WithoutSuccessRateEverySampleMustPass) {
  auto all = samples(40, {7});
  all[7].detail = "connect 127.0.0.1:8080: Connection refused";
  auto v = judgePhase(spec(), Phase::kDuring, all);
  EXPECT_FALSE(v.held);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0],
            "availability 0.975 < 1 (39 of 40 samples passed; first failure: connect "
            "127.0.0.1:8080: Connection refused)");
  ASSERT_TRUE(v.firstFailure.has_value());
  EXPECT_EQ(*v.firstFailure, all[7].start);
  EXPECT_EQ(*v.firstFailureWall, all[7].wallStart);
}

TEST(VerdictTest, SuccessRateComparison) {
  auto s = spec();
  s.tolerance.successRate = Comparison{CompareOp::kGe, 0.9};
  EXPECT_TRUE(judgePhase(s, Phase::kDuring, samples(40, {1, 2, 3, 4})).held);  // 0.9
  auto v = judgePhase(s, Phase::kDuring, samples(40, {1, 2, 3, 4, 5}));        // 0.875
  EXPECT_FALSE(v.held);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0].rfind("availability 0.875 < 0.9 (35 of 40 samples passed", 0), 0u)
      << v.reasons[0];
}

TEST(VerdictTest, LatencyBounds) {
  auto s = spec();
  s.tolerance.successRate = Comparison{CompareOp::kGe, 0.0};
  s.tolerance.latency = {LatencyBound{95, Comparison{CompareOp::kLe, 300e6}},
                         LatencyBound{50, Comparison{CompareOp::kLt, 100e6}}};
  std::vector<ProbeSample> all;
  for (int i = 0; i < 20; ++i) all.push_back(sampleAt(i, true, milliseconds(i < 18 ? 20 : 412)));
  auto v = judgePhase(s, Phase::kDuring, all);
  // p95 of 20 is the 19th smallest: 412ms.
  EXPECT_FALSE(v.held);
  ASSERT_EQ(v.latency.size(), 2u);
  EXPECT_FALSE(v.latency[0].held);
  EXPECT_EQ(v.latency[0].observed, milliseconds(412));
  EXPECT_TRUE(v.latency[1].held);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0], "p95 latency 412ms > 300ms");
}

TEST(VerdictTest, AFailedSampleCountsAsAtLeastTheTimeout) {
  auto s = spec();
  s.tolerance.successRate = Comparison{CompareOp::kGe, 0.5};
  s.tolerance.latency = {LatencyBound{95, Comparison{CompareOp::kLe, 300e6}}};
  // Ten fast samples, one of them a refused connection that took 0.1 ms.
  std::vector<ProbeSample> all;
  for (int i = 0; i < 10; ++i) all.push_back(sampleAt(i, i != 3, milliseconds(1)));
  auto v = judgePhase(s, Phase::kDuring, all);
  EXPECT_EQ(v.p95, std::chrono::seconds(1));
  EXPECT_EQ(v.p50, milliseconds(1));
  EXPECT_FALSE(v.held);
  EXPECT_EQ(v.reasons.at(0), "p95 latency 1s > 300ms");
  EXPECT_EQ(effectiveLatency(all[3], std::chrono::seconds(1)), std::chrono::seconds(1));
  EXPECT_EQ(effectiveLatency(all[2], std::chrono::seconds(1)), milliseconds(1));
}

TEST(VerdictTest, NoSamplesDoesNotHold) {
  auto v = judgePhase(spec(), Phase::kAfter, {});
  EXPECT_FALSE(v.held);
  EXPECT_EQ(v.count, 0u);
  EXPECT_EQ(v.reasons.at(0), "no samples were taken in the after phase");
}

ProbeSpec baselineSpec() {
  auto s = spec();
  s.tolerance.baseline = BaselineTolerance{};
  return s;
}

// Latencies around 3 ms with a p95 of 3.1 ms.
std::vector<ProbeSample> steady(int n, int offset = 0) {
  std::vector<ProbeSample> out;
  for (int i = 0; i < n; ++i) {
    const auto us = std::chrono::microseconds(2000 + (i * 37 % 20) * 60);  // 2.0..3.14 ms
    out.push_back(sampleAt(offset + i, true, std::chrono::duration_cast<milliseconds>(us)));
    out.back().duration = us;
  }
  return out;
}

TEST(VerdictTest, BaselineModeHoldsWhenNothingChanged) {
  auto base = steady(40);
  auto phase = steady(40, 40);
  auto v = judgePhase(baselineSpec(), Phase::kDuring, phase, std::span<const ProbeSample>(base));
  EXPECT_TRUE(v.held) << (v.reasons.empty() ? "" : v.reasons[0]);
  ASSERT_TRUE(v.baseline.has_value());
  EXPECT_EQ(v.baseline->baselineCount, 40u);
  EXPECT_EQ(v.baseline->rank, 38u);
  EXPECT_EQ(v.baseline->count, 40u);
  EXPECT_FALSE(v.baseline->deviated);
  EXPECT_GT(v.baseline->pValue, 0.01);
}

TEST(VerdictTest, BaselineModeFlagsASlowPhase) {
  auto base = steady(40);
  auto phase = steady(40, 40);
  for (int i = 0; i < 12; ++i) phase[static_cast<size_t>(i * 3)].duration = milliseconds(9);
  auto v = judgePhase(baselineSpec(), Phase::kDuring, phase, std::span<const ProbeSample>(base));
  EXPECT_FALSE(v.held);
  ASSERT_TRUE(v.baseline.has_value());
  EXPECT_TRUE(v.baseline->deviated);
  EXPECT_GE(v.baseline->exceedances, 12u);
  EXPECT_LT(v.baseline->pValue, 0.01);
  ASSERT_EQ(v.reasons.size(), 1u);
  // "12 of 40 samples above the baseline's p95 of 3.08ms (2.93 expected); P = 5.1e-05 < alpha
  // 0.01"
  EXPECT_EQ(v.reasons[0].rfind(std::to_string(v.baseline->exceedances) +
                                   " of 40 samples above the baseline's p95 of " +
                                   formatLatency(v.baseline->threshold),
                               0),
            0u)
      << v.reasons[0];
  EXPECT_NE(v.reasons[0].find("< alpha 0.01"), std::string::npos) << v.reasons[0];
}

TEST(VerdictTest, BaselineModeSkippedWithoutBaselineAndFailsOnAnEmptyOne) {
  auto phase = steady(40);
  auto v = judgePhase(baselineSpec(), Phase::kBefore, phase);
  EXPECT_TRUE(v.held);
  EXPECT_FALSE(v.baseline.has_value());

  std::vector<ProbeSample> none;
  v = judgePhase(baselineSpec(), Phase::kDuring, phase, std::span<const ProbeSample>(none));
  EXPECT_FALSE(v.held);
  EXPECT_EQ(v.reasons.at(0), "the baseline has no samples to compare with");
}

TEST(VerdictTest, FailuresInThePhaseCountAsExceedances) {
  auto base = steady(40);
  auto phase = steady(40, 40);
  for (int i = 0; i < 10; ++i) {
    phase[static_cast<size_t>(i)].ok = false;
    phase[static_cast<size_t>(i)].duration = std::chrono::microseconds(100);  // refused fast
  }
  auto s = baselineSpec();
  s.tolerance.successRate = Comparison{CompareOp::kGe, 0.5};
  auto v = judgePhase(s, Phase::kDuring, phase, std::span<const ProbeSample>(base));
  ASSERT_TRUE(v.baseline.has_value());
  EXPECT_GE(v.baseline->exceedances, 10u);
  EXPECT_TRUE(v.baseline->deviated);
}

TEST(VerdictTest, FirstFailureAfter) {
  auto all = samples(20, {2, 9, 10});
  const auto since = all[5].start;
  const ProbeSample* f = firstFailure(all, since);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f, &all[9]);
  EXPECT_EQ(firstFailure(all, all[11].start), nullptr);
}

TEST(VerdictTest, RecoveredAtNeedsKConsecutivePasses) {
  // fail fail ok ok fail ok ok ok ok
  std::vector<ProbeSample> all;
  for (bool ok : {false, false, true, true, false, true, true, true, true}) {
    all.push_back(sampleAt(static_cast<int>(all.size()), ok, milliseconds(1)));
  }
  const auto since = all[0].start;
  const ProbeSample* r = recoveredAt(all, since);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, &all[5]);
  EXPECT_EQ(kRecoverySamples, 3u);
  EXPECT_EQ(recoveredAt(all, since, 2), &all[2]);
  EXPECT_EQ(recoveredAt(all, since, 5), nullptr);  // only four in a row before the end
  // Samples before `since` do not count towards the run.
  EXPECT_EQ(recoveredAt(all, all[7].start, 2), &all[7]);
  EXPECT_EQ(recoveredAt(all, all[7].start, 3), nullptr);
}

TEST(VerdictTest, FormatLatency) {
  EXPECT_EQ(formatLatency(milliseconds(412)), "412ms");
  EXPECT_EQ(formatLatency(std::chrono::microseconds(3100)), "3.1ms");
  EXPECT_EQ(formatLatency(std::chrono::microseconds(3123)), "3.12ms");
  EXPECT_EQ(formatLatency(std::chrono::microseconds(850)), "850us");
  EXPECT_EQ(formatLatency(milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatLatency(std::chrono::seconds(1)), "1s");
  EXPECT_EQ(formatLatency(std::chrono::nanoseconds(12)), "12ns");
  EXPECT_EQ(formatLatency(std::chrono::nanoseconds(0)), "0ns");
  EXPECT_EQ(formatLatency(milliseconds(12345)), "12.3s");
}

}  // namespace
}  // namespace chaosd
