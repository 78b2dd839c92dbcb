#pragma once

// Candidate decision rules for the statistical mode that chaosd does NOT use, kept so that
// tests/bench/verdict_table can print them next to the product's rules on every recording
// (docs/verdicts.md, "Can a better test reach 19 of 20?"). Bench code: nothing in chaosd
// includes it. Each rule judges a phase (in the order taken) against a reference at one-sided
// level alpha on the `quantile`, with 2000 resamples and a fixed seed.
//
// The variations, each chosen before looking at the delay recordings:
//  - the estimator: the nearest-rank order statistic (as chaosd) or Harrell-Davis (a
//    Beta-weighted mean of all order statistics, lower variance);
//  - the resampling: each series on its own (as chaosd) or paired in time (the same block
//    starts in both: staggered probes sample at nearly the same instants, so a drift both see
//    moves both resamples alike);
//  - the block length: ceil(sqrt(n)) (as chaosd) or 5;
//  - the interval: percentile (as chaosd) or BCa (bias and acceleration from a delete-a-block
//    jackknife);
//  - a permutation test instead of an interval: labels swapped between the two series in whole
//    time-aligned blocks (exact when the two series' blocks are exchangeable);
//  - the statistic: the log ratio of one quantile, or its mean over several nearby ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "chaosd/engine/probes/Statistics.h"
#include "tests/support/RecordedVerdicts.h"

namespace chaosd::testing::candidates {

enum class Estimator { kNearestRank, kHarrellDavis };

struct Rule {
  std::string name;
  Estimator estimator = Estimator::kNearestRank;
  bool paired = false;            // the same block starts in both series (equal lengths only)
  size_t block = 0;               // samples per block; 0: ceil(sqrt(n))
  bool bca = false;               // BCa instead of the percentile interval
  bool permutation = false;       // block label swap test instead of an interval
  std::vector<double> quantiles;  // empty: the asked quantile alone
};

namespace detail {

class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

// The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz).
inline double betaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  const double qab = a + b;
  double c = 1;
  double d = 1 - qab * x / (a + 1);
  d = 1 / (std::fabs(d) < kTiny ? kTiny : d);
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    for (const double aa : {m * (b - m) * x / ((a - 1 + m2) * (a + m2)),
                            -(a + m) * (qab + m) * x / ((a + m2) * (a + 1 + m2))}) {
      d = 1 + aa * d;
      d = 1 / (std::fabs(d) < kTiny ? kTiny : d);
      c = 1 + aa / c;
      if (std::fabs(c) < kTiny) c = kTiny;
      h *= d * c;
    }
    if (std::fabs(d * c - 1) < 1e-15) break;
  }
  return h;
}

inline double incompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(a, b, x) / a;
  return 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

// Harrell-Davis weights of the sorted sample for n values and quantile q.
inline const std::vector<double>& harrellDavisWeights(size_t n, double q) {
  static std::map<std::pair<size_t, long>, std::vector<double>> cache;
  const auto key = std::make_pair(n, std::lround(q * 1e6));
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const double a = static_cast<double>(n + 1) * q;
  const double b = static_cast<double>(n + 1) * (1 - q);
  std::vector<double> w(n);
  double previous = 0;
  for (size_t i = 1; i <= n; ++i) {
    const double c = incompleteBeta(a, b, static_cast<double>(i) / static_cast<double>(n));
    w[i - 1] = c - previous;
    previous = c;
  }
  return cache[key] = std::move(w);
}

inline double estimate(std::vector<double> v, double q, Estimator e) {
  if (e == Estimator::kNearestRank) {
    const size_t i = stats::nearestRank(v.size(), q * 100) - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i];
  }
  std::sort(v.begin(), v.end());
  const auto& w = harrellDavisWeights(v.size(), q);
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += w[i] * v[i];
  return s;
}

// The statistic: the log of the phase's quantile over the reference's (mean over `quantiles`).
inline double statistic(const std::vector<double>& reference, const std::vector<double>& phase,
                        const Rule& rule, double quantile) {
  const std::vector<double> qs =
      rule.quantiles.empty() ? std::vector<double>{quantile} : rule.quantiles;
  double s = 0;
  for (const double q : qs) {
    s += std::log(estimate(phase, q, rule.estimator) / estimate(reference, q, rule.estimator));
  }
  return s / static_cast<double>(qs.size());
}

inline double normalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

