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
#include "injectors/dns/DnsTcp.h"

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
  // UDP: dropped, and `answer` sent to the client from the resolver's address. TCP: replaced by
  // `replacement` (a RST to the server), and `toClient` (the answer and FIN) sent (DnsTcp.h).
  kAnswer,
  // TCP, a matching query on a reused connection: replaced by `replacement` (a RST to the
  // server) and `toClient` (a RST from the server) sent; the client asks again on a new one.
  kReset,
};

struct Decision {
  Verdict verdict = Verdict::kAccept;
  std::optional<Query> query;  // the first DNS query read
  bool matched = false;        // a query of the packet matches the fault's names and types
  // Every query read (a TCP segment may carry several), with whether it matches.
  std::vector<std::pair<Query, bool>> queries;
  // TCP: a matching query the fault could not answer in this segment (a message split over
  // segments, or next to a query that does not match): passed untouched.
  bool tcpPassed = false;
  std::optional<PacketView> packet;  // when parsed
  std::vector<uint8_t> answer;       // kAnswer over UDP: the DNS message to send back
  std::vector<uint8_t> toClient;     // kAnswer, kReset over TCP: the IP packet to the client
  std::vector<uint8_t> replacement;  // kAnswer, kReset over TCP: the packet the verdict sends
};

class DnsPolicy {
 public:
  DnsPolicy(QueryMatcher matcher, Action action) : matcher_(std::move(matcher)), action_(action) {}
  // What to do with a queued packet. Anything that is not a whole query (TCP handshakes,
  // answers, unparsable bytes) is accepted untouched. `flows` follows TCP connections (their
  // SYNs) so that an answer is forged only on a connection's first query; without it every TCP
  // query counts as one on a reused connection.
  Decision decide(const uint8_t* data, size_t len, TcpFlows* flows = nullptr) const;
  Action action() const { return action_; }

  // Segments bigger than this are never rewritten (a GSO super-packet has no business in a DNS
  // query; the verdict's rewrite would keep its segmentation size).
  static constexpr size_t kMaxRewrite = 1280;

 private:
  Decision decideTcp(const uint8_t* data, size_t len, const TcpSegment& s, TcpFlows* flows) const;
  // The error answer(s) to `messages`, each behind its 2-byte length; empty when one is not a
  // query ldns can answer.
  std::vector<uint8_t> framedAnswers(
      const std::vector<std::pair<const uint8_t*, size_t>>& messages) const;
  Rcode rcode() const;

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
  uint64_t dropped = 0;         // queries dropped (action drop)
  uint64_t delayed = 0;         // queries held and accepted after the delay
  uint64_t releasedAtStop = 0;  // held at revert, accepted then (early)
  uint64_t answerErrors = 0;    // answers that could not be sent (the query was accepted)
  uint64_t overflow = 0;        // delays refused because `limit` were held (accepted at once)
  uint64_t resets = 0;          // TCP connections reset: a matching query on a reused one
  uint64_t tcpPassed = 0;       // TCP segments with a matching query passed (not answerable)
  std::map<std::string, NameCounts> names;
  NameCounts otherNames;

  // Counts one decision as taken (verdict as carried out, after fallbacks).
  void count(const Decision& d, Verdict carriedOut);
  nlohmann::json toJson() const;
};

}  // namespace chaosd::dns
