#include "reports/Reliability.h"

#include <algorithm>
#include <cmath>

namespace chaosd::report {

double seriesReliability(const std::vector<double>& replicas) {
  double r = 1;
  for (double ri : replicas) r *= ri;
  return r;
}

double parallelReliability(const std::vector<double>& replicas) {
  double allDown = 1;
  for (double ri : replicas) allDown *= 1 - ri;
  return 1 - allDown;
}

double kOfNReliability(int k, int n, double r) {
  if (k <= 0) return 1;
  if (k > n) return 0;
  double sum = 0;
  for (int i = k; i <= n; ++i) {
    // C(n,i) through lgamma keeps large fleets finite; exact enough for n in the thousands.
    const double logChoose = std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0);
    sum += std::exp(logChoose) * std::pow(r, i) * std::pow(1 - r, n - i);
  }
  return std::clamp(sum, 0.0, 1.0);
}

double kOfNReliability(int k, const std::vector<double>& replicas) {
  const int n = static_cast<int>(replicas.size());
  if (k <= 0) return 1;
  if (k > n) return 0;
  // up[j]: the probability that exactly j of the replicas seen so far are up.
  std::vector<double> up(static_cast<size_t>(n) + 1, 0.0);
  up[0] = 1;
  for (int seen = 0; seen < n; ++seen) {
    const double ri = replicas[static_cast<size_t>(seen)];
    for (int j = seen + 1; j >= 1; --j) {
      up[static_cast<size_t>(j)] =
          up[static_cast<size_t>(j)] * (1 - ri) + up[static_cast<size_t>(j - 1)] * ri;
    }
    up[0] *= 1 - ri;
  }
  double sum = 0;
  for (int j = k; j <= n; ++j) sum += up[static_cast<size_t>(j)];
  return std::clamp(sum, 0.0, 1.0);
}

double systemReliability(const std::vector<TierModel>& tiers) {
  double r = 1;
  for (const auto& t : tiers) r *= kOfNReliability(t.k, t.replicas);
  return r;
}

std::optional<Interval> wilsonInterval(double passed, double count) {
  if (count <= 0) return std::nullopt;
  constexpr double z = 1.96;
  const double p = std::clamp(passed / count, 0.0, 1.0);
  const double denom = 1 + z * z / count;
  const double centre = (p + z * z / (2 * count)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denom;
  return Interval{std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

}  // namespace chaosd::report
