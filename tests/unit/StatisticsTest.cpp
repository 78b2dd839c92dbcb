#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>
#include <vector>

#include "chaosd/engine/probes/Statistics.h"
#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {
namespace {

using stats::betaBinomialUpperTail;
using stats::binomialUpperTail;
using stats::exceedanceUpperTail;
using stats::nearestRank;
using stats::percentile;

// P(X >= k), X ~ Binomial(n, p), by the textbook sum in long double: the reference.
long double naiveBinomialTail(int n, int k, long double p) {
  long double total = 0;
  for (int j = k; j <= n; ++j) {
    long double choose = 1;
    for (int i = 1; i <= j; ++i) choose = choose * (n - j + i) / i;
    total += choose * std::pow(p, j) * std::pow(1 - p, n - j);
  }
  return total;
}

long double chooseLd(int n, int k) {
  if (k < 0 || k > n) return 0;
  long double c = 1;
  for (int i = 1; i <= k; ++i) c = c * (n - k + i) / i;
  return c;
}

// P(K >= k) counted from arrangements: the m baseline and n phase values in a random order,
// the threshold the r-th smallest baseline value; K phase values above it.
long double naiveExceedanceTail(int m, int r, int n, int k) {
  long double total = 0;
  for (int j = k; j <= n; ++j) {
    total += chooseLd(r - 1 + n - j, n - j) * chooseLd(m - r + j, j);
  }
  return total / chooseLd(m + n, n);
}

TEST(StatisticsTest, NearestRank) {
  EXPECT_EQ(nearestRank(20, 95), 19u);  // 0.95 * 20 is 19.000000000000004 in doubles
  EXPECT_EQ(nearestRank(10, 50), 5u);
  EXPECT_EQ(nearestRank(10, 51), 6u);
  EXPECT_EQ(nearestRank(1, 99), 1u);
  EXPECT_EQ(nearestRank(7, 0), 1u);
  EXPECT_EQ(nearestRank(7, 100), 7u);
  EXPECT_EQ(nearestRank(1000, 99.9), 999u);
  EXPECT_EQ(nearestRank(3, 99.9), 3u);
  EXPECT_EQ(nearestRank(100, 95), 95u);
}

TEST(StatisticsTest, PercentileIsAnObservedValue) {
  // The worked example of the nearest-rank method.
  const std::vector<double> v = {50, 15, 40, 35, 20};
  EXPECT_EQ(percentile(v, 5), 15);
  EXPECT_EQ(percentile(v, 30), 20);
  EXPECT_EQ(percentile(v, 40), 20);
  EXPECT_EQ(percentile(v, 50), 35);
  EXPECT_EQ(percentile(v, 100), 50);
  EXPECT_FALSE(percentile({}, 50).has_value());
}

TEST(StatisticsTest, BinomialTailMatchesNaiveSum) {
  for (int n : {1, 2, 5, 20, 60, 150}) {
    for (double p : {0.001, 0.01, 0.05, 0.3, 0.5, 0.9, 0.999}) {
      for (int k = 0; k <= n; ++k) {
        const long double want = naiveBinomialTail(n, k, p);
        const double got = binomialUpperTail(n, k, p);
        EXPECT_NEAR(got, static_cast<double>(want), 1e-12 + 1e-9 * static_cast<double>(want))
            << "n=" << n << " k=" << k << " p=" << p;
      }
    }
  }
}

TEST(StatisticsTest, BinomialTailKnownValuesAndEdges) {
  EXPECT_DOUBLE_EQ(binomialUpperTail(10, 3, 0.5), 968.0 / 1024.0);
  EXPECT_DOUBLE_EQ(binomialUpperTail(10, 10, 0.5), 1.0 / 1024.0);
  EXPECT_EQ(binomialUpperTail(10, 0, 0.3), 1.0);
  EXPECT_EQ(binomialUpperTail(10, 11, 0.3), 0.0);
  EXPECT_EQ(binomialUpperTail(10, 1, 0.0), 0.0);
  EXPECT_EQ(binomialUpperTail(10, 10, 1.0), 1.0);
}

TEST(StatisticsTest, BinomialTailIsStableForAMillionTrials) {
  // Binomial(1e6, 1e-5) is Poisson(10) to within about 1e-5 relative.
  long double poisson = 0;
  long double term = std::exp(-10.0L);
  for (int j = 0; j < 20; ++j) {
    poisson += term;
    term = term * 10 / (j + 1);
  }
  const double want = static_cast<double>(1 - poisson);  // P(X >= 20), about 3.45e-3
  EXPECT_NEAR(binomialUpperTail(1'000'000, 20, 1e-5), want, want * 1e-4);

  // Far tails stay finite, positive and ordered; the middle is near one half.
  const double mid = binomialUpperTail(1'000'000, 50'000, 0.05);
  EXPECT_GT(mid, 0.49);
  EXPECT_LT(mid, 0.51);
  double previous = 1;
  for (uint64_t k : {50'500u, 51'000u, 52'000u, 55'000u}) {
    const double tail = binomialUpperTail(1'000'000, k, 0.05);
    EXPECT_TRUE(std::isfinite(tail));
    EXPECT_GT(tail, 0) << k;
    EXPECT_LT(tail, previous) << k;
    previous = tail;
  }
  EXPECT_LT(previous, 1e-100);  // about 1e-111
  // About 1e-431: below the smallest double, so 0, as documented.
  EXPECT_EQ(binomialUpperTail(1'000'000, 60'000, 0.05), 0.0);
  // z = 1000 / sqrt(1e6 * 0.05 * 0.95) = 4.59: the normal tail is 2.2e-6.
  EXPECT_NEAR(std::log10(binomialUpperTail(1'000'000, 51'000, 0.05)), std::log10(2.2e-6), 0.15);
}

TEST(StatisticsTest, ExceedanceTailMatchesCountingArrangements) {
  for (int m : {1, 5, 20, 40}) {
    for (int r : {1, (m + 1) / 2, m}) {
      for (int n : {1, 7, 30}) {
        for (int k = 0; k <= n; ++k) {
          const long double want = naiveExceedanceTail(m, r, n, k);
          const double got = exceedanceUpperTail(m, r, n, k);
          EXPECT_NEAR(got, static_cast<double>(want), 1e-12 + 1e-9 * static_cast<double>(want))
              << "m=" << m << " r=" << r << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

TEST(StatisticsTest, BetaBinomialWithAUShapedPmf) {
  // a, b < 1: the pmf is U-shaped; compare with the closed form for n = 2.
  // P(X=2) = a(a+1) / ((a+b)(a+b+1)).
  const double a = 0.5;
  const double b = 0.5;
  EXPECT_NEAR(betaBinomialUpperTail(2, 2, a, b), a * (a + 1) / ((a + b) * (a + b + 1)), 1e-12);
}

TEST(StatisticsTest, ExceedanceTailTendsToBinomialForLargeBaselines) {
  // With a baseline of a million samples the threshold is as good as fixed.
  const double exact = exceedanceUpperTail(1'000'000, 950'000, 200, 18);
  const double binomial = binomialUpperTail(200, 18, 0.05);
  EXPECT_NEAR(exact, binomial, binomial * 0.02);
}

TEST(StatisticsTest, ExceedanceTailMatchesSimulation) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> dist(1.0);
  const int m = 40;
  const int r = 38;
  const int n = 100;
  const int k = 12;
  const int trials = 20000;
  int hits = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> base(m);
    for (auto& x : base) x = dist(rng);
    std::nth_element(base.begin(), base.begin() + (r - 1), base.end());
    const double threshold = base[r - 1];
    int above = 0;
    for (int i = 0; i < n; ++i) above += dist(rng) > threshold;
    hits += above >= k;
  }
  const double p = exceedanceUpperTail(m, r, n, k);
  const double sd = std::sqrt(p * (1 - p) / trials);
  EXPECT_NEAR(static_cast<double>(hits) / trials, p, 4 * sd + 1e-3);
}

// ---- the false-alarm bound of the verdict's baseline mode ------------------------------

ProbeSpec baselineSpec(double alpha, double quantile) {
  ProbeSpec spec;
  spec.name = "sim";
  spec.timeout = std::chrono::seconds(10);
  spec.tolerance.successRate = Comparison{CompareOp::kGe, 0.0};
  BaselineTolerance b;
  b.alpha = alpha;
  b.quantile = quantile;
  spec.tolerance.baseline = b;
  return spec;
}

std::vector<ProbeSample> draw(std::mt19937_64& rng, std::lognormal_distribution<double>& dist,
                              int count, double scale = 1.0) {
  std::vector<ProbeSample> out(static_cast<size_t>(count));
  for (auto& s : out) {
    s.ok = true;
    s.duration = Duration(static_cast<Duration::rep>(dist(rng) * scale * 1e6));  // ms-ish
  }
  return out;
}

struct AlarmRates {
  double verdict;     // judgePhase's baseline mode
  double plainBinom;  // a binomial test at p0 = 1 - quantile, for comparison
};

AlarmRates falseAlarmRate(int baselineSize, int phaseSize, double alpha, double quantile,
                          double slowdown = 1.0) {
  std::mt19937_64 rng(20240611);
  std::lognormal_distribution<double> dist(1.0, 0.5);
  const ProbeSpec spec = baselineSpec(alpha, quantile);
  const int trials = 2000;
  int alarms = 0;
  int plainAlarms = 0;
  for (int t = 0; t < trials; ++t) {
    auto baseline = draw(rng, dist, baselineSize);
    auto phase = draw(rng, dist, phaseSize, slowdown);
    auto v = judgePhase(spec, Phase::kDuring, phase, std::span<const ProbeSample>(baseline));
    alarms += !v.held;
    plainAlarms +=
        binomialUpperTail(v.baseline->count, v.baseline->exceedances, 1 - quantile) < alpha;
  }
  return {static_cast<double>(alarms) / trials, static_cast<double>(plainAlarms) / trials};
}

TEST(StatisticsTest, BaselineModeKeepsFalseAlarmsWithinAlpha) {
  struct Case {
    int m, n;
    double alpha, quantile;
  };
  for (const Case& c : {Case{40, 240, 0.01, 0.95}, Case{200, 40, 0.01, 0.95},
                        Case{20, 1000, 0.05, 0.9}, Case{100, 100, 0.05, 0.99}}) {
    const auto rates = falseAlarmRate(c.m, c.n, c.alpha, c.quantile);
    const double rate = rates.verdict;
    std::cout << "baseline " << c.m << ", phase " << c.n << ", alpha " << c.alpha << ", quantile "
              << c.quantile << ": false alarms " << rate << " (plain binomial " << rates.plainBinom
              << ")\n";
    // alpha plus three binomial standard deviations of a rate estimated from 2000 trials.
    const double margin = 3 * std::sqrt(c.alpha * (1 - c.alpha) / 2000);
    EXPECT_LE(rate, c.alpha + margin) << "m=" << c.m << " n=" << c.n << " alpha=" << c.alpha;
  }
}

TEST(StatisticsTest, PlainBinomialOnAnEstimatedThresholdWouldOverAlarm) {
  // Why the verdict uses the exact exceedance distribution: treating a 40-sample baseline's
  // p95 as if it were the true p95 raises alarms many times more often than alpha.
  const auto rates = falseAlarmRate(40, 240, 0.01, 0.95);
  EXPECT_GT(rates.plainBinom, 0.05);
  EXPECT_LT(rates.verdict, rates.plainBinom);
}

TEST(StatisticsTest, BaselineModeDetectsARealSlowdown) {
  // Latencies twice as slow during the phase: 40% of the samples above the old p95 instead of
  // 5%; almost always detected even against a 40-sample baseline.
  EXPECT_GT(falseAlarmRate(40, 240, 0.01, 0.95, 2.0).verdict, 0.95);
  // A bigger baseline pins the threshold down and finds smaller changes (1.5x: 20% above).
  EXPECT_GT(falseAlarmRate(400, 240, 0.01, 0.95, 1.5).verdict, 0.9);
}

}  // namespace
}  // namespace chaosd
