#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chaosd/engine/Impact.h"
#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::TimePoint kT0{seconds(1000)};

// A probe sampled every 500 ms from kT0; `failing` lists the sample indexes that fail. Passing
// samples take 20 ms, failing ones 150 ms (a timeout is known only when it runs out).
ProbeRecord probe(const std::string& name, int n, std::vector<int> failing) {
  ProbeRecord p;
  p.name = name;
  for (int i = 0; i < n; ++i) {
    ProbeSample s;
    s.probe = name;
    s.start = kT0 + i * milliseconds(500);
    s.ok = std::find(failing.begin(), failing.end(), i) == failing.end();
    s.duration = s.ok ? milliseconds(20) : milliseconds(150);
    s.detail = s.ok ? "status 200" : "status 503 #" + std::to_string(i);
    p.samples.push_back(s);
  }
  return p;
}

FaultRecordOut fault(milliseconds appliedAt, std::optional<milliseconds> revertedAt) {
  FaultRecordOut f;
  f.step = "latency";
  f.appliedMono = kT0 + appliedAt;
  if (revertedAt) f.revertedMono = kT0 + *revertedAt;
  return f;
}

TEST(ImpactTest, DetectAndRecoverAreMeasuredFromApplyAndRevert) {
  // Applied at 1.2 s, reverted at 4.1 s. Samples every 0.5 s; 3..8 fail (1.5 s .. 4.0 s) and
  // 9 (4.5 s) fails too, after the revert; 10, 11, 12 pass: recovered at 5.0 s.
  auto f = fault(milliseconds(1200), milliseconds(4100));
  auto impact = impactOf(f, {probe("api", 20, {3, 4, 5, 6, 7, 8, 9})});
  ASSERT_EQ(impact.size(), 1u);
  EXPECT_EQ(impact[0].probe, "api");
  EXPECT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].detectedAfter, milliseconds(450));  // 1.5 s + 0.15 s - 1.2 s
  EXPECT_EQ(impact[0].detail, "status 503 #3");
  EXPECT_TRUE(impact[0].recovered);
  EXPECT_EQ(impact[0].recoveredAfter, milliseconds(900));  // 5.0 s - 4.1 s
}

TEST(ImpactTest, FailuresBeforeApplyOrAfterRevertAreNotDetections) {
  // Sample 1 (0.5 s) fails before the apply at 1 s; 8 (4.0 s) after the revert at 3 s.
  auto impact = impactOf(fault(seconds(1), seconds(3)), {probe("api", 12, {1, 8})});
  ASSERT_EQ(impact.size(), 1u);
  EXPECT_FALSE(impact[0].detected);
  EXPECT_FALSE(impact[0].recovered);
}

TEST(ImpactTest, NoRecoveryUntilThreePassesInARow) {
  // Fails at 1.0 s; after the revert at 2 s it passes twice, fails, passes twice: the run
  // ends before three passes in a row.
  auto impact = impactOf(fault(seconds(1), seconds(2)), {probe("api", 9, {2, 3, 6})});
  ASSERT_EQ(impact.size(), 1u);
  EXPECT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].detectedAfter, milliseconds(150));
  EXPECT_FALSE(impact[0].recovered);
}

TEST(ImpactTest, AFaultNeverRevertedDetectsUntilTheEndAndNeverRecovers) {
  auto impact = impactOf(fault(seconds(1), std::nullopt), {probe("api", 10, {9})});
  ASSERT_EQ(impact.size(), 1u);
  EXPECT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].detectedAfter, milliseconds(3650));
  EXPECT_FALSE(impact[0].recovered);
}

TEST(ImpactTest, OnePerProbeAndNoneForAFaultNeverApplied) {
  RunResult r;
  r.probes = {probe("api", 10, {4}), probe("db", 10, {})};
  r.faults = {fault(seconds(1), milliseconds(2800)), FaultRecordOut{}};
  computeImpacts(r);
  ASSERT_EQ(r.faults[0].impact.size(), 2u);
  EXPECT_TRUE(r.faults[0].impact[0].detected);
  EXPECT_FALSE(r.faults[0].impact[1].detected);
  EXPECT_TRUE(r.faults[1].impact.empty());
  EXPECT_TRUE(r.faults[0].impact[0].recovered);
  EXPECT_EQ(r.faults[0].impact[0].detectedAfter, milliseconds(1150));  // 2.0 s + 0.15 s - 1 s
  EXPECT_EQ(r.faults[0].impact[0].recoveredAfter, milliseconds(200));  // 3.0 s - 2.8 s
}

