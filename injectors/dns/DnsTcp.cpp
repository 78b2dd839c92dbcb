#include "injectors/dns/DnsTcp.h"

#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue_ipv4.h>
#include <libnetfilter_queue/libnetfilter_queue_tcp.h>
}

namespace chaosd::dns {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kTcpHeader = 20;
constexpr uint8_t kOptEnd = 0, kOptNop = 1, kOptTimestamps = 8;
constexpr uint8_t kTtl = 64;

std::optional<std::pair<uint32_t, uint32_t>> timestampsOf(const uint8_t* opt, size_t len) {
  for (size_t i = 0; i < len;) {
    if (opt[i] == kOptEnd) break;
    if (opt[i] == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= len || opt[i + 1] < 2 || i + opt[i + 1] > len) break;
    if (opt[i] == kOptTimestamps && opt[i + 1] == 10) {
      return std::make_pair(be32(opt + i + 2), be32(opt + i + 6));
    }
    i += opt[i + 1];
  }
  return std::nullopt;
}

// Fills the TCP header at `tcp` (its checksum left to the caller).
void writeTcp(uint8_t* tcp, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
              uint8_t flags, uint16_t window, size_t headerLen) {
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  tcp[12] = static_cast<uint8_t>((headerLen / 4) << 4);
  tcp[13] = flags;
  put16(tcp + 14, window);
  put16(tcp + 16, 0);
  put16(tcp + 18, 0);
}

// The TCP checksum (and IPv4's header checksum) of a whole packet, through libnetfilter_queue.
void setChecksums(std::vector<uint8_t>& p, int family, size_t ipHeaderLen) {
  auto* tcp = reinterpret_cast<tcphdr*>(p.data() + ipHeaderLen);
  if (family == AF_INET) {
    auto* ip = reinterpret_cast<iphdr*>(p.data());
    nfq_ip_set_checksum(ip);
    nfq_tcp_compute_checksum_ipv4(tcp, ip);
  } else {
    nfq_tcp_compute_checksum_ipv6(tcp, reinterpret_cast<ip6_hdr*>(p.data()));
  }
}

}  // namespace

std::optional<TcpSegment> parseTcpSegment(const uint8_t* data, size_t len) {
  if (data == nullptr || len < 1) return std::nullopt;
  TcpSegment s;
  const uint8_t* l4 = nullptr;
  size_t l4Len = 0;
  if ((data[0] >> 4) == 4) {
    if (len < kIpv4Header) return std::nullopt;
    const size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
    const size_t total = be16(data + 2);
    if (ihl < kIpv4Header || total < ihl || total > len || data[9] != IPPROTO_TCP) {
      return std::nullopt;
    }
    if ((be16(data + 6) & 0x3fff) != 0) return std::nullopt;  // a fragment (MF or an offset)
    s.family = AF_INET;
    std::memcpy(&s.src, data + 12, 4);
    std::memcpy(&s.dst, data + 16, 4);
    s.ipHeaderLen = ihl;
    l4 = data + ihl;
    l4Len = total - ihl;
  } else if ((data[0] >> 4) == 6) {
    if (len < kIpv6Header || data[6] != IPPROTO_TCP) return std::nullopt;
    const size_t payload = be16(data + 4);
    if (kIpv6Header + payload > len) return std::nullopt;
    s.family = AF_INET6;
    std::memcpy(&s.src, data + 8, 16);
    std::memcpy(&s.dst, data + 24, 16);
    s.ipHeaderLen = kIpv6Header;
    l4 = data + kIpv6Header;
    l4Len = payload;
  } else {
    return std::nullopt;
  }
  if (l4Len < kTcpHeader) return std::nullopt;
  const size_t off = static_cast<size_t>(l4[12] >> 4) * 4;
  if (off < kTcpHeader || off > l4Len) return std::nullopt;
  s.sport = be16(l4);
  s.dport = be16(l4 + 2);
  s.seq = be32(l4 + 4);
  s.ack = be32(l4 + 8);
  s.flags = l4[13];
  s.window = be16(l4 + 14);
  s.timestamps = timestampsOf(l4 + kTcpHeader, off - kTcpHeader);
  s.payload = l4 + off;
  s.payloadLen = l4Len - off;
  return s;
}