inline double normalQuantile(double p) {
  double lo = -10;
  double hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    (normalCdf(mid) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

inline void resample(const std::vector<double>& s, size_t block, const std::vector<size_t>& starts,
                     std::vector<double>& out) {
  out.clear();
  for (size_t k = 0; out.size() < s.size(); ++k) {
    for (size_t i = 0; i < block && out.size() < s.size(); ++i) {
      out.push_back(s[(starts[k] + i) % s.size()]);
    }
  }
}

// BCa's acceleration from a delete-a-block jackknife (blocks deleted jointly when paired).
inline double acceleration(const std::vector<double>& reference, const std::vector<double>& phase,
                           const Rule& rule, double quantile, size_t block, bool paired) {
  std::vector<double> values;
  auto jackknife = [&](bool fromReference, bool both) {
    const size_t n = fromReference ? reference.size() : phase.size();
    for (size_t start = 0; start < n; start += block) {
      auto keep = [&](const std::vector<double>& s, bool cut) {
        std::vector<double> out;
        for (size_t i = 0; i < s.size(); ++i) {
          if (!(cut && i >= start && i < start + block)) out.push_back(s[i]);
        }
        return out;
      };
      values.push_back(statistic(keep(reference, fromReference || both),
                                 keep(phase, !fromReference || both), rule, quantile));
    }
  };
  if (paired) {
    jackknife(true, true);
  } else {
    jackknife(true, false);
    jackknife(false, false);
  }
  double mean = 0;
  for (const double x : values) mean += x;
  mean /= static_cast<double>(values.size());
  double s2 = 0;
  double s3 = 0;
  for (const double x : values) {
    s2 += (mean - x) * (mean - x);
    s3 += (mean - x) * (mean - x) * (mean - x);
  }
  return s2 > 0 ? s3 / (6 * std::pow(s2, 1.5)) : 0;
}

}  // namespace detail

// Whether `phase` deviates from `reference` (latencies in the order taken) under `rule`.
inline bool deviates(const std::vector<double>& reference, const std::vector<double>& phase,
                     const Rule& rule, double quantile, double alpha, uint64_t seed) {
  using namespace detail;
  constexpr int kResamples = 2000;
  const double observed = statistic(reference, phase, rule, quantile);
  SplitMix rng(seed);
  const size_t n = std::max(reference.size(), phase.size());
  const size_t block = rule.block ? rule.block : stats::bootstrapBlockLength(n);
  const bool paired = rule.paired && reference.size() == phase.size();
  if (rule.permutation) {
    const size_t m = std::min(reference.size(), phase.size());
    int atLeast = 0;
    for (int r = 0; r < kResamples; ++r) {
      std::vector<double> x = reference;
      std::vector<double> y = phase;
      for (size_t start = 0; start < m; start += block) {
        if ((rng.next() & 1) == 0) continue;
        for (size_t i = start; i < std::min(m, start + block); ++i) std::swap(x[i], y[i]);
      }
      atLeast += statistic(x, y, rule, quantile) >= observed - 1e-12;
    }
    return (1.0 + atLeast) / (kResamples + 1) < alpha;
  }
  std::vector<double> resampled;
  std::vector<double> a;
  std::vector<double> b;
  std::vector<size_t> startsA;
  std::vector<size_t> startsB;
  const size_t blockA = std::min(block, reference.size());
  const size_t blockB = std::min(block, phase.size());
  for (int r = 0; r < kResamples; ++r) {
    startsA.clear();
    startsB.clear();
    for (size_t k = 0; k * blockA < reference.size(); ++k)
      startsA.push_back(rng.below(reference.size()));
    if (paired) {
      startsB = startsA;
    } else {
      for (size_t k = 0; k * blockB < phase.size(); ++k) startsB.push_back(rng.below(phase.size()));
    }
    resample(reference, blockA, startsA, a);
    resample(phase, blockB, startsB, b);
    resampled.push_back(statistic(a, b, rule, quantile));
  }
  std::sort(resampled.begin(), resampled.end());
  double level = alpha;
  if (rule.bca) {
    const auto below = std::lower_bound(resampled.begin(), resampled.end(), observed);
    const auto notAbove = std::upper_bound(resampled.begin(), resampled.end(), observed);
    double share = (static_cast<double>(below - resampled.begin()) +
                    0.5 * static_cast<double>(notAbove - below)) /
                   kResamples;
    share = std::clamp(share, 0.5 / kResamples, 1 - 0.5 / kResamples);
    const double z0 = normalQuantile(share);
    const double acc = acceleration(reference, phase, rule, quantile, block, paired);
    const double za = normalQuantile(alpha);
    level = normalCdf(z0 + (z0 + za) / (1 - acc * (z0 + za)));
  }
  const auto index =
      std::clamp<long>(std::lround(std::ceil(level * kResamples)) - 1, 0, kResamples - 1);
  return resampled[static_cast<size_t>(index)] > 0;
}

// The candidates of docs/verdicts.md's table.
inline std::vector<Rule> rules() {
  auto rule = [](const char* name, Estimator e, bool paired, size_t block, bool bca,
                 bool permutation, std::vector<double> quantiles) {
    Rule r;
    r.name = name;
    r.estimator = e;
    r.paired = paired;
    r.block = block;
    r.bca = bca;
    r.permutation = permutation;
    r.quantiles = std::move(quantiles);
    return r;
  };
  const auto nr = Estimator::kNearestRank;
  const auto hd = Estimator::kHarrellDavis;
  return {rule("nr", nr, false, 0, false, false, {}),
          rule("hd", hd, false, 0, false, false, {}),
          rule("nr-paired", nr, true, 0, false, false, {}),
          rule("hd-paired", hd, true, 0, false, false, {}),
          rule("hd-L5", hd, false, 5, false, false, {}),
          rule("hd-bca", hd, false, 0, true, false, {}),
          rule("nr-swap", nr, true, 13, false, true, {}),
          rule("hd-swap", hd, true, 13, false, true, {}),
          rule("nr-p80-95", nr, false, 0, false, false, {0.8, 0.85, 0.9, 0.95})};
}

// Latencies in microseconds with a failed sample at the recordings' 2 s timeout, as
// deviatedRuns judges them.
inline std::vector<double> microseconds(const std::vector<double>& ns) {
  std::vector<double> out;
  for (const double x : ns) out.push_back(x < 0 ? 2e6 : x / 1000);
  return out;
}

// The tables of docs/verdicts.md's candidates, at alpha 0.05 on the p90: (1) runs of 20 whose
// during or after phase deviated, against the before phase and against the control; (2) the
// extra null phases with a control (web against control and control against web, every phase
// of the harmless recordings and the before phase of the delay ones); (3) power on the harmless
// pair recordings with web's samples scaled by 1.2 (a true +20% on every quantile) or shifted by
// 350 us, every phase against the control's.
// `only`: the recordings of table (1) to judge (all when empty), and tables (2) and (3) only when
// it names "extra" (for running the tables in parallel).
inline void printCandidateTables(const std::string& dir, const std::string& only = "") {
  auto wanted = [&](const std::string& name) {
    return only.empty() || ("," + only + ",").find("," + name + ",") != std::string::npos;
  };
  const auto all = rules();
  const double alpha = 0.05;
  const double q = 0.9;
  auto header = [&](const char* first) {
    std::printf("\n| %s |", first);
    for (const auto& r : all) std::printf(" %s |", r.name.c_str());
    std::printf("\n|---|");
    for (size_t i = 0; i < all.size(); ++i) std::printf("---|");
    std::printf("\n");
  };
  auto load = [&](const std::string& name) { return loadRecording(dir + "/" + name + ".json"); };
  header("recording (reference)");
  for (const char* name : {"harmless-idle", "delay-single-idle", "harmless-10s-idle",
                           "delay-10s-idle", "harmless-load", "delay-load", "pair-idle",
                           "delay-idle", "pair-staggered-idle", "delay-staggered-idle"}) {
    if (!wanted(name)) continue;
    const auto runs = load(name);
    for (const bool control : {false, true}) {
      if (runs.empty() || (control && !runs[0].contains("control"))) continue;
      std::printf("| %s (%s) |", name, control ? "control" : "before");
      for (const auto& r : all) {
        int deviated = 0;
        for (const auto& run : runs) {
          bool any = false;
          for (const std::string phase : {"during", "after"}) {
            const auto& ref = control ? run.at("control").at(phase) : run.at("web").at("before");
            any = deviates(microseconds(ref), microseconds(run.at("web").at(phase)), r, q, alpha,
                           1234567 + (phase == "after")) ||
                  any;
          }
          deviated += any;
        }
        std::printf(" %d/%zu |", deviated, runs.size());
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  if (!wanted("extra")) return;
  header("null phases, against the control");
  for (const char* name :
       {"pair-staggered-idle", "delay-staggered-idle", "harmless-load", "delay-load"}) {
    const auto runs = load(name);
    const bool harmless = std::string(name).find("delay") == std::string::npos;
    std::printf("| %s (%s) |", name, harmless ? "all phases" : "before");
    for (const auto& r : all) {
      int deviated = 0;
      int phases = 0;
      for (const auto& run : runs) {
        for (const std::string phase : {"before", "during", "after"}) {
          if (!harmless && phase != "before") continue;
          for (const bool swap : {false, true}) {
            const auto& a = run.at(swap ? "web" : "control").at(phase);
            const auto& b = run.at(swap ? "control" : "web").at(phase);
            deviated += deviates(microseconds(a), microseconds(b), r, q, alpha, 99 + phases);
            ++phases;
          }
        }
      }
      std::printf(" %d/%d |", deviated, phases);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  header("known rise, against the control");
  for (const char* name : {"pair-staggered-idle", "harmless-load"}) {
    const auto runs = load(name);
    for (const bool shift : {false, true}) {
      std::printf("| %s %s |", name, shift ? "+350us" : "x1.2");
      for (const auto& r : all) {
        int deviated = 0;
        int phases = 0;
        for (const auto& run : runs) {
          for (const std::string phase : {"before", "during", "after"}) {
            auto b = microseconds(run.at("web").at(phase));
            for (auto& x : b) x = shift ? x + 350 : x * 1.2;
            deviated +=
                deviates(microseconds(run.at("control").at(phase)), b, r, q, alpha, 7 + phases);
            ++phases;
          }
        }
        std::printf(" %d/%d |", deviated, phases);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
}

}  // namespace chaosd::testing::candidates