// A probe of the statistical mode: a before phase of 60 samples of 10..69 ms (every 500 ms
// from kT0), then a during phase of 60 whose samples from `slowFrom` on take 200 ms, all
// passing; the during phase judged against the before phase as the engine does.
ProbeSpec baselineSpec(BaselineTest test) {
  ProbeSpec spec;
  spec.name = "api";
  BaselineTolerance b;
  b.test = test;
  b.alpha = 0.01;
  spec.tolerance.baseline = b;
  return spec;
}

ProbeRecord statisticalProbe(const ProbeSpec& spec, int slowFrom, int duringCount = 60) {
  ProbeRecord p;
  p.name = spec.name;
  for (int i = 0; i < 60 + duringCount; ++i) {
    ProbeSample s;
    s.probe = spec.name;
    s.phase = i < 60 ? Phase::kBefore : Phase::kDuring;
    s.start = kT0 + i * milliseconds(500);
    s.ok = true;
    const int ms = i >= 60 + slowFrom ? 200 : 10 + (i * 37) % 60;
    s.duration = milliseconds(ms);
    s.detail = "status 200";
    p.samples.push_back(s);
  }
  std::vector<ProbeSample> before(p.samples.begin(), p.samples.begin() + 60);
  std::vector<ProbeSample> during(p.samples.begin() + 60, p.samples.end());
  p.verdicts.push_back(judgePhase(spec, Phase::kBefore, before));
  p.verdicts.push_back(
      judgePhase(spec, Phase::kDuring, during, std::span<const ProbeSample>(before)));
  return p;
}

bool prefixRejects(const ProbeSpec& spec, const ProbeRecord& p, size_t n) {
  std::vector<ProbeSample> before(p.samples.begin(), p.samples.begin() + 60);
  std::vector<ProbeSample> during(p.samples.begin() + 60, p.samples.begin() + 60 + n);
  auto v = judgePhase(spec, Phase::kDuring, during, std::span<const ProbeSample>(before));
  return v.baseline && v.baseline->deviated;
}

// The fault held over the whole during phase (30 s .. 60 s from kT0).
FaultRecordOut heldOverDuring() { return fault(seconds(30), seconds(60)); }

TEST(ImpactTest, TheCountTestDetectsWhereItFirstRejects) {
  const ProbeSpec spec = baselineSpec(BaselineTest::kExceedance);
  const ProbeRecord p = statisticalProbe(spec, 20);
  ASSERT_FALSE(p.verdicts[1].held)
      << "the during phase must deviate for this test to mean anything";
  ASSERT_EQ(firstFailure(p.samples, kT0), nullptr) << "no sample fails";
  auto impact = impactOf(heldOverDuring(), {p}, {spec});
  ASSERT_EQ(impact.size(), 1u);
  ASSERT_TRUE(impact[0].detected) << "the phase deviated: a time to detect is owed";
  EXPECT_EQ(impact[0].by, "baseline");
  // The detecting sample is the n-th of the phase: the test on n samples rejects, on n - 1
  // it does not, and it is a slow one (the 21st or later).
  const auto n =
      static_cast<size_t>((impact[0].detectedAfter - milliseconds(200)) / milliseconds(500)) + 1;
  EXPECT_EQ(impact[0].detectedAfter, (n - 1) * milliseconds(500) + milliseconds(200));
  std::printf("[ measure  ] count test: rejects after %zu of 60 samples (slow from the 21st)\n", n);
  EXPECT_GT(n, 20u);
  EXPECT_LT(n, 60u) << "it rejects before the phase's end";
  EXPECT_TRUE(prefixRejects(spec, p, n));
  EXPECT_FALSE(prefixRejects(spec, p, n - 1));
  EXPECT_THAT(impact[0].detail, ::testing::StartsWith("the statistical test rejected after " +
                                                      std::to_string(n) + " of the during"));
  EXPECT_FALSE(impact[0].recovered) << "the run ends slow";
}

TEST(ImpactTest, TheBlockTestDetectsWhereItFirstRejects) {
  const ProbeSpec spec = baselineSpec(BaselineTest::kBlocks);
  const ProbeRecord p = statisticalProbe(spec, 20);
  ASSERT_FALSE(p.verdicts[1].held);
  auto impact = impactOf(heldOverDuring(), {p}, {spec});
  ASSERT_EQ(impact.size(), 1u);
  ASSERT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].by, "baseline");
  const auto n =
      static_cast<size_t>((impact[0].detectedAfter - milliseconds(200)) / milliseconds(500)) + 1;
  std::printf("[ measure  ] block test: rejects after %zu of 60 samples (slow from the 21st)\n", n);
  EXPECT_GT(n, 20u);
  EXPECT_TRUE(prefixRejects(spec, p, n));
  EXPECT_FALSE(prefixRejects(spec, p, n - 1));
}