std::optional<std::vector<std::pair<const uint8_t*, size_t>>> splitMessages(const uint8_t* payload,
                                                                            size_t len) {
  std::vector<std::pair<const uint8_t*, size_t>> out;
  size_t at = 0;
  while (at < len) {
    if (len - at < 2) return std::nullopt;
    const size_t n = be16(payload + at);
    if (n == 0 || n > len - at - 2) return std::nullopt;
    out.emplace_back(payload + at + 2, n);
    at += 2 + n;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::vector<uint8_t> serverSegment(const TcpSegment& q, uint8_t flags,
                                   const std::vector<uint8_t>& stream) {
  const bool v6 = q.family == AF_INET6;
  const size_t ipLen = v6 ? kIpv6Header : kIpv4Header;
  const size_t tcpLen = kTcpHeader + (q.timestamps ? 12 : 0);
  std::vector<uint8_t> p(ipLen + tcpLen + stream.size(), 0);
  uint8_t* ip = p.data();
  if (v6) {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint16_t>(tcpLen + stream.size()));
    ip[6] = IPPROTO_TCP;
    ip[7] = kTtl;
    std::memcpy(ip + 8, &q.dst, 16);
    std::memcpy(ip + 24, &q.src, 16);
  } else {
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(p.size()));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = kTtl;
    ip[9] = IPPROTO_TCP;
    std::memcpy(ip + 12, &q.dst, 4);
    std::memcpy(ip + 16, &q.src, 4);
  }
  uint8_t* tcp = ip + ipLen;
  writeTcp(tcp, q.dport, q.sport, q.ack, q.seq + static_cast<uint32_t>(q.payloadLen), flags,
           q.window, tcpLen);
  if (q.timestamps) {
    uint8_t* o = tcp + kTcpHeader;
    o[0] = kOptNop;
    o[1] = kOptNop;
    o[2] = kOptTimestamps;
    o[3] = 10;
    put32(o + 4, q.timestamps->second);  // the server's own last TSval, echoed by the client
    put32(o + 8, q.timestamps->first);
  }
  if (!stream.empty()) std::memcpy(tcp + tcpLen, stream.data(), stream.size());
  setChecksums(p, q.family, ipLen);
  return p;
}

std::vector<uint8_t> resetInPlace(const uint8_t* packet, const TcpSegment& q) {
  std::vector<uint8_t> p(q.ipHeaderLen + kTcpHeader, 0);
  std::memcpy(p.data(), packet, q.ipHeaderLen);
  if (q.family == AF_INET6) {
    put16(p.data() + 4, kTcpHeader);
  } else {
    put16(p.data() + 2, static_cast<uint16_t>(p.size()));
  }
  writeTcp(p.data() + q.ipHeaderLen, q.sport, q.dport, q.seq, q.ack, kTcpRst | kTcpAck, 0,
           kTcpHeader);
  setChecksums(p, q.family, q.ipHeaderLen);
  return p;
}

TcpFlows::Key TcpFlows::keyOf(const TcpSegment& s) {
  const size_t n = s.family == AF_INET6 ? 16 : 4;
  std::vector<uint8_t> addrs(2 * n);
  std::memcpy(addrs.data(), &s.src, n);
  std::memcpy(addrs.data() + n, &s.dst, n);
  return {s.family, std::move(addrs), s.sport, s.dport};
}

void TcpFlows::forget(const Key& k) {
  if (auto it = stamp_.find(k); it != stamp_.end()) {
    order_.erase(it->second);
    stamp_.erase(it);
  }
  isn_.erase(k);
}

void TcpFlows::seen(const TcpSegment& s) {
  const Key k = keyOf(s);
  if ((s.flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
    forget(k);  // a new connection on the same ports (or the SYN sent again)
    if (isn_.size() >= kMaxFlows && !order_.empty()) {
      const Key oldest = order_.begin()->second;  // a copy: forget() erases the original
      forget(oldest);
    }
    isn_[k] = s.seq;
    stamp_[k] = next_;
    order_[next_++] = k;
  } else if ((s.flags & kTcpRst) != 0 || ((s.flags & kTcpFin) != 0 && s.payloadLen == 0)) {
    forget(k);  // (a FIN with data is the first data's check's to forget)
  }
}

bool TcpFlows::takeFirstData(const TcpSegment& s) {
  const Key k = keyOf(s);
  auto it = isn_.find(k);
  const bool first = it != isn_.end() && s.seq == it->second + 1;
  forget(k);
  return first;
}

}  // namespace chaosd::dns
