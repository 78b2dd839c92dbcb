#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "injectors/dns/DnsMatch.h"
#include "injectors/dns/DnsMessage.h"

// What a dns.error fault does with one packet its NFQUEUE rule sent to userspace: an IPv4 or
// IPv6 packet to the DNS port, UDP or TCP, as the kernel queued it. Pure (no socket, no
// kernel), so it is tested on captured bytes. The packet's IP and transport headers are read
// here by hand (they are not DNS); the DNS message only through ldns (DnsMessage.h).
namespace chaosd::dns {

enum class Action { kNxdomain, kServfail, kRefused, kDrop, kDelay };
std::optional<Action> parseAction(std::string_view name);
std::string_view actionName(Action a);

// A queued packet's addresses, ports and DNS message.
struct PacketView {
  int family = 0;       // AF_INET, AF_INET6
  uint8_t l4proto = 0;  // IPPROTO_UDP, IPPROTO_TCP
  in6_addr src{};       // IPv4 in the first 4 bytes
  in6_addr dst{};
  uint16_t sport = 0;
  uint16_t dport = 0;
  const uint8_t* dns = nullptr;  // the DNS message (after TCP's 2-byte length)
  size_t dnsLen = 0;
};

// The packet's headers; nullopt when it is not IPv4/IPv6 UDP/TCP with its DNS message whole in
// this packet (an IPv6 extension header, a fragment, a TCP segment without a whole message).
std::optional<PacketView> parsePacket(const uint8_t* data, size_t len);

enum class Verdict {
  kAccept,  // untouched
  kDrop,    // the client times out
  kDelay,   // held, then accepted
  kAnswer,  // dropped, and `answer` sent to the client from the resolver's address
};

struct Decision {
  Verdict verdict = Verdict::kAccept;
  std::optional<Query> query;        // a DNS query was read
  bool matched = false;              // it matches the fault's names and types
  bool tcpAnswerDropped = false;     // an error answer asked for over TCP: dropped instead
  std::optional<PacketView> packet;  // when parsed
  std::vector<uint8_t> answer;       // kAnswer: the DNS message to send back
};

class DnsPolicy {
 public:
  DnsPolicy(QueryMatcher matcher, Action action) : matcher_(std::move(matcher)), action_(action) {}
  // What to do with a queued packet. Anything that is not a whole query (TCP handshakes,
  // answers, unparsable bytes) is accepted untouched.
  Decision decide(const uint8_t* data, size_t len) const;
  Action action() const { return action_; }

 private:
  QueryMatcher matcher_;
  Action action_;
};

// What a fault saw, per name: the report's `names`.
struct NameCounts {
  uint64_t seen = 0, matched = 0, answered = 0, dropped = 0, delayed = 0;
};

// The counts of one fault's queue. Names beyond kMaxNames are summed into `otherNames`, so a
// flood of random names cannot grow the report without bound.
struct DnsStats {
  static constexpr size_t kMaxNames = 64;
  uint64_t packets = 0;         // packets the kernel queued
  uint64_t queries = 0;         // DNS queries read among them
  uint64_t matched = 0;         // queries the fault acted on
  uint64_t answered = 0;        // error answers sent
  uint64_t dropped = 0;         // queries dropped (action drop, or an answer over TCP)
  uint64_t delayed = 0;         // queries held and accepted after the delay
  uint64_t releasedAtStop = 0;  // held at revert, accepted then (early)
  uint64_t answerErrors = 0;    // answers that could not be sent (the query was accepted)
  uint64_t overflow = 0;        // delays refused because `limit` were held (accepted at once)
  std::map<std::string, NameCounts> names;
  NameCounts otherNames;

  // Counts one decision as taken (verdict as carried out, after fallbacks).
  void count(const Decision& d, Verdict carriedOut);
  nlohmann::json toJson() const;
};

}  // namespace chaosd::dns
