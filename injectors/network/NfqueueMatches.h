#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/base/Units.h"
#include "injectors/network/NfqueueRecords.h"

// The rules of network.delay through NFQUEUE as plain matches, from the fault's filter; kept
// apart from the netlink code (NfqueueRules.h) so they are tested without root.
namespace chaosd::nfq {

// The matches of one rule. Unset parts match everything.
struct PacketMatch {
  int family = 0;                  // AF_INET or AF_INET6 when an address is matched; 0: both
  std::optional<uint8_t> l4proto;  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6
  std::optional<units::Cidr> dst;
  std::optional<units::Cidr> src;
  std::optional<units::PortRange> dport;
  std::optional<units::PortRange> sport;
  // "ip daddr 10.0.0.2/32 tcp dport 80" (for logs and tests).
  std::string str() const;
};

// More rules than this is a fault too broad for one table of single matches.
inline constexpr size_t kMaxRules = 256;

// The rules of a delay fault's filter (to/from cidr and ports, protocol): one per combination
// of destination, source, ports and protocol (no nft sets: each rule is a plain chain of
// compares). A CIDR that does not parse matches nothing. kInvalid beyond kMaxRules, or when the
// filter matches no packet.
Result<std::vector<PacketMatch>> packetMatches(const NfqueueFilter& filter);
// The same from the filter's JSON (NfqueueFilter::fromJson); kInvalid when it does not parse.
Result<std::vector<PacketMatch>> packetMatches(const nlohmann::json& filter);

}  // namespace chaosd::nfq
