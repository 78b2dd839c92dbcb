#include "injectors/network/NfqueueMatches.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace chaosd::nfq {
namespace {

// The endpoint's addresses of one family; {nullopt} (any address) when it names none at all,
// {} when it names only addresses of the other family.
// The host names' addresses a refresh follows (hostAddresses) count as /32 and /128 CIDRs.
std::vector<std::optional<units::Cidr>> cidrsOf(const NftEndpoint& endpoint, int family) {
  std::vector<std::optional<units::Cidr>> out;
  for (const auto* list : {&endpoint.cidrs, &endpoint.hostAddresses}) {
    for (const auto& c : *list) {
      auto parsed = units::parseCidr(c);
      if (parsed && parsed->family == family) out.emplace_back(*parsed);
    }
  }
  if (endpoint.cidrs.empty() && endpoint.hostAddresses.empty()) out.emplace_back(std::nullopt);
  return out;
}

bool namesAddresses(const NftEndpoint& e) { return !e.cidrs.empty() || !e.hostAddresses.empty(); }

std::vector<std::optional<units::PortRange>> portsOf(const NftEndpoint& endpoint) {
  std::vector<std::optional<units::PortRange>> out(endpoint.ports.begin(), endpoint.ports.end());
  if (out.empty()) out.emplace_back(std::nullopt);
  return out;
}

std::vector<std::optional<uint8_t>> protocolsOf(const std::string& protocol, int family,
                                                bool anyPorts) {
  std::vector<std::optional<uint8_t>> protos;
  if (protocol == "tcp") {
    protos = {IPPROTO_TCP};
  } else if (protocol == "udp") {
    protos = {IPPROTO_UDP};
  } else if (protocol == "icmp") {
    if (family != AF_INET6) protos.emplace_back(IPPROTO_ICMP);
    if (family != AF_INET) protos.emplace_back(IPPROTO_ICMPV6);
  } else if (anyPorts) {
    protos = {IPPROTO_TCP, IPPROTO_UDP};  // ports exist only for these
  } else {
    protos = {std::nullopt};
  }
  return protos;
}

// Every combination of one family's parts, appended to `out`; false past kMaxRules.
bool addCombinations(int family, const std::vector<std::optional<units::Cidr>>& dsts,
                     const std::vector<std::optional<units::Cidr>>& srcs,
                     const std::vector<std::optional<uint8_t>>& protos,
                     const std::vector<std::optional<units::PortRange>>& dports,
                     const std::vector<std::optional<units::PortRange>>& sports,
                     std::vector<PacketMatch>& out) {
  for (const auto& d : dsts) {
    for (const auto& s : srcs) {
      for (const auto& p : protos) {
        for (const auto& dp : dports) {
          for (const auto& sp : sports) {
            out.push_back(PacketMatch{family, p, d, s, dp, sp});
            if (out.size() > kMaxRules) return false;
          }
        }
      }
    }
  }
  return true;
}

}  // namespace

std::string PacketMatch::str() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : " ") + s; };
  const std::string ip = family == AF_INET6 ? "ip6" : "ip";
  if (family != 0 && !dst && !src) {
    add(family == AF_INET6 ? "meta nfproto ipv6" : "meta nfproto ipv4");
  }
  if (dst) add(ip + " daddr " + dst->str());
  if (src) add(ip + " saddr " + src->str());
  if (l4proto) {
    switch (*l4proto) {
      case IPPROTO_TCP:
        add("meta l4proto tcp");
        break;
      case IPPROTO_UDP:
        add("meta l4proto udp");
        break;
      case IPPROTO_ICMP:
        add("meta l4proto icmp");
        break;
      case IPPROTO_ICMPV6:
        add("meta l4proto ipv6-icmp");
        break;
      default:
        add("meta l4proto " + std::to_string(*l4proto));
    }
  }
  if (dport) add("th dport " + dport->str());
  if (sport) add("th sport " + sport->str());
  return out.empty() ? "all" : out;
}

Result<std::vector<PacketMatch>> packetMatches(const NfqueueFilter& filter) {
  const NftEndpoint none;
  const NftEndpoint& to = filter.to ? *filter.to : none;
  const NftEndpoint& from = filter.from ? *filter.from : none;
  const std::string protocol = filter.protocol.value_or("all");
  const auto dports = portsOf(to);
  const auto sports = portsOf(from);
  const bool anyPorts = dports.front() || sports.front();
  const bool anyCidr = namesAddresses(to) || namesAddresses(from);
  std::vector<PacketMatch> out;
  for (int family : anyCidr ? std::vector<int>{AF_INET, AF_INET6} : std::vector<int>{0}) {
    const auto dsts = cidrsOf(to, family);
    const auto srcs = cidrsOf(from, family);
    // A side given only in the other family rules this family out.
    if (dsts.empty() || srcs.empty()) continue;
    if (!addCombinations(family, dsts, srcs, protocolsOf(protocol, family, anyPorts), dports,
                         sports, out)) {
      return Error(ErrorCode::kInvalid,
                   "the filter needs more than " + std::to_string(kMaxRules) +
                       " rules (every combination of addresses, ports and protocol is one): give "
                       "fewer or wider CIDRs and port ranges");
    }
  }
  if (out.empty()) return Error(ErrorCode::kInvalid, "the filter matches no packet");
  return out;
}

Result<std::vector<PacketMatch>> packetMatches(const nlohmann::json& filter) {
  auto parsed = NfqueueFilter::fromJson(filter);
  if (!parsed) return std::move(parsed).error();
  return packetMatches(*parsed);
}

}  // namespace chaosd::nfq
