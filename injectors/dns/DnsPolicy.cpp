#include "injectors/dns/DnsPolicy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

namespace chaosd::dns {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4Offset = 0x1fff;

// The transport header and what follows, after the IP header; false when not UDP/TCP.
bool parseTransport(PacketView& v, const uint8_t* l4, size_t len) {
  if (v.l4proto == IPPROTO_UDP) {
    if (len < 8) return false;
    v.sport = be16(l4);
    v.dport = be16(l4 + 2);
    const size_t udpLen = be16(l4 + 4);
    if (udpLen < 8 || udpLen > len) return false;
    v.dns = l4 + 8;
    v.dnsLen = udpLen - 8;
    return true;
  }
  if (v.l4proto == IPPROTO_TCP) {
    if (len < 20) return false;
    v.sport = be16(l4);
    v.dport = be16(l4 + 2);
    const size_t off = static_cast<size_t>(l4[12] >> 4) * 4;
    if (off < 20 || off > len) return false;
    const uint8_t* payload = l4 + off;
    const size_t payloadLen = len - off;
    // DNS over TCP: a 2-byte length, then the message; only a message whole in this segment
    // is read (the first, when a client sends several at once).
    if (payloadLen < 2) return false;
    const size_t msgLen = be16(payload);
    if (msgLen == 0 || msgLen > payloadLen - 2) return false;
    v.dns = payload + 2;
    v.dnsLen = msgLen;
    return true;
  }
  return false;
}

}  // namespace

std::optional<Action> parseAction(std::string_view name) {
  if (name == "nxdomain") return Action::kNxdomain;
  if (name == "servfail") return Action::kServfail;
  if (name == "refused") return Action::kRefused;
  if (name == "drop") return Action::kDrop;
  if (name == "delay") return Action::kDelay;
  return std::nullopt;
}

std::string_view actionName(Action a) {
  switch (a) {
    case Action::kNxdomain:
      return "nxdomain";
    case Action::kServfail:
      return "servfail";
    case Action::kRefused:
      return "refused";
    case Action::kDrop:
      return "drop";
    case Action::kDelay:
      return "delay";
  }
  return "?";
}

