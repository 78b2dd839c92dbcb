#pragma once

#include <cstddef>

// The statistics of an A/A calibration (`chaosctl calibrate`): the experiment run N times with
// no fault, a phase's statistical check deviating in k of them. k is Binomial(N, rate); the
// check is as good as it claims when the rate is not significantly above its alpha.
namespace chaosd {

struct RateInterval {
  double low = 0;
  double high = 1;
};

// The exact (Clopper-Pearson) two-sided interval for a binomial rate, k successes of n, at
// `confidence` (0.95: each tail holds at most 2.5%). n == 0 gives [0, 1]; k > n is clamped.
RateInterval clopperPearson(size_t k, size_t n, double confidence = 0.95);

// P(X >= k) for X ~ Binomial(n, p); 1 when k == 0, 0 when k > n.
double binomialTail(size_t n, double p, size_t k);

// The most false alarms n runs may show at a nominal rate `alpha` without being significantly
// above it at `level`: the largest k with P(Binomial(n, alpha) >= k) >= level (one below the
// smallest k whose tail is under `level`).
size_t allowedFalseAlarms(size_t n, double alpha, double level = 0.05);

}  // namespace chaosd
