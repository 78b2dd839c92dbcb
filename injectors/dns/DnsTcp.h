#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

// dns.error's error answers over TCP (RFC 7766: each message behind a 2-byte length), without a
// proxy. The query segment the fault's NFQUEUE rule holds tells everything the server's side of
// the connection needs: its next sequence number is the segment's ack, and it expects the
// client's bytes from the segment's seq. So the fault
//   - sends the client the server's answer: one segment from the resolver's address, seq = the
//     query's ack, ack = after the query, carrying the error answer(s) and FIN (the connection
//     ends there, as a server may end it after an answer, RFC 7766 6.2.3);
//   - replaces the query, in the verdict, by a RST with the query's seq: exactly the server's
//     next expected byte, so the server accepts it (RFC 5961) and forgets the connection it
//     would otherwise hold desynchronised (it never saw the query).
// That is correct only while the server owes the client nothing: on the connection's first
// query (seq = ISN + 1 of a SYN the fault saw). A later query on a reused connection may have
// answers to earlier ones in flight, which would share our sequence numbers; it is reset on both
// sides instead and the client asks again on a new connection, where it gets the error.
// Pure: packets in, packets out (IP and TCP headers are written here, not DNS: the answers come
// from ldns, DnsMessage.h); checksums by libnetfilter_queue's helpers. docs/faults/dns.md.
namespace chaosd::dns {

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

// What the fault reads of a queued TCP segment.
struct TcpSegment {
  int family = 0;  // AF_INET, AF_INET6
  in6_addr src{}, dst{};
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<std::pair<uint32_t, uint32_t>> timestamps;  // TSval, TSecr
  size_t ipHeaderLen = 0;                                   // the query's, kept in the RST
  const uint8_t* payload = nullptr;
  size_t payloadLen = 0;
};

// The segment's headers; nullopt unless IPv4/IPv6 (no extension header) TCP, not a fragment.
std::optional<TcpSegment> parseTcpSegment(const uint8_t* packet, size_t len);

// The DNS messages of a TCP payload, each whole (after its 2-byte length); nullopt unless the
// payload is exactly a sequence of whole messages (a message split over segments, or a partial
// one behind whole ones, cannot be handled in one segment).
std::optional<std::vector<std::pair<const uint8_t*, size_t>>> splitMessages(const uint8_t* payload,
                                                                            size_t len);

// The server's answer to the client for `q`: an IP packet from q.dst:q.dport to q.src:q.sport,
// seq = q.ack, ack = q.seq + q.payloadLen, `flags` (ACK|PSH|FIN with data, RST|ACK without),
// the client's timestamps mirrored (TSval = its TSecr, TSecr = its TSval) when it sent them.
// `stream` is already framed (length-prefixed messages).
std::vector<uint8_t> serverSegment(const TcpSegment& q, uint8_t flags,
                                   const std::vector<uint8_t>& stream);

// The queued query packet rewritten as RST|ACK with its seq and ack and no payload (its IP header
// kept, lengths and checksums set): what the verdict sends to the server instead.
std::vector<uint8_t> resetInPlace(const uint8_t* packet, const TcpSegment& q);

// The connections whose SYN the fault saw and on which no data has passed yet: where an answer
// can be forged safely. Bounded; when full, the oldest entry goes (that connection then counts
// as reused: reset, not answered).
class TcpFlows {
 public:
  static constexpr size_t kMaxFlows = 4096;
  // Records, forgets or consults a connection from what its client sent.
  void seen(const TcpSegment& s);
  // True when `s` carries the connection's first bytes (seq = ISN + 1). Forgets it either way:
  // after this segment the connection has carried data.
  bool takeFirstData(const TcpSegment& s);
  size_t size() const { return isn_.size(); }

 private:
  using Key = std::tuple<int, std::vector<uint8_t>, uint16_t, uint16_t>;
  static Key keyOf(const TcpSegment& s);
  std::map<Key, uint32_t> isn_;
  std::map<uint64_t, Key> order_;  // insertion order, for eviction
  std::map<Key, uint64_t> stamp_;
  uint64_t next_ = 0;
  void forget(const Key& k);
};

}  // namespace chaosd::dns
