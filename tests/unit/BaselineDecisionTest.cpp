// The statistical mode's decision (issue 24): the moving-block bootstrap of the quantile ratio,
// the minimum effect, the control probe. Simulations with fixed seeds, then recorded latencies
// of real runs on this project's machines (tests/data/verdict/, see its README).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "chaosd/engine/probes/Statistics.h"
#include "chaosd/engine/probes/Verdict.h"
#include "tests/support/RecordedVerdicts.h"

namespace chaosd {
namespace {

using stats::bootstrapBlockLength;
using stats::bootstrapQuantileEffect;

// A latency series (ms) whose log follows an AR(1) process: `rho` 0 is independent samples,
// 0.9 a service whose slow spells last about ten samples (a stall, a burst of load).
std::vector<double> series(std::mt19937_64& rng, size_t n, double rho, double scale = 1.0) {
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> out;
  double x = noise(rng);  // stationary start
  for (size_t i = 0; i < n; ++i) {
    out.push_back(scale * std::exp(0.3 * x) * 1e6);  // about 1 ms, in ns
    x = rho * x + std::sqrt(1 - rho * rho) * noise(rng);
  }
  return out;
}

std::vector<ProbeSample> samplesOf(const std::vector<double>& ns, Phase phase) {
  std::vector<ProbeSample> out;
  for (size_t i = 0; i < ns.size(); ++i) {
    ProbeSample s;
    s.probe = "web";
    s.phase = phase;
    s.start = Clock::TimePoint(std::chrono::milliseconds(20 * static_cast<int64_t>(i)));
    s.duration = Duration(static_cast<Duration::rep>(ns[i]));
    s.ok = true;
    out.push_back(s);
  }
  return out;
}

BaselineTolerance tolerance(double alpha, double quantile) {
  BaselineTolerance t;
  t.alpha = alpha;
  t.quantile = quantile;
  return t;
}

ProbeSpec specWith(BaselineTolerance t) {
  ProbeSpec s;
  s.name = "web";
  s.timeout = std::chrono::seconds(2);
  s.tolerance.baseline = t;
  return s;
}

bool deviates(const ProbeSpec& spec, const std::vector<double>& reference,
              const std::vector<double>& phase) {
  const auto ref = samplesOf(reference, Phase::kBefore);
  const auto v = judgePhase(spec, Phase::kDuring, samplesOf(phase, Phase::kDuring),
                            std::span<const ProbeSample>(ref));
  return v.baseline && v.baseline->deviated;
}

TEST(BaselineDecisionTest, BlockLengthGrowsLikeTheSquareRoot) {
  EXPECT_EQ(bootstrapBlockLength(0), 1u);
  EXPECT_EQ(bootstrapBlockLength(1), 1u);
  EXPECT_EQ(bootstrapBlockLength(150), 13u);
  EXPECT_EQ(bootstrapBlockLength(400), 20u);
}

TEST(BaselineDecisionTest, TheEffectAndItsIntervalAreDeterministicAndCoverTheTruth) {
  std::mt19937_64 rng(11);
  const auto a = series(rng, 300, 0.0);
  const auto b = series(rng, 300, 0.0, 1.3);
  const auto e = bootstrapQuantileEffect(a, b, 0.9, 0.05, 1000, 42);
  EXPECT_NEAR(e.ratio, 1.3, 0.15);
  EXPECT_LT(e.ratioLow, e.ratio);
  EXPECT_GT(e.ratioHigh, e.ratio);
  EXPECT_GT(e.ratioLow, 1.1) << "a 30% rise on 300 samples is clear";
  EXPECT_LT(e.ratioLow, 1.3);
  EXPECT_GT(e.ratioHigh, 1.2);
  EXPECT_NEAR(e.difference, e.phase - e.reference, 1e-9);
  EXPECT_EQ(e.blockLength, 18u);
  EXPECT_EQ(e.resamples, 1000u);
  const auto again = bootstrapQuantileEffect(a, b, 0.9, 0.05, 1000, 42);
  EXPECT_EQ(again.ratioLow, e.ratioLow);
  EXPECT_EQ(again.ratioHigh, e.ratioHigh);
  const auto same = bootstrapQuantileEffect(a, a, 0.9, 0.05, 1000, 42);
  EXPECT_DOUBLE_EQ(same.ratio, 1.0);
  EXPECT_LT(same.ratioLow, 1.0);
  EXPECT_GT(same.ratioHigh, 1.0);
}

struct Rates {
  int exceedance = 0;
  int blocks = 0;
};

// False alarms of both tests over `trials` pairs drawn from the same process.
Rates falseAlarms(double rho, int trials, double alpha) {
  std::mt19937_64 rng(2026);
  auto exact = specWith(tolerance(alpha, 0.9));
  exact.tolerance.baseline->test = BaselineTest::kExceedance;
  const auto blocks = specWith(tolerance(alpha, 0.9));
  Rates r;
  for (int t = 0; t < trials; ++t) {
    const auto before = series(rng, 150, rho);
    const auto during = series(rng, 150, rho);
    r.exceedance += deviates(exact, before, during);
    r.blocks += deviates(blocks, before, during);
  }
  return r;
}

TEST(BaselineDecisionTest, IndependentSamplesKeepBothTestsNearAlpha) {
  const int trials = 200;
  const auto r = falseAlarms(0.0, trials, 0.05);
  std::cout << "independent samples, alpha 0.05: exceedance " << r.exceedance << "/" << trials
            << ", blocks " << r.blocks << "/" << trials << "\n";
  // alpha plus three binomial standard deviations of 200 trials: 0.05 + 0.046.
  const double bound = trials * (0.05 + 3 * std::sqrt(0.05 * 0.95 / trials));
  EXPECT_LE(r.exceedance, bound);
  EXPECT_LE(r.blocks, bound);
}

TEST(BaselineDecisionTest, AutocorrelatedSamplesBreakTheCountTestNotTheBlockTest) {
  // Slow spells of about ten samples: the exceedances come in clusters, the count test's law
  // (independent samples) no longer holds and it raises false alarms several times more often
  // than alpha (61 of 200 at alpha 0.05); the block bootstrap keeps the clusters together and
  // raises less than half as many (26 of 200: still above alpha, as spells of ten samples
  // against blocks of 13 leave some dependence between blocks; a minimum effect covers it).
  const int trials = 200;
  const auto r = falseAlarms(0.9, trials, 0.05);
  std::cout << "AR(1) rho 0.9, alpha 0.05: exceedance " << r.exceedance << "/" << trials
            << ", blocks " << r.blocks << "/" << trials << "\n";
  EXPECT_GT(r.exceedance, trials * 0.05 * 3);
  EXPECT_LT(r.blocks, r.exceedance / 2);
  EXPECT_LE(r.blocks, trials * 0.05 * 3);
}

TEST(BaselineDecisionTest, TheMinimumEffectIgnoresASmallDetectableRise) {
  std::mt19937_64 rng(5);
  const auto before = series(rng, 600, 0.0);
  const auto during = series(rng, 600, 0.0, 1.12);  // p90 12% higher, on many samples
  EXPECT_TRUE(deviates(specWith(tolerance(0.05, 0.9)), before, during)) << "detectable";
  BaselineTolerance withFloor = tolerance(0.05, 0.9);
  withFloor.minRelative = 0.25;
  EXPECT_FALSE(deviates(specWith(withFloor), before, during)) << "but smaller than what matters";
  const auto slow = series(rng, 600, 0.0, 1.6);
  EXPECT_TRUE(deviates(specWith(withFloor), before, slow)) << "a 60% rise is more than 25%";

  BaselineTolerance absolute = tolerance(0.05, 0.9);
  absolute.minAbsolute = std::chrono::milliseconds(1);
  EXPECT_FALSE(deviates(specWith(absolute), before, slow)) << "0.8 ms more is under 1 ms";
  absolute.minAbsolute = std::chrono::microseconds(200);
  EXPECT_TRUE(deviates(specWith(absolute), before, slow));

  // The count test takes the minimum effect as a raised threshold.
  withFloor.test = BaselineTest::kExceedance;
  EXPECT_FALSE(deviates(specWith(withFloor), before, during));
  EXPECT_TRUE(deviates(specWith(withFloor), before, slow));
}

TEST(BaselineDecisionTest, TheMinimumEffectIsComparedWithTheEstimateOrTheBound) {
  // A true +20% on 300 samples a phase, a minimum effect of 10%: the rise is significant and
  // measured above 10% (by estimate: deviated), but the interval's lower bound is not above 10%
  // (by bound: no deviation). A harmless phase deviates by neither.
  std::mt19937_64 rng(21);
  const auto ref = samplesOf(series(rng, 300, 0.0), Phase::kBefore);
  const auto slower = samplesOf(series(rng, 300, 0.0, 1.2), Phase::kDuring);
  BaselineTolerance t = tolerance(0.05, 0.9);
  t.minRelative = 0.1;
  const auto byEstimate =
      judgePhase(specWith(t), Phase::kDuring, slower, std::span<const ProbeSample>(ref));
  t.minEffectBy = MinEffectBy::kBound;
  const auto byBound =
      judgePhase(specWith(t), Phase::kDuring, slower, std::span<const ProbeSample>(ref));
  ASSERT_TRUE(byEstimate.baseline && byBound.baseline);
  const auto& e = *byEstimate.baseline;
  std::cout << "true +20%: effect " << e.effect << ", lower bound " << e.effectLow << "\n";
  EXPECT_GE(e.effect, 0.1);
  EXPECT_GT(e.effectLow, 0);
  EXPECT_LE(e.effectLow, 0.1);
  EXPECT_TRUE(e.deviated);
  ASSERT_EQ(byEstimate.reasons.size(), 1u);
  EXPECT_NE(byEstimate.reasons[0].find("at least the minimum effect of +10%"), std::string::npos)
      << byEstimate.reasons[0];
  EXPECT_FALSE(byBound.baseline->deviated);
  EXPECT_DOUBLE_EQ(byBound.baseline->effect, e.effect) << "the same samples, the same effect";

  // The count test: by estimate the threshold is not raised, and the phase's own quantile must
  // be 10% above it; by bound the threshold is raised by 10%.
  t.test = BaselineTest::kExceedance;
  const auto countBound =
      judgePhase(specWith(t), Phase::kDuring, slower, std::span<const ProbeSample>(ref));
  t.minEffectBy = MinEffectBy::kEstimate;
  const auto countEstimate =
      judgePhase(specWith(t), Phase::kDuring, slower, std::span<const ProbeSample>(ref));
  EXPECT_LT(countBound.baseline->exceedances, countEstimate.baseline->exceedances);
  EXPECT_TRUE(countEstimate.baseline->deviated);

  // 20 harmless phases: by estimate, as rarely deviated as without a minimum effect or less.
  int plain = 0;
  int floor = 0;
  for (int i = 0; i < 20; ++i) {
    const auto a = samplesOf(series(rng, 300, 0.0), Phase::kBefore);
    const auto b = samplesOf(series(rng, 300, 0.0), Phase::kDuring);
    BaselineTolerance none = tolerance(0.05, 0.9);
    plain += judgePhase(specWith(none), Phase::kDuring, b, std::span<const ProbeSample>(a))
                 .baseline->deviated;
    floor += judgePhase(specWith(t), Phase::kDuring, b, std::span<const ProbeSample>(a))
                 .baseline->deviated;
  }
  EXPECT_LE(floor, plain);
  EXPECT_LE(floor, 3);
}

TEST(BaselineDecisionTest, TheVerdictRecordsTheEffectItsIntervalAndSaysWhy) {
  std::mt19937_64 rng(9);
  BaselineTolerance t = tolerance(0.05, 0.9);
  t.minRelative = 0.1;
  const auto ref = samplesOf(series(rng, 150, 0.0), Phase::kBefore);
  const auto v =
      judgePhase(specWith(t), Phase::kAfter, samplesOf(series(rng, 150, 0.0, 1.5), Phase::kAfter),
                 std::span<const ProbeSample>(ref));
  ASSERT_TRUE(v.baseline.has_value());
  const auto& b = *v.baseline;
  EXPECT_TRUE(b.deviated);
  EXPECT_FALSE(v.held);
  EXPECT_EQ(b.test, BaselineTest::kBlocks);
  EXPECT_EQ(b.blockLength, 13u);
  EXPECT_EQ(b.resamples, 2000u);
  EXPECT_NEAR(b.effect, 0.5, 0.2);
  EXPECT_GT(b.effectLow, 0.1);
  EXPECT_LT(b.effectLow, b.effect);
  EXPECT_GT(b.effectHigh, b.effect);
  EXPECT_EQ(b.difference, b.phaseQuantile - b.threshold);
  ASSERT_EQ(v.reasons.size(), 1u);
  // "p90 1.9ms against the baseline's p90 of 1.3ms: +46% (90% interval +29% to +64%), at
  // least the minimum effect of +10%"
  EXPECT_EQ(v.reasons[0].rfind("p90 " + formatLatency(b.phaseQuantile) +
                                   " against the baseline's p90 of " + formatLatency(b.threshold),
                               0),
            0u)
      << v.reasons[0];
  EXPECT_NE(v.reasons[0].find("90% interval"), std::string::npos) << v.reasons[0];
  EXPECT_NE(v.reasons[0].find("minimum effect of +10%"), std::string::npos) << v.reasons[0];
}

TEST(BaselineDecisionTest, AControlIsNamedAndAnEmptyOneFails) {
  BaselineTolerance t = tolerance(0.05, 0.9);
  t.control = "web-replica";
  std::mt19937_64 rng(3);
  const auto control = samplesOf(series(rng, 150, 0.0), Phase::kDuring);
  const auto v =
      judgePhase(specWith(t), Phase::kDuring, samplesOf(series(rng, 150, 0.0, 2.0), Phase::kDuring),
                 std::span<const ProbeSample>(control));
  ASSERT_FALSE(v.held);
  EXPECT_NE(v.reasons.at(0).find("the control web-replica's p90 in the same phase"),
            std::string::npos)
      << v.reasons[0];
  std::vector<ProbeSample> none;
  const auto empty =
      judgePhase(specWith(t), Phase::kDuring, control, std::span<const ProbeSample>(none));
  EXPECT_EQ(empty.reasons.at(0), "the control web-replica has no samples in this phase");
}

// ---- recorded runs (tests/data/verdict/README.md) --------------------------------------

std::vector<testing::RecordedRun> recorded(const std::string& name) {
  return testing::loadRecording(std::string(CHAOSD_SOURCE_DIR) + "/tests/data/verdict/" + name +
                                ".json");
}

using testing::deviatedRuns;

// The tolerance: {alpha: 0.05, quantile: 0.9}, with the exact count test.
BaselineTolerance countTest() {
  BaselineTolerance t = tolerance(0.05, 0.9);
  t.test = BaselineTest::kExceedance;
  return t;
}

BaselineTolerance blocks(double minEffect, std::string control = "",
                         MinEffectBy by = MinEffectBy::kEstimate) {
  BaselineTolerance t = tolerance(0.05, 0.9);
  t.minRelative = minEffect;
  t.minEffectBy = by;
  t.control = std::move(control);
  return t;
}

TEST(BaselineDecisionRecordedTest, AHarmlessFaultUnderLoadRaisesFalseAlarmsUntilAControlIsUsed) {
  // The problem reproduced: latency drifting with the machine's load makes the count test call
  // a fault that cannot touch the service deviant far more often than alpha allows.
  const auto runs = recorded("harmless-load");
  ASSERT_EQ(runs.size(), 20u);
  const int count = deviatedRuns(runs, countTest());
  const int block = deviatedRuns(runs, blocks(0));
  const int withFloor = deviatedRuns(runs, blocks(0.1));
  const int byEstimate = deviatedRuns(runs, blocks(0.1, "control"));
  const int control = deviatedRuns(runs, blocks(0.1, "control", MinEffectBy::kBound));
  std::cout << "harmless fault under load, runs deviated of 20: count test " << count << ", blocks "
            << block << ", blocks + minEffect 10% " << withFloor
            << ", blocks + minEffect 10% + control " << byEstimate << " (by estimate), " << control
            << " (by bound)\n";
  // At alpha 0.05 per phase, at most about 10% of runs (two phases) should deviate: 2 of 20,
  // 3 with the binomial margin (P(X >= 4) = 0.13 for Binomial(20, 0.1)).
  EXPECT_GE(count, 6);
  EXPECT_LE(control, 3);
}

TEST(BaselineDecisionRecordedTest, AHarmlessFaultOnAnIdleMachineStaysWithinTheBound) {
  const auto runs = recorded("harmless-idle");
  ASSERT_EQ(runs.size(), 20u);
  const int count = deviatedRuns(runs, countTest());
  const int withFloor = deviatedRuns(runs, blocks(0.1));
  std::cout << "harmless fault, idle, runs deviated of 20: count test " << count
            << ", blocks + minEffect 10% " << withFloor << "\n";
  EXPECT_LE(withFloor, 3);
}

TEST(BaselineDecisionRecordedTest, OnceProbesAreStaggeredAControlReplicaCancelsTheDrift) {
  // Idle machine, two replicas, chaosd with staggered probes. Against the before phase the
  // machine's drift still raises false alarms (count test: 10 of 20); against the control
  // replica's samples of the same phase it does not, and the 350 us delay on one replica is
  // still found (tests/bench/verdict_table prints every rule on every recording).
  const auto harmless = recorded("pair-staggered-idle");
  const auto delayed = recorded("delay-staggered-idle");
  const int before = deviatedRuns(harmless, countTest());
  const int control = deviatedRuns(harmless, blocks(0, "control"));
  const int found = deviatedRuns(delayed, blocks(0, "control"));
  std::cout << "staggered replicas, idle, of 20: harmless, count test against before " << before
            << ", blocks against the control " << control << "; delayed, found " << found << "\n";
  EXPECT_GE(before, 6);
  EXPECT_LE(control, 3);
  EXPECT_GE(found, 15);
}

TEST(BaselineDecisionRecordedTest,
     SevenSecondWindowsAControlAndATenPercentMinimumEffectKeepBothPromises) {
  // Issue 24's acceptance on the recordings made for it (tests/data/verdict/recipe: two alike
  // replicas probed every 10 ms, 7 s windows, about 700 samples a phase, idle machine, 20 runs
  // each interleaved): a fault that cannot touch the service deviates in at most 3 of 20 runs,
  // and a 200 us delay on web's accept4 (its during-phase p90 rose by +10% to +53%, median +28%)
  // in at least 19 of 20. Without the minimum effect, replica differences of a few percent are
  // significant at 700 samples (5 of 20 harmless runs deviate); compared by bound, the delay's
  // smaller rises are missed.
  const auto harmless = recorded("pair-7s-idle");
  const auto delayed = recorded("delay-7s-idle");
  ASSERT_EQ(harmless.size(), 20u);
  ASSERT_EQ(delayed.size(), 20u);
  const int falseAlarms = deviatedRuns(harmless, blocks(0.1, "control"));
  const int found = deviatedRuns(delayed, blocks(0.1, "control"));
  const int noFloor = deviatedRuns(harmless, blocks(0, "control"));
  const int byBound = deviatedRuns(delayed, blocks(0.1, "control", MinEffectBy::kBound));
  std::cout << "7 s windows, control, minEffect 10% by estimate, of 20: harmless " << falseAlarms
            << ", delayed " << found << "; without the minimum effect, harmless " << noFloor
            << "; by bound, delayed " << byBound << "\n";
  EXPECT_LE(falseAlarms, 3);
  EXPECT_GE(found, 19);
  EXPECT_GT(noFloor, 3) << "the problem the minimum effect solves";
  EXPECT_LT(byBound, found);
}

TEST(BaselineDecisionRecordedTest,
     ThreeSecondsOfSamplesCannotFindATwentyPercentRiseNineteenTimesIn20) {
  // Why no valid rule reaches issue 24's 19 of 20 on these recordings (docs/verdicts.md, "Can a
  // better test reach 19 of 20?"): between two alike replicas, the log of one p90 of 150 samples
  // over the other's varies with a standard deviation of about 0.12. A one-sided test at alpha
  // 0.05 that even knew that spread exactly would find a true +20% with probability
  // Phi(log 1.2 / sd - 1.645): about 45%, not 95%. 95% needs sd <= log 1.2 / 3.29, about 4.7
  // times the samples (some 700 a phase: 14 s at one sample every 20 ms).
  const auto harmless = recorded("pair-staggered-idle");
  const auto delayed = recorded("delay-staggered-idle");
  ASSERT_EQ(harmless.size(), 20u);
  ASSERT_EQ(delayed.size(), 20u);
  auto p90 = [](const std::vector<double>& ns) { return *stats::percentile(ns, 90); };
  std::vector<double> logs;
  for (const auto& run : harmless) {
    for (const std::string phase : {"before", "during", "after"}) {
      logs.push_back(std::log(p90(run.at("web").at(phase)) / p90(run.at("control").at(phase))));
    }
  }
  double mean = 0;
  for (const double x : logs) mean += x;
  mean /= static_cast<double>(logs.size());
  double var = 0;
  for (const double x : logs) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / static_cast<double>(logs.size() - 1));
  const double power = 0.5 * std::erfc(-(std::log(1.2) / sd - 1.645) / std::sqrt(2.0));
  const double samplesFor95 = 150 * std::pow(sd * 3.29 / std::log(1.2), 2);
  // The delay's own effect on the p90, run by run: in some runs the window's p90 barely rose.
  double smallest = 1e9;
  for (const auto& run : delayed) {
    smallest =
        std::min(smallest, p90(run.at("web").at("during")) / p90(run.at("control").at("during")));
  }
  std::cout << "alike replicas, 150 samples: sd of log(p90 ratio) " << sd
            << "; an oracle test finds +20% with probability " << power << "; 95% needs about "
            << samplesFor95 << " samples a phase; the delay's smallest during-phase p90 ratio "
            << smallest << "\n";
  EXPECT_GT(sd, 0.09);
  EXPECT_LT(sd, 0.16);
  EXPECT_LT(power, 0.7);
  EXPECT_GT(samplesFor95, 450);
  EXPECT_LT(smallest, 1.05);
}

}  // namespace
}  // namespace chaosd
