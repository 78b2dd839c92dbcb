#pragma once

#include <optional>
#include <string>
#include <vector>

// The seed's reliability models (section 4.1): the probability that a system is up, given the
// probability that each of its replicas is up, assuming replicas fail independently. The fleet
// report (reports/FleetReport.h) feeds them the availability each host's probe measured and
// sets the result beside what the front end's probe observed (docs/reports.md, "Fleet report").
namespace chaosd::report {

// Every replica must be up: R = Π Ri. 1 for no replicas.
double seriesReliability(const std::vector<double>& replicas);

// At least one replica must be up: R = 1 − Π (1 − Ri). 0 for no replicas.
double parallelReliability(const std::vector<double>& replicas);

// At least k of the n replicas must be up, each up with probability r:
// R = Σ_{i=k..n} C(n,i) r^i (1−r)^(n−i). k <= 0 gives 1; k > n gives 0.
double kOfNReliability(int k, int n, double r);

// The same with unequal Ri: the exact Poisson-binomial tail P(at least k up), by the
// recurrence over replicas of the distribution of the number up (no approximation). With
// every Ri equal it equals kOfNReliability; with k = n it is the series model, with k = 1
// the parallel one.
double kOfNReliability(int k, const std::vector<double>& replicas);

// One tier of a system: k of its replicas must be up.
struct TierModel {
  std::string name;
  int k = 1;
  std::vector<double> replicas;  // measured availability of each replica, 0..1
};

// Tiers in series, each k of n: R = Π_tiers P(at least k of the tier's replicas up).
double systemReliability(const std::vector<TierModel>& tiers);

// A proportion's 95% Wilson score interval (z = 1.96): where the availability a probe measured
// from `count` samples with `passed` passing lies. nullopt when count is 0.
struct Interval {
  double low = 0;
  double high = 1;
};
std::optional<Interval> wilsonInterval(double passed, double count);

}  // namespace chaosd::report