std::optional<PacketView> parsePacket(const uint8_t* data, size_t len) {
  if (data == nullptr || len < 1) return std::nullopt;
  PacketView v;
  const int version = data[0] >> 4;
  if (version == 4) {
    if (len < 20) return std::nullopt;
    const size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
    const size_t total = be16(data + 2);
    if (ihl < 20 || total < ihl || total > len) return std::nullopt;
    // A fragment carries no whole message; the first one's offset is 0 but MF is set.
    if ((be16(data + 6) & (kIpv4MoreFragments | kIpv4Offset)) != 0) return std::nullopt;
    v.family = AF_INET;
    v.l4proto = data[9];
    std::memcpy(&v.src, data + 12, 4);
    std::memcpy(&v.dst, data + 16, 4);
    if (!parseTransport(v, data + ihl, total - ihl)) return std::nullopt;
    return v;
  }
  if (version == 6) {
    if (len < 40) return std::nullopt;
    const size_t payload = be16(data + 4);
    if (40 + payload > len) return std::nullopt;
    v.family = AF_INET6;
    v.l4proto = data[6];  // an extension header here is not UDP/TCP: left alone
    std::memcpy(&v.src, data + 8, 16);
    std::memcpy(&v.dst, data + 24, 16);
    if (!parseTransport(v, data + 40, payload)) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

Rcode DnsPolicy::rcode() const {
  return action_ == Action::kNxdomain   ? Rcode::kNxdomain
         : action_ == Action::kServfail ? Rcode::kServfail
                                        : Rcode::kRefused;
}

Decision DnsPolicy::decide(const uint8_t* data, size_t len, TcpFlows* flows) const {
  if (auto s = parseTcpSegment(data, len)) return decideTcp(data, len, *s, flows);
  Decision d;
  d.packet = parsePacket(data, len);
  if (!d.packet) return d;
  d.query = parseQuery(d.packet->dns, d.packet->dnsLen);
  if (!d.query) return d;
  d.matched = matcher_.matches(d.query->name, d.query->type);
  d.queries.emplace_back(*d.query, d.matched);
  if (!d.matched) return d;
  switch (action_) {
    case Action::kDrop:
      d.verdict = Verdict::kDrop;
      return d;
    case Action::kDelay:
      d.verdict = Verdict::kDelay;
      return d;
    case Action::kNxdomain:
    case Action::kServfail:
    case Action::kRefused:
      break;
  }
  auto answer = errorAnswer(d.packet->dns, d.packet->dnsLen, rcode());
  if (!answer) return d;  // not a query ldns can answer: untouched
  d.verdict = Verdict::kAnswer;
  d.answer = std::move(*answer);
  return d;
}

Decision DnsPolicy::decideTcp(const uint8_t* data, size_t len, const TcpSegment& s,
                              TcpFlows* flows) const {
  Decision d;
  d.packet = parsePacket(data, len);
  if (flows != nullptr) flows->seen(s);
  // Handshakes (and data on a SYN: TCP Fast Open), resets and bare ACKs pass.
  if ((s.flags & (kTcpSyn | kTcpRst)) != 0 || s.payloadLen == 0) return d;
  const bool firstData = flows != nullptr && flows->takeFirstData(s);
  // The segment's messages: all of them when it holds only whole ones, else the first whole one
  // (which drop and delay can still act on).
  auto whole = splitMessages(s.payload, s.payloadLen);
  std::vector<std::pair<const uint8_t*, size_t>> messages;
  if (whole) {
    messages = *whole;
  } else if (d.packet) {
    messages.emplace_back(d.packet->dns, d.packet->dnsLen);
  }
  bool allMatch = whole.has_value();
  for (const auto& [msg, n] : messages) {
    auto q = parseQuery(msg, n);
    if (!q) {
      allMatch = false;
      continue;
    }
    const bool m = matcher_.matches(q->name, q->type);
    allMatch = allMatch && m;
    d.matched = d.matched || m;
    if (!d.query) d.query = *q;
    d.queries.emplace_back(std::move(*q), m);
  }
  if (!d.matched) return d;
  if (action_ == Action::kDrop || action_ == Action::kDelay) {
    d.verdict = action_ == Action::kDrop ? Verdict::kDrop : Verdict::kDelay;
    return d;
  }
  // An error answer must stand for every message of the segment: the server sees none of them.
  std::vector<uint8_t> stream;
  if (allMatch && len <= kMaxRewrite) stream = framedAnswers(messages);
  if (stream.empty()) {
    d.tcpPassed = true;
    return d;
  }
  d.replacement = resetInPlace(data, s);
  if (firstData) {
    d.verdict = Verdict::kAnswer;
    d.toClient = serverSegment(s, kTcpAck | kTcpPsh | kTcpFin, stream);
  } else {
    d.verdict = Verdict::kReset;
    d.toClient = serverSegment(s, kTcpRst | kTcpAck, {});
  }
  return d;
}

std::vector<uint8_t> DnsPolicy::framedAnswers(
    const std::vector<std::pair<const uint8_t*, size_t>>& messages) const {
  std::vector<uint8_t> stream;
  for (const auto& [msg, n] : messages) {
    auto answer = errorAnswer(msg, n, rcode());
    if (!answer || answer->size() > 0xffff) return {};
    stream.push_back(static_cast<uint8_t>(answer->size() >> 8));
    stream.push_back(static_cast<uint8_t>(answer->size()));
    stream.insert(stream.end(), answer->begin(), answer->end());
  }
  return stream;
}

void DnsStats::count(const Decision& d, Verdict carriedOut) {
  ++packets;
  if (d.tcpPassed) ++tcpPassed;
  if (carriedOut == Verdict::kReset) ++resets;
  for (const auto& [query, isMatch] : d.queries) {
    ++queries;
    NameCounts* n = &otherNames;
    const std::string name = normalizeName(query.name);
    if (auto it = names.find(name); it != names.end()) {
      n = &it->second;
    } else if (names.size() < kMaxNames) {
      n = &names[name];
    }
    ++n->seen;
    if (!isMatch) continue;
    ++matched;
    ++n->matched;
    switch (carriedOut) {
      case Verdict::kAnswer:
        ++answered;
        ++n->answered;
        break;
      case Verdict::kDrop:
        ++dropped;
        ++n->dropped;
        break;
      case Verdict::kDelay:
        ++delayed;
        ++n->delayed;
        break;
      case Verdict::kReset:
      case Verdict::kAccept:
        break;
    }
  }
}

nlohmann::json DnsStats::toJson() const {
  auto counts = [](const NameCounts& c) {
    return nlohmann::json{{"seen", c.seen},
                          {"matched", c.matched},
                          {"answered", c.answered},
                          {"dropped", c.dropped},
                          {"delayed", c.delayed}};
  };
  nlohmann::json j{{"packets", packets},
                   {"queries", queries},
                   {"matched", matched},
                   {"answered", answered},
                   {"dropped", dropped},
                   {"delayed", delayed},
                   {"releasedAtStop", releasedAtStop},
                   {"answerErrors", answerErrors},
                   {"overflow", overflow},
                   {"resets", resets},
                   {"tcpPassed", tcpPassed},
                   {"names", nlohmann::json::object()}};
  for (const auto& [name, c] : names) j["names"][name] = counts(c);
  if (otherNames.seen > 0) j["otherNames"] = counts(otherNames);
  return j;
}

}  // namespace chaosd::dns
