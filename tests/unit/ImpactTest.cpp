#include <gtest/gtest.h>

#include "chaosd/engine/Impact.h"

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

}  // namespace
}  // namespace chaosd
