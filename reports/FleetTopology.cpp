#include "reports/FleetTopology.h"

#include <yaml-cpp/yaml.h>

#include <set>

namespace chaosd::report {
namespace {

Error invalid(const std::string& source, const std::string& path, const std::string& what) {
  return Error(ErrorCode::kInvalid, source + ": " + (path.empty() ? "" : path + ": ") + what);
}

// A scalar as a non-empty string, or the error naming its path.
Result<std::string> name(const YAML::Node& n, const std::string& source, const std::string& path) {
  if (!n || !n.IsScalar() || n.Scalar().empty()) {
    return invalid(source, path, "expected a non-empty name");
  }
  return n.Scalar();
}

Result<int> parseK(const YAML::Node& n, size_t hosts, const std::string& source,
                   const std::string& path) {
  if (!n) return 1;
  if (!n.IsScalar()) return invalid(source, path, "expected a number of hosts or 'all'");
  if (n.Scalar() == "all") return static_cast<int>(hosts);
  int k = 0;
  if (!YAML::convert<int>::decode(n, k)) {
    return invalid(source, path, "'" + n.Scalar() + "' is not a number of hosts or 'all'");
  }
  if (k < 1) return invalid(source, path, "must be at least 1");
  if (static_cast<size_t>(k) > hosts) {
    return invalid(
        source, path,
        std::to_string(k) + " is more than the tier's " + std::to_string(hosts) + " hosts");
  }
  return k;
}

Result<TopologyTier> parseTier(const YAML::Node& n, const std::string& source,
                               const std::string& path, std::set<std::string>& seenHosts) {
  if (!n.IsMap()) return invalid(source, path, "expected a mapping {name, k, hosts, probe}");
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (key != "name" && key != "k" && key != "hosts" && key != "probe") {
      return invalid(source, path + "." + key, "unknown field (expected name, k, hosts, probe)");
    }
  }
  TopologyTier tier;
  auto tierName = name(n["name"], source, path + ".name");
  if (!tierName) return tierName.error();
  tier.name = *tierName;
  const YAML::Node hosts = n["hosts"];
  if (!hosts || !hosts.IsSequence() || hosts.size() == 0) {
    return invalid(source, path + ".hosts", "expected a non-empty list of host names");
  }
  if (hosts.size() > kMaxTierHosts) {
    return invalid(source, path + ".hosts",
                   "more than " + std::to_string(kMaxTierHosts) + " hosts");
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string at = path + ".hosts[" + std::to_string(i) + "]";
    auto host = name(hosts[i], source, at);
    if (!host) return host.error();
    if (!seenHosts.insert(*host).second) {
      return invalid(source, at,
                     "host '" + *host + "' is already in a tier (a host is one replica)");
    }
    tier.hosts.push_back(*host);
  }
  auto k = parseK(n["k"], tier.hosts.size(), source, path + ".k");
  if (!k) return k.error();
  tier.k = *k;
  if (n["probe"]) {
    auto probe = name(n["probe"], source, path + ".probe");
    if (!probe) return probe.error();
    tier.probe = *probe;
  }
  return tier;
}

Result<Topology> parseRoot(const YAML::Node& root, const std::string& source) {
  if (!root.IsMap()) return invalid(source, "", "expected a mapping with 'tiers'");
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key != "tiers" && key != "frontEnd") {
      return invalid(source, key, "unknown field (expected tiers, frontEnd)");
    }
  }
  const YAML::Node tiers = root["tiers"];
  if (!tiers || !tiers.IsSequence() || tiers.size() == 0) {
    return invalid(source, "tiers", "expected a non-empty list of tiers");
  }
  if (tiers.size() > kMaxTiers) {
    return invalid(source, "tiers", "more than " + std::to_string(kMaxTiers) + " tiers");
  }
  Topology topology;
  std::set<std::string> seenHosts;
  std::set<std::string> seenTiers;
  for (size_t i = 0; i < tiers.size(); ++i) {
    const std::string path = "tiers[" + std::to_string(i) + "]";
    auto tier = parseTier(tiers[i], source, path, seenHosts);
    if (!tier) return tier.error();
    if (!seenTiers.insert(tier->name).second) {
      return invalid(source, path + ".name", "tier '" + tier->name + "' is named twice");
    }
    topology.tiers.push_back(std::move(*tier));
  }
  if (const YAML::Node front = root["frontEnd"]) {
    if (!front.IsMap()) return invalid(source, "frontEnd", "expected a mapping {probe}");
    auto probe = name(front["probe"], source, "frontEnd.probe");
    if (!probe) return probe.error();
    topology.frontEndProbe = *probe;
  }
  return topology;
}

}  // namespace

Result<Topology> parseTopology(const std::string& text, const std::string& source) {
  if (text.size() > kMaxTopologyBytes) {
    return invalid(source, "", "larger than " + std::to_string(kMaxTopologyBytes) + " bytes");
  }
  try {
    return parseRoot(YAML::Load(text), source);
  } catch (const YAML::Exception& e) {
    return invalid(source, "", std::string("not valid YAML: ") + e.what());
  }
}

}  // namespace chaosd::report
