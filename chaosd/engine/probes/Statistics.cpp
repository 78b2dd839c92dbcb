#include "chaosd/engine/probes/Statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace chaosd::stats {

namespace {

// exp(46) is about 1e20: terms that far below the largest one cannot change a double sum.
constexpr double kNegligibleLog = 46.0;

double logChoose(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

double logBeta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

// Sums exp(logPmf(j)) for j from `first` to `last` inclusive, stepping by +1 or -1, in log
// space. For a unimodal pmf it stops once the terms fall away past the peak and become
// negligible, which keeps tails of huge n cheap.
template <typename LogPmf>
double sumTerms(const LogPmf& logPmf, int64_t first, int64_t last, bool unimodal) {
  const int64_t step = first <= last ? 1 : -1;
  double logMax = -std::numeric_limits<double>::infinity();
  double scaled = 0;  // sum of exp(term - logMax)
  double previous = logMax;
  for (int64_t j = first;; j += step) {
    const double term = logPmf(j);
    if (term > logMax) {
      scaled = scaled * std::exp(logMax - term) + 1;
      logMax = term;
    } else {
      scaled += std::exp(term - logMax);
    }
    if (unimodal && term < previous && term < logMax - kNegligibleLog) break;
    previous = term;
    if (j == last) break;
  }
  if (scaled == 0) return 0;
  return std::clamp(std::exp(logMax) * scaled, 0.0, 1.0);
}

// P(X >= k) of a unimodal distribution on 0..n with the given mean: the upper terms summed
// directly when they are the smaller side (where precision matters), else 1 - P(X <= k-1).
template <typename LogPmf>
double upperTail(const LogPmf& logPmf, uint64_t n, uint64_t k, double mean, bool unimodal) {
  if (k == 0) return 1;
  if (k > n) return 0;
  const auto sn = static_cast<int64_t>(n);
  const auto sk = static_cast<int64_t>(k);
  if (!unimodal || static_cast<double>(k) > mean) return sumTerms(logPmf, sk, sn, unimodal);
  return std::clamp(1 - sumTerms(logPmf, sk - 1, 0, unimodal), 0.0, 1.0);
}

}  // namespace

size_t nearestRank(size_t n, double p) {
  p = std::clamp(p, 0.0, 100.0);
  // The epsilon keeps p95 of 20 values at rank 19 although 0.95 * 20 is 19.000000000000004.
  const double exact = p / 100.0 * static_cast<double>(n);
  const auto rank = static_cast<size_t>(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
  return std::clamp<size_t>(rank, 1, n);
}

std::optional<double> percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::nullopt;
  const size_t index = nearestRank(values.size(), p) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double binomialUpperTail(uint64_t n, uint64_t k, double p) {
  if (k == 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  const double dn = static_cast<double>(n);
  const double logP = std::log(p);
  const double logQ = std::log1p(-p);
  auto logPmf = [&](int64_t j) {
    const double dj = static_cast<double>(j);
    return logChoose(dn, dj) + dj * logP + (dn - dj) * logQ;
  };
  return upperTail(logPmf, n, k, dn * p, true);
}

double betaBinomialUpperTail(uint64_t n, uint64_t k, double a, double b) {
  if (k == 0) return 1;
  if (k > n) return 0;
  const double dn = static_cast<double>(n);
  const double base = logBeta(a, b);
  auto logPmf = [&](int64_t j) {
    const double dj = static_cast<double>(j);
    return logChoose(dn, dj) + logBeta(dj + a, dn - dj + b) - base;
  };
  // With a or b below 1 the pmf can be U-shaped; then every term is summed.
  return upperTail(logPmf, n, k, dn * a / (a + b), a >= 1 && b >= 1);
}

size_t bootstrapBlockLength(size_t n) {
  return std::max<size_t>(1, static_cast<size_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
}

namespace {

// splitmix64: a small, fast generator whose output is the same on every platform and standard
// library (std::uniform_int_distribution's is not), so a report's interval can be recomputed.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }  // bias < n / 2^64

 private:
  uint64_t state_;
};

// One circular moving-block resample of `series` into `out` (same length).
void resampleBlocks(std::span<const double> series, size_t block, SplitMix& rng,
                    std::vector<double>& out) {
  const size_t n = series.size();
  out.clear();
  while (out.size() < n) {
    const size_t start = rng.below(n);
    for (size_t i = 0; i < block && out.size() < n; ++i) out.push_back(series[(start + i) % n]);
  }
}

double quantileOf(std::vector<double>& values, double q) {
  const size_t index = nearestRank(values.size(), q * 100) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double ratioOf(double phase, double reference) { return reference > 0 ? phase / reference : 1; }

}  // namespace

QuantileEffect bootstrapQuantileEffect(std::span<const double> reference,
                                       std::span<const double> phase, double quantile, double alpha,
                                       size_t resamples, uint64_t seed) {
  QuantileEffect e;
  if (reference.empty() || phase.empty()) return e;
  std::vector<double> a(reference.begin(), reference.end());
  std::vector<double> b(phase.begin(), phase.end());
  e.reference = quantileOf(a, quantile);
  e.phase = quantileOf(b, quantile);
  e.ratio = ratioOf(e.phase, e.reference);
  e.difference = e.phase - e.reference;
  e.ratioLow = e.ratioHigh = e.ratio;
  e.differenceLow = e.differenceHigh = e.difference;
  if (resamples == 0) return e;
  // One block length for both: the larger series' (the dependence is the service's, not the
  // series' length), at most each series' own length.
  e.blockLength = bootstrapBlockLength(std::max(reference.size(), phase.size()));
  e.resamples = resamples;
  SplitMix rng(seed);
  std::vector<double> ratios;
  std::vector<double> differences;
  ratios.reserve(resamples);
  differences.reserve(resamples);
  for (size_t i = 0; i < resamples; ++i) {
    resampleBlocks(reference, std::min(e.blockLength, reference.size()), rng, a);
    resampleBlocks(phase, std::min(e.blockLength, phase.size()), rng, b);
    const double qa = quantileOf(a, quantile);
    const double qb = quantileOf(b, quantile);
    ratios.push_back(ratioOf(qb, qa));
    differences.push_back(qb - qa);
  }
  const double low = std::clamp(alpha, 0.0, 0.5) * 100;
  e.ratioLow = *percentile(ratios, low);
  e.ratioHigh = *percentile(ratios, 100 - low);
  e.differenceLow = *percentile(differences, low);
  e.differenceHigh = *percentile(differences, 100 - low);
  return e;
}

double exceedanceUpperTail(uint64_t m, uint64_t r, uint64_t n, uint64_t k) {
  if (m == 0) return 1;  // no baseline, no evidence
  r = std::clamp<uint64_t>(r, 1, m);
  return betaBinomialUpperTail(n, k, static_cast<double>(m - r + 1), static_cast<double>(r));
}

}  // namespace chaosd::stats
