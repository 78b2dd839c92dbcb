#include "chaosd/engine/probes/Calibration.h"

#include <algorithm>
#include <boost/math/special_functions/beta.hpp>

namespace chaosd {

RateInterval clopperPearson(size_t k, size_t n, double confidence) {
  if (n == 0) return {};
  k = std::min(k, n);
  const double tail = (1 - confidence) / 2;
  const auto dk = static_cast<double>(k);
  const auto dn = static_cast<double>(n);
  RateInterval out;
  // The bounds are quantiles of Beta(k, n - k + 1) and Beta(k + 1, n - k).
  if (k > 0) out.low = boost::math::ibeta_inv(dk, dn - dk + 1, tail);
  if (k < n) out.high = boost::math::ibeta_inv(dk + 1, dn - dk, 1 - tail);
  return out;
}

double binomialTail(size_t n, double p, size_t k) {
  if (k == 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  // P(X >= k) = I_p(k, n - k + 1), the regularised incomplete beta function.
  return boost::math::ibeta(static_cast<double>(k), static_cast<double>(n - k + 1), p);
}

size_t allowedFalseAlarms(size_t n, double alpha, double level) {
  size_t k = 0;
  while (k < n && binomialTail(n, alpha, k + 1) >= level) ++k;
  return k;
}

}  // namespace chaosd
