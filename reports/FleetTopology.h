#pragma once

#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// A system's declared topology for the fleet report's reliability model: tiers in series, each
// needing k of its hosts' replicas up (docs/reports.md, "Fleet report"). Written as a small YAML
// (or JSON) file:
//
//   tiers:
//     - {name: web, k: 2, hosts: [web1, web2, web3], probe: web-health}
//     - {name: db, hosts: [db1]}          # k defaults to 1: the tier's replicas in parallel
//   frontEnd: {probe: front}              # the control node's probe; optional
//
// `k: all` means every host (the tier's replicas in series). `probe` names the probe in each of
// the tier's host reports that measures its replica; optional when those reports have one.
namespace chaosd::report {

struct TopologyTier {
  std::string name;
  int k = 1;
  std::vector<std::string> hosts;
  std::string probe;  // "" when not given
};

struct Topology {
  std::vector<TopologyTier> tiers;
  std::string frontEndProbe;  // "" when not given
};

inline constexpr size_t kMaxTopologyBytes = 64 * 1024;
inline constexpr size_t kMaxTiers = 64;
inline constexpr size_t kMaxTierHosts = 1000;

// Parses and checks a topology (names unique, k within 1..n, a host in one tier only). Errors
// are kInvalid and name the field: "tiers[1].k: 4 is more than the tier's 3 hosts". `source`
// (a file name) prefixes every message.
Result<Topology> parseTopology(const std::string& text, const std::string& source);

}  // namespace chaosd::report
