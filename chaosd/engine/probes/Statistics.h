#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

// The statistics the steady-state verdict is built on. Pure functions, no I/O.
namespace chaosd::stats {

// The 1-based nearest rank of the p-th percentile among n values: ceil(p/100 * n), at least
// 1 (so p0 is the minimum and p100 the maximum). n must be > 0; p is clamped to [0, 100].
size_t nearestRank(size_t n, double p);

// The p-th percentile by nearest rank: the smallest observed value such that at least p% of
// the values are <= it. Always an observed value, never an interpolation. The values need not
// be sorted. nullopt for no values.
std::optional<double> percentile(std::vector<double> values, double p);

// P(X >= k) for X ~ Binomial(n, p): the chance of k or more successes in n trials of
// probability p. Summed term by term in log space (lgamma), so it stays accurate for tails far
// below 1e-300 (returned as 0) and n up to 1e6 and beyond.
double binomialUpperTail(uint64_t n, uint64_t k, double p);

// P(X >= k) for X ~ BetaBinomial(n, a, b): a binomial whose success probability is itself
// drawn from Beta(a, b). a, b > 0.
double betaBinomialUpperTail(uint64_t n, uint64_t k, double a, double b);

// The exact false-alarm probability of the baseline test. A baseline of m samples sets the
// threshold at its r-th smallest value (1 <= r <= m); a phase of n samples then has k of them
// above it. If the phase is drawn from the same continuous distribution as the baseline, the
// count of exceedances is BetaBinomial(n, m - r + 1, r), whatever that distribution is; this
// returns P(count >= k). It accounts for the threshold being an estimate: with a plain
// binomial at p0 = 1 - r/m, a 40-sample baseline would raise false alarms several times more
// often than alpha. As m grows it tends to binomialUpperTail(n, k, 1 - r/m).
double exceedanceUpperTail(uint64_t m, uint64_t r, uint64_t n, uint64_t k);

// The effect of a phase on a latency quantile against a reference, with a confidence interval
// that respects autocorrelation: the phase's and the reference's nearest-rank quantiles, their
// ratio and difference, and the percentile interval of each from a moving-block bootstrap.
struct QuantileEffect {
  double reference = 0;  // the reference's quantile
  double phase = 0;      // the phase's quantile
  double ratio = 1;      // phase / reference (1 when the reference is 0)
  double ratioLow = 1;   // the bootstrap's alpha quantile of the ratio
  double ratioHigh = 1;  // its 1 - alpha quantile
  double difference = 0;
  double differenceLow = 0;
  double differenceHigh = 0;
  size_t blockLength = 0;
  size_t resamples = 0;
};

// Samples per bootstrap block for a series of n: ceil(sqrt(n)). Latency samples taken every
// few milliseconds are autocorrelated (a stall, a burst of load, a garbage collection slows
// several in a row); resampling single samples would treat them as independent and make the
// interval too narrow. Blocks of consecutive samples keep that dependence within a block; a
// length growing like sqrt(n) keeps enough blocks (about sqrt(n)) to vary.
size_t bootstrapBlockLength(size_t n);

// The moving-block bootstrap (circular, blocks of bootstrapBlockLength) of the `quantile`
// (0..1) of `phase` against that of `reference`, each resampled independently, `resamples`
// times, with a deterministic generator seeded by `seed` (the same data give the same interval).
// The interval is [alpha, 1 - alpha] of the resampled values: its low end is a one-sided
// 1 - alpha lower confidence bound. Both series must be non-empty and in the order taken.
QuantileEffect bootstrapQuantileEffect(std::span<const double> reference,
                                       std::span<const double> phase, double quantile, double alpha,
                                       size_t resamples, uint64_t seed);

}  // namespace chaosd::stats
