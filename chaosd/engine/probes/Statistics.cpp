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

double exceedanceUpperTail(uint64_t m, uint64_t r, uint64_t n, uint64_t k) {
  if (m == 0) return 1;  // no baseline, no evidence
  r = std::clamp<uint64_t>(r, 1, m);
  return betaBinomialUpperTail(n, k, static_cast<double>(m - r + 1), static_cast<double>(r));
}

}  // namespace chaosd::stats
