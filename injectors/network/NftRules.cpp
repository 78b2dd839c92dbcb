#include "injectors/network/NftRules.h"

#include <cctype>
#include <cmath>
#include <initializer_list>

namespace chaosd {
namespace {

bool isV6(const std::string& cidr) { return cidr.find(':') != std::string::npos; }

// "{ 10.0.0.2/32, 10.1.0.0/16 }" of one family; "" when there is none of that family.
std::string addressSet(const std::vector<std::string>& cidrs, bool v6) {
  std::string out;
  for (const auto& s : cidrs) {
    if (isV6(s) != v6) continue;
    out += (out.empty() ? "" : ", ") + s;
  }
  return out.empty() ? "" : "{ " + out + " }";
}

std::string portSet(const std::vector<units::PortRange>& ports) {
  std::string out;
  for (const auto& p : ports) {
    out += (out.empty() ? "" : ", ") +
           (p.first == p.last ? std::to_string(p.first)
                              : std::to_string(p.first) + "-" + std::to_string(p.last));
  }
  return "{ " + out + " }";
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string protocolMatch(const std::string& protocol, bool anyPorts) {
  if (protocol == "tcp" || protocol == "udp") return "meta l4proto " + protocol;
  if (protocol == "icmp") return "meta l4proto { icmp, ipv6-icmp }";
  if (anyPorts) return "meta l4proto { tcp, udp }";
  return "";
}

// The matches of one rule for packets to (egress) or from (ingress) the peers: interface,
// family and addresses, protocol and ports. One line per address family named, and with a host
// set one per family for the set (an empty set matches nothing: a name may gain an address of
// the other family later).
std::vector<std::string> matchLines(const NftEndpoint& peer, const std::string& protocol,
                                    bool egress, const std::string& iface,
                                    const std::string& hostSet) {
  const std::string ifMatch = (egress ? "oifname " : "iifname ") + quoted(iface);
  const std::string addrDir = egress ? "daddr" : "saddr";
  const std::string portDir = egress ? "dport" : "sport";
  std::vector<std::string> addrMatches;
  if (!hostSet.empty()) {
    addrMatches.push_back("ip " + addrDir + " @" + hostSet + "_v4");
    addrMatches.push_back("ip6 " + addrDir + " @" + hostSet + "_v6");
  }
  if (peer.cidrs.empty()) {
    if (hostSet.empty()) addrMatches.emplace_back();
  } else {
    if (auto v4 = addressSet(peer.cidrs, false); !v4.empty()) {
      addrMatches.push_back("ip " + addrDir + " " + v4);
    }
    if (auto v6 = addressSet(peer.cidrs, true); !v6.empty()) {
      addrMatches.push_back("ip6 " + addrDir + " " + v6);
    }
  }
  const std::string proto = protocolMatch(protocol, !peer.ports.empty());
  const std::string portMatch =
      peer.ports.empty() ? "" : "th " + portDir + " " + portSet(peer.ports);
  std::vector<std::string> out;
  for (const auto& a : addrMatches) {
    std::string line = ifMatch;
    for (const std::string* part :
         std::initializer_list<const std::string*>{&a, &proto, &portMatch}) {
      if (!part->empty()) line += " " + *part;
    }
    out.push_back(line);
  }
  return out;
}

// A partition's verdicts for one match: a drop, or a TCP reset where TCP can be told apart and
// an ICMP unreachable for the rest.
std::vector<std::string> partitionVerdicts(const NftPartitionArgs& args, const std::string& match) {
  if (!args.reject) return {match + " drop"};
  std::vector<std::string> rules;
  const std::string& protocol = args.protocol;
  if (protocol == "all" || protocol == "tcp") {
    rules.push_back(match + (protocol == "tcp" ? "" : " meta l4proto tcp") +
                    " reject with tcp reset");
  }
  if (protocol != "tcp") rules.push_back(match + " reject");
  return rules;
}

// `add element` of each family's addresses into the fault's sets ("" for none).
std::string elementAdds(const std::string& table, const std::string& hostSet,
                        const std::vector<std::string>& addresses) {
  std::string s;
  for (bool v6 : {false, true}) {
    const std::string elems = addressSet(addresses, v6);
    if (elems.empty()) continue;
    s += "add element inet " + table + " " + hostSet + (v6 ? "_v6 " : "_v4 ") + elems + "\n";
  }
  return s;
}

// The sets' definitions and elements ("" without a host set).
std::string hostSetScript(const std::string& table, const NftablesRules& rules) {
  if (rules.hostSet.empty()) return "";
  std::string s;
  for (bool v6 : {false, true}) {
    s += "add set inet " + table + " " + rules.hostSet + (v6 ? "_v6" : "_v4") + " { type " +
         (v6 ? "ipv6_addr" : "ipv4_addr") + "; }\n";
  }
  return s + elementAdds(table, rules.hostSet, rules.hostAddresses);
}

// With a host set: the sets' names and elements on the rules.
NftablesRules withHostSet(NftablesRules rules, const NftEndpoint& peer,
                          const std::string& hostSet) {
  if (hostSet.empty()) return rules;
  rules.hostSet = hostSet;
  rules.hostAddresses = peer.hostAddresses;
  return rules;
}

}  // namespace

NftablesRules nftablesRules(const NftPartitionArgs& args, const std::string& iface,
                            const std::string& hostSet) {
  NftablesRules result;
  for (bool egress : {true, false}) {
    if (args.direction != (egress ? "to" : "from") && args.direction != "both") continue;
    for (const auto& m : matchLines(args.peers, args.protocol, egress, iface, hostSet)) {
      for (auto& r : partitionVerdicts(args, m)) (egress ? result.out : result.in).push_back(r);
    }
  }
  return withHostSet(std::move(result), args.peers, hostSet);
}

NftablesRules nftablesRules(const NftLossArgs& args, const std::string& iface,
                            const std::string& hostSet) {
  // numgen random mod 1000000 < share: a uniform draw per packet, in the kernel.
  const auto threshold = static_cast<long long>(std::llround(args.loss * 1'000'000));
  const std::string drop = "numgen random mod 1000000 < " + std::to_string(threshold) + " drop";
  NftablesRules result;
  const NftEndpoint& peer = args.egress ? args.to : args.from;
  for (const auto& m : matchLines(peer, args.protocol, args.egress, iface, hostSet)) {
    (args.egress ? result.out : result.in).push_back(m + " " + drop);
  }
  return withHostSet(std::move(result), peer, hostSet);
}

NftablesRules nftablesResetRules(const NftPartitionArgs& args, const std::string& iface,
                                 const std::string& hostSet) {
  NftablesRules result;
  for (bool egress : {true, false}) {
    if (args.direction != (egress ? "to" : "from") && args.direction != "both") continue;
    for (const auto& m : matchLines(args.peers, "tcp", egress, iface, hostSet)) {
      (egress ? result.out : result.in).push_back(m + " counter reject with tcp reset");
    }
  }
  return withHostSet(std::move(result), args.peers, hostSet);
}

Result<NftablesRules> nftablesRules(const std::string& faultType, const std::string& iface,
                                    const nlohmann::json& args, const std::string& faultId) {
  // A host set only where the peers have the addresses of names a refresh follows.
  auto setFor = [&](const NftEndpoint& peer) {
    return peer.hostAddresses.empty() ? std::string() : nftablesHostSet(faultId);
  };
  if (faultType == "network.partition" || faultType == "network.reset") {
    auto parsed = NftPartitionArgs::fromJson(args);
    if (!parsed) return std::move(parsed).error();
    const std::string set = setFor(parsed->peers);
    return faultType == "network.reset" ? nftablesResetRules(*parsed, iface, set)
                                        : nftablesRules(*parsed, iface, set);
  }
  if (faultType == "network.loss") {
    auto parsed = NftLossArgs::fromJson(args);
    if (!parsed) return std::move(parsed).error();
    return nftablesRules(*parsed, iface, setFor(parsed->egress ? parsed->to : parsed->from));
  }
  return Error(ErrorCode::kInvalid, "the nftables backend does not do " + faultType);
}

std::string nftablesHostSet(const std::string& faultId) {
  std::string out = "hosts_";
  for (char c : faultId) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string nftablesHostSetUpdate(const std::string& table, const std::string& hostSet,
                                  const std::vector<std::string>& addresses) {
  std::string s;
  for (bool v6 : {false, true}) {
    s += "flush set inet " + table + " " + hostSet + (v6 ? "_v6" : "_v4") + "\n";
  }
  return s + elementAdds(table, hostSet, addresses);
}

std::string nftablesTableScript(const std::string& table) {
  return "table inet " + table +
         " {\n"
         "  chain out {\n    type filter hook output priority -300; policy accept;\n  }\n"
         "  chain in {\n    type filter hook input priority -300; policy accept;\n  }\n"
         "}\n";
}

std::string nftablesFaultScript(const std::string& table, const std::string& faultId,
                                const NftablesRules& rules) {
  std::string s = hostSetScript(table, rules);
  const std::string comment = " comment \"" + nftablesRuleComment(faultId) + "\"\n";
  for (const auto& r : rules.out) s += "add rule inet " + table + " out " + r + comment;
  for (const auto& r : rules.in) s += "add rule inet " + table + " in " + r + comment;
  return s;
}

namespace {
std::string tableWithId(std::string out, const std::string& id) {
  for (char c : id) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}
}  // namespace

std::string nftablesRunTable(const std::string& runId) { return tableWithId("chaosd_run_", runId); }

std::string nftablesFaultTable(const std::string& faultId) {
  return tableWithId("chaosd_", faultId);
}

std::string nftablesRuleComment(const std::string& faultId) { return "chaosd:" + faultId; }

}  // namespace chaosd
