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
// family and addresses, protocol and ports. One line per address family named.
std::vector<std::string> matchLines(const NftEndpoint& peer, const std::string& protocol,
                                    bool egress, const std::string& iface) {
  const std::string ifMatch = (egress ? "oifname " : "iifname ") + quoted(iface);
  const std::string addrDir = egress ? "daddr" : "saddr";
  const std::string portDir = egress ? "dport" : "sport";
  std::vector<std::string> addrMatches;
  if (peer.cidrs.empty()) {
    addrMatches.emplace_back();
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

}  // namespace

NftablesRules nftablesRules(const NftPartitionArgs& args, const std::string& iface) {
  NftablesRules result;
  for (bool egress : {true, false}) {
    if (args.direction != (egress ? "to" : "from") && args.direction != "both") continue;
    for (const auto& m : matchLines(args.peers, args.protocol, egress, iface)) {
      for (auto& r : partitionVerdicts(args, m)) (egress ? result.out : result.in).push_back(r);
    }
  }
  return result;
}

NftablesRules nftablesRules(const NftLossArgs& args, const std::string& iface) {
  // numgen random mod 1000000 < share: a uniform draw per packet, in the kernel.
  const auto threshold = static_cast<long long>(std::llround(args.loss * 1'000'000));
  const std::string drop = "numgen random mod 1000000 < " + std::to_string(threshold) + " drop";
  NftablesRules result;
  const NftEndpoint& peer = args.egress ? args.to : args.from;
  for (const auto& m : matchLines(peer, args.protocol, args.egress, iface)) {
    (args.egress ? result.out : result.in).push_back(m + " " + drop);
  }
  return result;
}

NftablesRules nftablesResetRules(const NftPartitionArgs& args, const std::string& iface) {
  NftablesRules result;
  for (bool egress : {true, false}) {
    if (args.direction != (egress ? "to" : "from") && args.direction != "both") continue;
    for (const auto& m : matchLines(args.peers, "tcp", egress, iface)) {
      (egress ? result.out : result.in).push_back(m + " counter reject with tcp reset");
    }
  }
  return result;
}

Result<NftablesRules> nftablesRules(const std::string& faultType, const std::string& iface,
                                    const nlohmann::json& args) {
  if (faultType == "network.partition") {
    auto parsed = NftPartitionArgs::fromJson(args);
    if (!parsed) return std::move(parsed).error();
    return nftablesRules(*parsed, iface);
  }
  if (faultType == "network.reset") {
    auto parsed = NftPartitionArgs::fromJson(args);
    if (!parsed) return std::move(parsed).error();
    return nftablesResetRules(*parsed, iface);
  }
  if (faultType == "network.loss") {
    auto parsed = NftLossArgs::fromJson(args);
    if (!parsed) return std::move(parsed).error();
    return nftablesRules(*parsed, iface);
  }
  return Error(ErrorCode::kInvalid, "the nftables backend does not do " + faultType);
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
  std::string s;
  const std::string comment = " comment \"" + nftablesRuleComment(faultId) + "\"\n";
  for (const auto& r : rules.out) s += "add rule inet " + table + " out " + r + comment;
  for (const auto& r : rules.in) s += "add rule inet " + table + " in " + r + comment;
  return s;
}

std::string nftablesRunTable(const std::string& runId) {
  std::string out = "chaosd_run_";
  for (char c : runId) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string nftablesRuleComment(const std::string& faultId) { return "chaosd:" + faultId; }

}  // namespace chaosd