TEST(ImpactTest, ALongPhaseIsScannedOnAGridAndStillFindsTheFirstRejection) {
  // 3000 held samples, slow from the 1501st: the count test looks at every 12th, then bisects.
  const ProbeSpec spec = baselineSpec(BaselineTest::kExceedance);
  const ProbeRecord p = statisticalProbe(spec, 1500, 3000);
  ASSERT_FALSE(p.verdicts[1].held);
  const auto t0 = std::chrono::steady_clock::now();
  auto impact = impactOf(fault(seconds(30), seconds(30 + 1500)), {p}, {spec});
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(impact.size(), 1u);
  ASSERT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].by, "baseline");
  const auto n =
      static_cast<size_t>((impact[0].detectedAfter - milliseconds(200)) / milliseconds(500)) + 1;
  std::printf(
      "[ measure  ] 3000 samples: rejects after %zu, found in %lld ms\n", n,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_GT(n, 1500u);
  EXPECT_TRUE(prefixRejects(spec, p, n));
  EXPECT_FALSE(prefixRejects(spec, p, n - 1));
  EXPECT_LT(took, std::chrono::seconds(20)) << "a few hundred looks, not 3000";
}

TEST(ImpactTest, ALatencyBoundDetectsAtTheFirstSampleOverIt) {
  ProbeSpec spec;
  spec.name = "api";
  spec.tolerance.latency = {LatencyBound{95, Comparison{CompareOp::kLt, 100e6}}};
  ProbeRecord p = probe("api", 20, {});
  for (int i = 6; i < 12; ++i) p.samples[i].duration = milliseconds(300);  // 3.0 s .. 5.5 s
  p.verdicts.push_back(judgePhase(spec, Phase::kBefore, p.samples));
  ASSERT_FALSE(p.verdicts[0].held);
  auto impact = impactOf(fault(seconds(2), seconds(5)), {p});
  ASSERT_EQ(impact.size(), 1u);
  ASSERT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].by, "latency");
  EXPECT_EQ(impact[0].detectedAfter, milliseconds(1300));  // 3.0 s + 0.3 s - 2 s
  EXPECT_EQ(impact[0].detail, "latency 300ms breaks p95 < 100ms (status 200)");
  EXPECT_TRUE(impact[0].recovered);
  EXPECT_EQ(impact[0].recoveredAfter, milliseconds(1000)) << "within the bound from 6.0 s";
}

TEST(ImpactTest, ASlowSampleInAPhaseThatHeldIsNoDetection) {
  ProbeSpec spec;
  spec.name = "api";
  spec.tolerance.latency = {LatencyBound{95, Comparison{CompareOp::kLt, 100e6}}};
  ProbeRecord p = probe("api", 40, {});
  p.samples[6].duration = milliseconds(300);  // one in 40: p95 still 20 ms
  p.verdicts.push_back(judgePhase(spec, Phase::kBefore, p.samples));
  ASSERT_TRUE(p.verdicts[0].held);
  auto impact = impactOf(fault(seconds(2), seconds(5)), {p});
  ASSERT_EQ(impact.size(), 1u);
  EXPECT_FALSE(impact[0].detected);
}

TEST(ImpactTest, AFailingSampleBeforeTheFirstSlowOneIsTheDetection) {
  ProbeSpec spec;
  spec.name = "api";
  spec.tolerance.latency = {LatencyBound{95, Comparison{CompareOp::kLt, 100e6}}};
  ProbeRecord p = probe("api", 20, {5});  // fails at 2.5 s, 150 ms long
  for (int i = 6; i < 12; ++i) p.samples[i].duration = milliseconds(300);
  p.verdicts.push_back(judgePhase(spec, Phase::kBefore, p.samples));
  auto impact = impactOf(fault(seconds(2), seconds(5)), {p});
  ASSERT_TRUE(impact[0].detected);
  EXPECT_EQ(impact[0].by, "sample");
  EXPECT_EQ(impact[0].detectedAfter, milliseconds(650));
  EXPECT_EQ(impact[0].detail, "status 503 #5");
}

}  // namespace
}  // namespace chaosd
