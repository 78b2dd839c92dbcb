// dns.error without root: name globs and query types, queries read and error answers written
// with ldns on bytes captured from dig, the decision for whole packets (IPv4, IPv6, UDP, TCP),
// error answers forged inside a TCP stream (seq/ack, flags, timestamps, checksums checked
// independently), TCP connections followed from their SYN, the per-name counts, the args and undo
// record, and the injector over fakes (its table and queue, revert, a second revert, audit,
// failures half-way through apply).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "injectors/dns/DnsErrorInjector.h"
#include "injectors/dns/DnsMatch.h"
#include "injectors/dns/DnsMessage.h"
#include "injectors/dns/DnsPolicy.h"
#include "injectors/dns/DnsRecords.h"
#include "injectors/dns/DnsTcp.h"
#include "tests/support/FakeDnsKernel.h"
#include "tests/support/FakeNfqueueKernel.h"

// Last: ldns/common.h defines bool, true and false as macros, which breaks C++ headers
// included after it.
extern "C" {
#include <ldns/ldns.h>
}

namespace chaosd {
namespace {

using nlohmann::json;
using Bytes = std::vector<uint8_t>;

Bytes hex(const std::string& h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// Captured from `dig Api.DB.internal.` (dig 9.18: RD, AD, EDNS with a cookie) and
// `dig _pg._tcp.db.internal SRV +noedns`.
const Bytes kQueryA = hex(
    "8a4c012000010000000000010341706902444208696e7465726e616c000001000100002904d000000000000c000a"
    "000894a1097ebf0e36e3");
const Bytes kQuerySrv =
    hex("0a8901200001000000000000035f7067045f74637002646208696e7465726e616c0000210001");

// An IPv4 UDP packet from 10.0.0.1:40000 to 10.0.0.2:53 carrying `dns`.
Bytes udp4(const Bytes& dns) {
  Bytes p(28, 0);
  p[0] = 0x45;
  const size_t total = 28 + dns.size();
  p[2] = static_cast<uint8_t>(total >> 8);
  p[3] = static_cast<uint8_t>(total);
  p[8] = 64;
  p[9] = IPPROTO_UDP;
  const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
  std::copy(src, src + 4, p.begin() + 12);
  std::copy(dst, dst + 4, p.begin() + 16);
  p[20] = 40000 >> 8;
  p[21] = 40000 & 0xff;
  p[23] = 53;
  const size_t udpLen = 8 + dns.size();
  p[24] = static_cast<uint8_t>(udpLen >> 8);
  p[25] = static_cast<uint8_t>(udpLen);
  p.insert(p.end(), dns.begin(), dns.end());
  return p;
}

// An IPv6 UDP packet from fd00::1 to fd00::2 port 53.
Bytes udp6(const Bytes& dns) {
  Bytes p(48, 0);
  p[0] = 0x60;
  const size_t payload = 8 + dns.size();
  p[4] = static_cast<uint8_t>(payload >> 8);
  p[5] = static_cast<uint8_t>(payload);
  p[6] = IPPROTO_UDP;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 1;
  p[24] = 0xfd;
  p[39] = 2;
  p[40] = 0x9c;
  p[41] = 0x40;
  p[43] = 53;
  p[44] = static_cast<uint8_t>(payload >> 8);
  p[45] = static_cast<uint8_t>(payload);
  p.insert(p.end(), dns.begin(), dns.end());
  return p;
}

// An IPv4 TCP segment to port 53 carrying `dns` with its 2-byte length (or only `payload`).
Bytes tcp4(const Bytes& dns, bool withMessage = true) {
  Bytes p(40, 0);
  p[0] = 0x45;
  p[9] = IPPROTO_TCP;
  p[20] = 0x9c;
  p[21] = 0x41;
  p[23] = 53;
  p[32] = 5 << 4;
  if (withMessage) {
    p.push_back(static_cast<uint8_t>(dns.size() >> 8));
    p.push_back(static_cast<uint8_t>(dns.size()));
    p.insert(p.end(), dns.begin(), dns.end());
  }
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  return p;
}

// A TCP segment from 10.0.0.1:40001 (or fd00::1) to port 53 with `flags`, `seq`, `ack`, a
// timestamps option (TSval 777, TSecr 555) when `ts`, carrying `payload` as is.
Bytes tcpSeg(int family, uint8_t flags, uint32_t seq, uint32_t ack, const Bytes& payload,
             bool ts = true) {
  const bool v6 = family == AF_INET6;
  const size_t ipLen = v6 ? 40 : 20;
  const size_t tcpLen = ts ? 32 : 20;
  Bytes p(ipLen + tcpLen, 0);
  if (v6) {
    p[0] = 0x60;
    p[4] = static_cast<uint8_t>((tcpLen + payload.size()) >> 8);
    p[5] = static_cast<uint8_t>(tcpLen + payload.size());
    p[6] = IPPROTO_TCP;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 1;
    p[24] = 0xfd;
    p[39] = 2;
  } else {
    p[0] = 0x45;
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
    std::copy(src, src + 4, p.begin() + 12);
    std::copy(dst, dst + 4, p.begin() + 16);
    const size_t total = p.size() + payload.size();
    p[2] = static_cast<uint8_t>(total >> 8);
    p[3] = static_cast<uint8_t>(total);
  }
  uint8_t* t = p.data() + ipLen;
  t[0] = 40001 >> 8;
  t[1] = 40001 & 0xff;
  t[3] = 53;
  for (int i = 0; i < 4; ++i) {
    t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
    t[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  }
  t[12] = static_cast<uint8_t>((tcpLen / 4) << 4);
  t[13] = flags;
  t[14] = 0x01;  // window 502
  t[15] = 0xf6;
  if (ts) {
    const uint8_t opt[12] = {1, 1, 8, 10, 0, 0, 0x03, 0x09, 0, 0, 0x02, 0x2b};  // 777, 555
    std::copy(opt, opt + 12, t + 20);
  }
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

// `dns` behind its 2-byte length, as a DNS-over-TCP stream carries it.
Bytes framed(const Bytes& dns) {
  Bytes out = {static_cast<uint8_t>(dns.size() >> 8), static_cast<uint8_t>(dns.size())};
  out.insert(out.end(), dns.begin(), dns.end());
  return out;
}

// True when the TCP checksum of an IPv4/IPv6 packet verifies (computed here independently of
// the library that wrote it: the one's complement sum over the pseudo-header and the segment).
bool tcpChecksumOk(const Bytes& p) {
  const bool v6 = (p[0] >> 4) == 6;
  const size_t ipLen = v6 ? 40 : static_cast<size_t>(p[0] & 0x0f) * 4;
  const size_t tcpLen =
      v6 ? static_cast<size_t>(p[4] << 8 | p[5]) : static_cast<size_t>(p[2] << 8 | p[3]) - ipLen;
  uint64_t sum = 0;
  auto add = [&](const uint8_t* d, size_t n) {
    for (size_t i = 0; i < n; i += 2)
      sum += static_cast<uint32_t>(d[i] << 8 | (i + 1 < n ? d[i + 1] : 0));
  };
  if (v6) {
    add(p.data() + 8, 32);
  } else {
    add(p.data() + 12, 8);
  }
  sum += IPPROTO_TCP + tcpLen;
  add(p.data() + ipLen, tcpLen);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

bool ipv4ChecksumOk(const Bytes& p) {
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

dns::DnsPolicy policy(dns::Action action, std::vector<std::string> names = {"*.db.internal"},
                      std::vector<std::string> types = {}) {
  auto m = dns::QueryMatcher::create(names, types);
  EXPECT_TRUE(m.ok());
  return dns::DnsPolicy(std::move(*m), action);
}

// ---- names and types ----

TEST(DnsMatchTest, GlobsAreCaseInsensitiveAndTolerateTheTrailingDot) {
  EXPECT_TRUE(dns::globMatches("*.db.internal", "a.db.internal"));
  EXPECT_TRUE(dns::globMatches("*.db.internal", "A.B.DB.Internal."));
  EXPECT_TRUE(dns::globMatches("*.DB.internal.", "x.db.internal"));
  EXPECT_FALSE(dns::globMatches("*.db.internal", "db.internal"));
  EXPECT_FALSE(dns::globMatches("*.db.internal", "a.db.internal.evil"));
  EXPECT_TRUE(dns::globMatches("api.example.com", "API.example.com."));
  EXPECT_TRUE(dns::globMatches("db-?.internal", "db-1.internal"));
  EXPECT_FALSE(dns::globMatches("db-?.internal", "db-10.internal"));
  EXPECT_TRUE(dns::globMatches("*", "anything.at.all"));
}

TEST(DnsMatchTest, TypesComeFromLdnsAndRestrictTheMatch) {
  EXPECT_EQ(*dns::queryTypeNumber("A"), 1);
  EXPECT_EQ(*dns::queryTypeNumber("aaaa"), 28);
  EXPECT_EQ(*dns::queryTypeNumber("SRV"), 33);
  EXPECT_EQ(*dns::queryTypeNumber("TYPE65"), 65);
  EXPECT_FALSE(dns::queryTypeNumber("NOPE").ok());
  EXPECT_EQ(dns::queryTypeName(28), "AAAA");
  auto m = dns::QueryMatcher::create({"*.db.internal", "web.internal"}, {"A", "SRV"});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->matches("a.db.internal", 1));
  EXPECT_TRUE(m->matches("Web.Internal.", 33));
  EXPECT_FALSE(m->matches("a.db.internal", 28));
  EXPECT_FALSE(m->matches("other.internal", 1));
  EXPECT_FALSE(dns::QueryMatcher::create({}, {}).ok());
  EXPECT_FALSE(dns::QueryMatcher::create({"."}, {}).ok());
  auto bad = dns::QueryMatcher::create({"x"}, {"A", "BOGUS"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().describe().find("BOGUS"), std::string::npos);
}

// ---- messages ----

TEST(DnsMessageTest, ReadsTheQuestionOfCapturedQueries) {
  auto a = dns::parseQuery(kQueryA.data(), kQueryA.size());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, 0x8a4c);
  EXPECT_EQ(a->name, "Api.DB.internal");
  EXPECT_EQ(a->type, 1);
  auto srv = dns::parseQuery(kQuerySrv.data(), kQuerySrv.size());
  ASSERT_TRUE(srv);
  EXPECT_EQ(srv->name, "_pg._tcp.db.internal");
  EXPECT_EQ(srv->type, 33);
  EXPECT_FALSE(dns::parseQuery(kQueryA.data(), 7));  // truncated
  EXPECT_FALSE(dns::parseQuery(nullptr, 0));
}

TEST(DnsMessageTest, ErrorAnswerIsWhatAResolverWouldSay) {
  auto wire = dns::errorAnswer(kQueryA.data(), kQueryA.size(), dns::Rcode::kNxdomain);
  ASSERT_TRUE(wire.ok()) << wire.error().describe();
  ldns_pkt* p = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&p, wire->data(), wire->size()), LDNS_STATUS_OK);
  EXPECT_EQ(ldns_pkt_id(p), 0x8a4c);
  EXPECT_TRUE(ldns_pkt_qr(p));
  EXPECT_TRUE(ldns_pkt_rd(p));
  EXPECT_TRUE(ldns_pkt_ra(p));
  EXPECT_FALSE(ldns_pkt_aa(p));
  EXPECT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(ldns_pkt_qdcount(p), 1);
  EXPECT_EQ(ldns_pkt_ancount(p), 0);
  EXPECT_TRUE(ldns_pkt_edns(p)) << "the query had EDNS: so does the answer";
  EXPECT_EQ(ldns_pkt_edns_udp_size(p), 1232);
  char* q = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
  EXPECT_STREQ(q, "Api.DB.internal.");
  free(q);
  ldns_pkt_free(p);

  auto refused = dns::errorAnswer(kQuerySrv.data(), kQuerySrv.size(), dns::Rcode::kRefused);
  ASSERT_TRUE(refused.ok());
  ASSERT_EQ(ldns_wire2pkt(&p, refused->data(), refused->size()), LDNS_STATUS_OK);
  EXPECT_EQ(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
  EXPECT_FALSE(ldns_pkt_edns(p));
  EXPECT_EQ(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0)), LDNS_RR_TYPE_SRV);
  // An answer is no query: it gets no answer of its own.
  EXPECT_FALSE(dns::errorAnswer(refused->data(), refused->size(), dns::Rcode::kServfail).ok());
  EXPECT_FALSE(dns::parseQuery(refused->data(), refused->size()));
  ldns_pkt_free(p);
}

// ---- packets ----

TEST(DnsPolicyTest, UdpQueriesForMatchingNamesGetTheAnswerOthersPass) {
  const auto nx = policy(dns::Action::kNxdomain);
  const Bytes pkt = udp4(kQueryA);
  auto d = nx.decide(pkt.data(), pkt.size());
  EXPECT_EQ(d.verdict, dns::Verdict::kAnswer);
  EXPECT_TRUE(d.matched);
  ASSERT_TRUE(d.packet);
  EXPECT_EQ(d.packet->family, AF_INET);
  EXPECT_EQ(d.packet->sport, 40000);
  EXPECT_EQ(d.packet->dport, 53);
  EXPECT_FALSE(d.answer.empty());

  const auto other = policy(dns::Action::kNxdomain, {"*.web.internal"});
  d = other.decide(pkt.data(), pkt.size());
  EXPECT_EQ(d.verdict, dns::Verdict::kAccept);
  EXPECT_FALSE(d.matched);
  ASSERT_TRUE(d.query);

  const auto onlyAaaa = policy(dns::Action::kDrop, {"*.db.internal"}, {"AAAA"});
  EXPECT_EQ(onlyAaaa.decide(pkt.data(), pkt.size()).verdict, dns::Verdict::kAccept);
  const Bytes v6 = udp6(kQuerySrv);
  const auto drop = policy(dns::Action::kDrop, {"*.db.internal"}, {"SRV"});
  d = drop.decide(v6.data(), v6.size());
  EXPECT_EQ(d.verdict, dns::Verdict::kDrop);
  ASSERT_TRUE(d.packet);
  EXPECT_EQ(d.packet->family, AF_INET6);
  EXPECT_EQ(d.packet->dst.s6_addr[15], 2);
  EXPECT_EQ(policy(dns::Action::kDelay).decide(v6.data(), v6.size()).verdict, dns::Verdict::kDelay);
}

TEST(DnsPolicyTest, TcpQueriesAreReadWholeDropAndDelayActOnTheSegment) {
  const auto drop = policy(dns::Action::kDrop);
  const Bytes seg = tcp4(kQuerySrv);
  EXPECT_EQ(drop.decide(seg.data(), seg.size()).verdict, dns::Verdict::kDrop);
  EXPECT_EQ(policy(dns::Action::kDelay).decide(seg.data(), seg.size()).verdict,
            dns::Verdict::kDelay);
  // A handshake segment, or half a message, passes untouched.
  const Bytes syn = tcp4({}, false);
  EXPECT_EQ(drop.decide(syn.data(), syn.size()).verdict, dns::Verdict::kAccept);
  Bytes half = tcp4(kQuerySrv);
  half.resize(half.size() - 4);
  half[3] = static_cast<uint8_t>(half.size());
  EXPECT_EQ(drop.decide(half.data(), half.size()).verdict, dns::Verdict::kAccept);
  // Data on a SYN (TCP Fast Open) passes too.
  const Bytes tfo = tcpSeg(AF_INET, dns::kTcpSyn, 1000, 0, framed(kQuerySrv));
  EXPECT_EQ(drop.decide(tfo.data(), tfo.size()).verdict, dns::Verdict::kAccept);
}

// The connection's first query: answered inside the stream (answer + FIN from the resolver's
// address), the query itself rewritten into a RST the server accepts.
TEST(DnsTcpTest, FirstQueryOfAConnectionIsAnsweredAndTheServerReset) {
  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "IPv4" : "IPv6");
    const auto sf = policy(dns::Action::kServfail);
    dns::TcpFlows flows;
    const Bytes syn = tcpSeg(family, dns::kTcpSyn, 1000, 0, {});
    EXPECT_EQ(sf.decide(syn.data(), syn.size(), &flows).verdict, dns::Verdict::kAccept);
    const Bytes ack = tcpSeg(family, dns::kTcpAck, 1001, 5001, {});
    EXPECT_EQ(sf.decide(ack.data(), ack.size(), &flows).verdict, dns::Verdict::kAccept);
    EXPECT_EQ(flows.size(), 1u);
    const Bytes stream = framed(kQuerySrv);
    const Bytes q = tcpSeg(family, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, stream);
    const auto d = sf.decide(q.data(), q.size(), &flows);
    ASSERT_EQ(d.verdict, dns::Verdict::kAnswer);
    EXPECT_EQ(flows.size(), 0u);

    auto out = dns::parseTcpSegment(d.toClient.data(), d.toClient.size());
    ASSERT_TRUE(out);
    EXPECT_EQ(out->family, family);
    EXPECT_EQ(out->sport, 53);
    EXPECT_EQ(out->dport, 40001);
    EXPECT_EQ(out->src.s6_addr[family == AF_INET ? 3 : 15], 2) << "from the resolver";
    EXPECT_EQ(out->dst.s6_addr[family == AF_INET ? 3 : 15], 1);
    EXPECT_EQ(out->seq, 5001u) << "the server's next byte: the query's ack";
    EXPECT_EQ(out->ack, 1001u + stream.size());
    EXPECT_EQ(out->flags, dns::kTcpAck | dns::kTcpPsh | dns::kTcpFin);
    ASSERT_TRUE(out->timestamps);
    EXPECT_EQ(out->timestamps->first, 555u) << "TSval: the server's last, as the client echoed it";
    EXPECT_EQ(out->timestamps->second, 777u);
    EXPECT_TRUE(tcpChecksumOk(d.toClient));
    if (family == AF_INET) {
      EXPECT_TRUE(ipv4ChecksumOk(d.toClient));
    }
    auto msgs = dns::splitMessages(out->payload, out->payloadLen);
    ASSERT_TRUE(msgs);
    ASSERT_EQ(msgs->size(), 1u);
    ldns_pkt* a = nullptr;
    ASSERT_EQ(ldns_wire2pkt(&a, (*msgs)[0].first, (*msgs)[0].second), LDNS_STATUS_OK);
    EXPECT_EQ(ldns_pkt_get_rcode(a), LDNS_RCODE_SERVFAIL);
    EXPECT_EQ(ldns_pkt_id(a), 0x0a89);
    ldns_pkt_free(a);

    auto rst = dns::parseTcpSegment(d.replacement.data(), d.replacement.size());
    ASSERT_TRUE(rst);
    EXPECT_EQ(rst->sport, 40001);
    EXPECT_EQ(rst->dport, 53);
    EXPECT_EQ(rst->seq, 1001u) << "exactly the server's next expected byte (RFC 5961)";
    EXPECT_EQ(rst->flags, dns::kTcpRst | dns::kTcpAck);
    EXPECT_EQ(rst->payloadLen, 0u);
    EXPECT_EQ(d.replacement.size(), (family == AF_INET ? 20u : 40u) + 20u);
    EXPECT_TRUE(tcpChecksumOk(d.replacement));
    if (family == AF_INET) {
      EXPECT_TRUE(ipv4ChecksumOk(d.replacement));
    }
  }
}

TEST(DnsTcpTest, WithoutTimestampsTheAnswerCarriesNone) {
  const auto nx = policy(dns::Action::kNxdomain);
  dns::TcpFlows flows;
  const Bytes syn = tcpSeg(AF_INET, dns::kTcpSyn, 7, 0, {}, false);
  nx.decide(syn.data(), syn.size(), &flows);
  const Bytes q = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 8, 99, framed(kQueryA), false);
  const auto d = nx.decide(q.data(), q.size(), &flows);
  ASSERT_EQ(d.verdict, dns::Verdict::kAnswer);
  auto out = dns::parseTcpSegment(d.toClient.data(), d.toClient.size());
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->timestamps);
  EXPECT_EQ(d.toClient[20 + 12] >> 4, 5) << "a bare 20-byte TCP header";
  EXPECT_TRUE(tcpChecksumOk(d.toClient));
}

// A query on a connection whose SYN the fault did not see, or after an earlier query: answers
// to earlier queries may be in flight, so both sides are reset instead (the client asks again).
TEST(DnsTcpTest, ReusedConnectionsAreResetNotAnswered) {
  const auto nx = policy(dns::Action::kNxdomain);
  dns::TcpFlows flows;
  const Bytes q = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, framed(kQueryA));
  auto d = nx.decide(q.data(), q.size(), &flows);
  ASSERT_EQ(d.verdict, dns::Verdict::kReset);
  auto out = dns::parseTcpSegment(d.toClient.data(), d.toClient.size());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->flags, dns::kTcpRst | dns::kTcpAck);
  EXPECT_EQ(out->seq, 5001u);
  EXPECT_EQ(out->payloadLen, 0u);
  EXPECT_TRUE(tcpChecksumOk(d.toClient));
  EXPECT_EQ(nx.decide(q.data(), q.size()).verdict, dns::Verdict::kReset) << "no flow table";

  // A first query that does not match passes; a matching one after it resets.
  const Bytes syn = tcpSeg(AF_INET, dns::kTcpSyn, 1000, 0, {});
  nx.decide(syn.data(), syn.size(), &flows);
  const Bytes web = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, framed(kQuerySrv));
  const auto other = policy(dns::Action::kNxdomain, {"api.db.internal"});
  EXPECT_EQ(other.decide(web.data(), web.size(), &flows).verdict, dns::Verdict::kAccept);
  const Bytes api =
      tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh,
             1001 + static_cast<uint32_t>(framed(kQuerySrv).size()), 5100, framed(kQueryA));
  EXPECT_EQ(other.decide(api.data(), api.size(), &flows).verdict, dns::Verdict::kReset);
}

// Several messages in one segment (glibc writes its A and AAAA queries at once): answered all
// together when all match; a segment mixing matching and other queries, or holding a split
// message, cannot be answered for some and passes.
TEST(DnsTcpTest, PipelinedQueriesAnsweredTogetherOrPassed) {
  Bytes two = framed(kQueryA);
  const Bytes srv = framed(kQuerySrv);
  two.insert(two.end(), srv.begin(), srv.end());
  {
    const auto nx = policy(dns::Action::kRefused);
    dns::TcpFlows flows;
    const Bytes syn = tcpSeg(AF_INET, dns::kTcpSyn, 1000, 0, {});
    nx.decide(syn.data(), syn.size(), &flows);
    const Bytes q = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, two);
    const auto d = nx.decide(q.data(), q.size(), &flows);
    ASSERT_EQ(d.verdict, dns::Verdict::kAnswer);
    EXPECT_EQ(d.queries.size(), 2u);
    auto out = dns::parseTcpSegment(d.toClient.data(), d.toClient.size());
    ASSERT_TRUE(out);
    EXPECT_EQ(out->ack, 1001u + two.size());
    auto msgs = dns::splitMessages(out->payload, out->payloadLen);
    ASSERT_TRUE(msgs);
    EXPECT_EQ(msgs->size(), 2u);
    dns::DnsStats st;
    st.count(d, d.verdict);
    EXPECT_EQ(st.answered, 2u);
    EXPECT_EQ(st.queries, 2u);
  }
  {
    const auto onlyA = policy(dns::Action::kRefused, {"*.db.internal"}, {"A"});
    dns::TcpFlows flows;
    const Bytes syn = tcpSeg(AF_INET, dns::kTcpSyn, 1000, 0, {});
    onlyA.decide(syn.data(), syn.size(), &flows);
    const Bytes q = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, two);
    const auto d = onlyA.decide(q.data(), q.size(), &flows);
    EXPECT_EQ(d.verdict, dns::Verdict::kAccept);
    EXPECT_TRUE(d.tcpPassed);
    dns::DnsStats st;
    st.count(d, d.verdict);
    EXPECT_EQ(st.tcpPassed, 1u);
    EXPECT_EQ(st.matched, 1u);
    // drop and delay act on the whole segment.
    EXPECT_EQ(
        policy(dns::Action::kDrop, {"*.db.internal"}, {"A"}).decide(q.data(), q.size()).verdict,
        dns::Verdict::kDrop);
  }
  {
    Bytes split = framed(kQueryA);
    split.insert(split.end(), srv.begin(), srv.begin() + 5);  // the next message's start
    const auto nx = policy(dns::Action::kNxdomain);
    const Bytes q = tcpSeg(AF_INET, dns::kTcpAck | dns::kTcpPsh, 1001, 5001, split);
    const auto d = nx.decide(q.data(), q.size());
    EXPECT_EQ(d.verdict, dns::Verdict::kAccept);
    EXPECT_TRUE(d.tcpPassed);
    EXPECT_EQ(policy(dns::Action::kDrop).decide(q.data(), q.size()).verdict, dns::Verdict::kDrop)
        << "the first whole message decides drop";
  }
}

TEST(DnsTcpTest, FlowsForgetOnFinAndResetAndStayBounded) {
  dns::TcpFlows flows;
  const Bytes syn = tcpSeg(AF_INET, dns::kTcpSyn, 1000, 0, {});
  auto s = dns::parseTcpSegment(syn.data(), syn.size());
  ASSERT_TRUE(s);
  flows.seen(*s);
  EXPECT_EQ(flows.size(), 1u);
  const Bytes fin = tcpSeg(AF_INET, dns::kTcpFin | dns::kTcpAck, 1001, 5001, {});
  flows.seen(*dns::parseTcpSegment(fin.data(), fin.size()));
  EXPECT_EQ(flows.size(), 0u);
  flows.seen(*s);
  const Bytes rst = tcpSeg(AF_INET, dns::kTcpRst, 1001, 0, {});
  flows.seen(*dns::parseTcpSegment(rst.data(), rst.size()));
  EXPECT_EQ(flows.size(), 0u);
  for (uint32_t i = 0; i < dns::TcpFlows::kMaxFlows + 10; ++i) {
    dns::TcpSegment x = *s;
    x.sport = static_cast<uint16_t>(i);
    flows.seen(x);
  }
  EXPECT_EQ(flows.size(), dns::TcpFlows::kMaxFlows);
  dns::TcpSegment last = *s;
  last.sport = static_cast<uint16_t>(dns::TcpFlows::kMaxFlows + 9);
  last.seq = 1001;
  last.flags = dns::kTcpAck | dns::kTcpPsh;
  EXPECT_TRUE(flows.takeFirstData(last)) << "the newest are kept";
  dns::TcpSegment oldest = *s;
  oldest.sport = 0;
  oldest.seq = 1001;
  EXPECT_FALSE(flows.takeFirstData(oldest)) << "the oldest went first";
}

TEST(DnsPolicyTest, GarbageAndFragmentsPassUntouched) {
  const auto drop = policy(dns::Action::kDrop, {"*"});
  const Bytes junk = {0x45, 0, 0, 3};
  EXPECT_EQ(drop.decide(junk.data(), junk.size()).verdict, dns::Verdict::kAccept);
  Bytes frag = udp4(kQueryA);
  frag[6] = 0x20;  // more fragments
  EXPECT_EQ(drop.decide(frag.data(), frag.size()).verdict, dns::Verdict::kAccept);
  Bytes notDns = udp4({1, 2, 3});
  EXPECT_EQ(drop.decide(notDns.data(), notDns.size()).verdict, dns::Verdict::kAccept);
  EXPECT_EQ(drop.decide(nullptr, 0).verdict, dns::Verdict::kAccept);
}

TEST(DnsStatsTest, CountsPerNameAndCapsTheNames) {
  dns::DnsStats s;
  const auto nx = policy(dns::Action::kNxdomain);
  const Bytes pkt = udp4(kQueryA);
  const auto d = nx.decide(pkt.data(), pkt.size());
  s.count(d, d.verdict);
  s.count(d, dns::Verdict::kAccept);  // an answer that could not be sent
  const Bytes syn = tcp4({}, false);
  s.count(nx.decide(syn.data(), syn.size()), dns::Verdict::kAccept);
  const json j = s.toJson();
  EXPECT_EQ(j["packets"], 3);
  EXPECT_EQ(j["queries"], 2);
  EXPECT_EQ(j["matched"], 2);
  EXPECT_EQ(j["answered"], 1);
  EXPECT_EQ(j["names"]["api.db.internal"]["seen"], 2);
  EXPECT_EQ(j["names"]["api.db.internal"]["answered"], 1);
  dns::DnsStats many;
  for (size_t i = 0; i < dns::DnsStats::kMaxNames + 5; ++i) {
    dns::Decision x;
    x.query = dns::Query{1, "n" + std::to_string(i) + ".test", 1};
    x.queries.emplace_back(*x.query, false);
    many.count(x, dns::Verdict::kAccept);
  }
  EXPECT_EQ(many.names.size(), dns::DnsStats::kMaxNames);
  EXPECT_EQ(many.otherNames.seen, 5u);
}

// ---- args and record ----

TEST(DnsRecordsTest, ArgsAndUndoRoundTrip) {
  const json args = {{"names", {"*.db.internal"}},
                     {"types", {"A"}},
                     {"action", "delay"},
                     {"delay", 200'000'000},
                     {"port", 53},
                     {"protocol", "udp"},
                     {"limit", 10}};
  auto a = DnsErrorArgs::fromJson(args);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->action, dns::Action::kDelay);
  EXPECT_EQ(a->toJson(), args);
  DnsErrorUndo u{"f-1", "chaosd_f_1", "/run/netns/app", "veth-a", 17000, {"r"}, *a};
  auto back = DnsErrorUndo::fromJson(u.toJson());
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->toJson(), u.toJson());
  // The format as first released.
  const json v1 = json::parse(R"({"faultId":"f-1","table":"chaosd_f_1","family":"inet",
      "netns":"/run/netns/app","iface":"veth-a","queue":17000,"rules":["meta l4proto udp"],
      "names":["*.db.internal"],"types":[],"action":"nxdomain","delayNs":0,"port":53,
      "protocol":"both","limit":1000})");
  auto old = DnsErrorUndo::fromJson(v1);
  ASSERT_TRUE(old.ok()) << old.error().describe();
  EXPECT_EQ(old->args.action, dns::Action::kNxdomain);
}

TEST(DnsRecordsTest, DamagedRecordsAreRefusedAsValues) {
  json u = json::parse(R"({"faultId":"f","table":"chaosd_f","iface":"v","queue":1,
      "names":["x"],"action":"drop"})");
  EXPECT_TRUE(DnsErrorUndo::fromJson(u).ok());
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, json>>{{"table", "filter"},
                                                 {"queue", 70000},
                                                 {"queue", "x"},
                                                 {"action", "explode"},
                                                 {"names", json::array()},
                                                 {"types", {"BOGUS"}},
                                                 {"protocol", "sctp"}}) {
    json bad = u;
    bad[key] = value;
    EXPECT_FALSE(DnsErrorUndo::fromJson(bad).ok()) << key << "=" << value;
  }
  EXPECT_FALSE(DnsErrorUndo::fromJson(json::array()).ok());
  json delay = u;
  delay["action"] = "delay";
  EXPECT_FALSE(DnsErrorUndo::fromJson(delay).ok()) << "delay without delayNs";
}

// ---- the injector over fakes ----

const std::string kNs = "/run/netns/app";

class DnsSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth-a";
    target_.interface.netns.name = "app";
  }
  FaultRequest request(json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = "dns-1";
    r.stepName = "dns";
    r.faultType = "dns.error";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }
  static json nxArgs() {
    return {{"names", {"*.db.internal"}},
            {"action", "nxdomain"},
            {"port", 53},
            {"protocol", "both"},
            {"limit", 1000}};
  }
  std::vector<std::string> tables() const { return state_->tableNames(kNs); }

  std::shared_ptr<testing::FakeNetfilter> state_ = std::make_shared<testing::FakeNetfilter>();
  std::shared_ptr<testing::FakeNfqueueKernel> tablesKernel_ =
      std::make_shared<testing::FakeNfqueueKernel>(state_);
  std::shared_ptr<testing::FakeDnsKernel> dns_ = std::make_shared<testing::FakeDnsKernel>(state_);
  std::shared_ptr<DnsContext> context_ = std::make_shared<DnsContext>();
  DnsErrorInjector injector_{context_, tablesKernel_, dns_};
  TargetSpec target_;
};

TEST_F(DnsSeamTest, ApplyBindsAndAddsTheTableRevertRemovesBothTwice) {
  auto p = injector_.prepare(request(nxArgs()));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["table"], "chaosd_dns_1");
  EXPECT_EQ(p->undo["netns"], kNs);
  EXPECT_NE(p->description.find("nxdomain for *.db.internal"), std::string::npos);
  EXPECT_TRUE(tables().empty()) << "prepare reads only";
  tablesKernel_->nftQueueExpression = false;  // this machine's kernel
  auto applied = injector_.apply("dns-1", p->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["verdict"], "xt NFQUEUE v3 (nft_compat)");
  ASSERT_EQ(tables(), std::vector<std::string>{"inet chaosd_dns_1"});
  const auto* t = state_->table(kNs, "chaosd_dns_1");
  ASSERT_EQ(t->chains.size(), 1u);
  EXPECT_EQ(t->chains[0].hook, "postrouting");
  ASSERT_EQ(t->chains[0].rules.size(), 2u);
  EXPECT_NE(t->chains[0].rules[0].text.find("oifname \"veth-a\" meta l4proto udp th dport 53"),
            std::string::npos)
      << t->chains[0].rules[0].text;
  EXPECT_NE(t->chains[0].rules[1].text.find("meta l4proto tcp th dport 53"), std::string::npos);
  EXPECT_EQ(dns_->last.names, std::vector<std::string>{"*.db.internal"});
  const uint16_t q = p->undo["queue"].get<uint16_t>();
  EXPECT_TRUE(state_->netns(kNs).boundQueues.contains(q));
  EXPECT_EQ(injector_.audit(p->undo)->size(), 2u) << "table and interceptor, while applied";
  EXPECT_FALSE(injector_.apply("dns-1", p->undo).ok()) << "twice";

  dns_->stats->queries = 3;
  dns_->stats->answered = 2;
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["answered"], 2);
  EXPECT_TRUE(tables().empty());
  EXPECT_FALSE(state_->netns(kNs).boundQueues.contains(q));
  EXPECT_TRUE(injector_.audit(p->undo)->empty());
  auto again = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_TRUE(injector_.revert("dns-1", p->undo).ok()) << "after a crash: the record alone";
}

TEST_F(DnsSeamTest, ProtocolChoosesTheRulesAndTheQueueSkipsABoundOne) {
  json args = nxArgs();
  args["protocol"] = "udp";
  auto first = injector_.prepare(request(args));
  ASSERT_TRUE(first.ok());
  const uint16_t q = first->undo["queue"].get<uint16_t>();
  tablesKernel_->bindElsewhere(kNs, q);
  auto p = injector_.prepare(request(args));
  ASSERT_TRUE(p.ok());
  EXPECT_NE(p->undo["queue"].get<uint16_t>(), q);
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  EXPECT_EQ(state_->table(kNs, "chaosd_dns_1")->chains[0].rules.size(), 1u);
  ASSERT_TRUE(injector_.revert("dns-1", p->undo).ok());
}

TEST_F(DnsSeamTest, FailuresHalfWayLeaveNothing) {
  auto p = injector_.prepare(request(nxArgs()));
  ASSERT_TRUE(p.ok());
  const uint16_t q = p->undo["queue"].get<uint16_t>();
  // The table refused: the interceptor is stopped, the queue unbound.
  tablesKernel_->nftQueueExpression = false;
  tablesKernel_->failCall("addQueueTable", 1,
                          Error(ErrorCode::kKernel, "nftables refused the batch", EPERM));
  EXPECT_FALSE(injector_.apply("dns-1", p->undo).ok());
  EXPECT_TRUE(tables().empty());
  EXPECT_FALSE(state_->netns(kNs).boundQueues.contains(q));
  EXPECT_TRUE(injector_.revert("dns-1", p->undo).ok());
  EXPECT_TRUE(injector_.audit(p->undo)->empty());
  // The queue taken by another program between prepare and apply: a conflict, nothing added.
  tablesKernel_->bindElsewhere(kNs, q);
  auto busy = injector_.apply("dns-1", p->undo);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(tables().empty());
  // The namespace gone before revert: revert succeeds and says so.
  state_->netns(kNs).boundQueues.erase(q);
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  state_->removeNamespace(kNs);
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["note"], "the network namespace is gone");
  EXPECT_TRUE(injector_.audit(p->undo)->empty());
}

TEST_F(DnsSeamTest, BadArgsAndTargetsAreRefusedBeforeAnything) {
  json noNames = nxArgs();
  noNames.erase("names");
  EXPECT_FALSE(injector_.prepare(request(noNames)).ok());
  json delay = nxArgs();
  delay["action"] = "delay";
  EXPECT_FALSE(injector_.prepare(request(delay)).ok());
  TargetSpec exec;
  exec.kind = TargetKind::kExec;
  FaultRequest r = request(nxArgs());
  r.target = &exec;
  EXPECT_FALSE(injector_.prepare(r).ok());
  EXPECT_TRUE(state_->events.empty());
}

TEST(DnsFaultTypeTest, RegisteredWithItsSchema) {
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  const FaultType* t = registry.find("dns.error");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->factory);
  ASSERT_EQ(t->targetKinds.size(), 2u);
  EXPECT_EQ(t->targetKinds[0], TargetKind::kInterface);
  EXPECT_EQ(t->targetKinds[1], TargetKind::kContainer);
  ASSERT_NE(t->schema.find("names"), nullptr);
  EXPECT_TRUE(t->schema.find("names")->required);
  ASSERT_NE(t->schema.find("action"), nullptr);
  auto check = [&](json args) {
    for (const auto& c : t->schema.constraints) {
      if (auto problem = c(ArgContext{args, std::nullopt})) return problem->field;
    }
    return std::string("ok");
  };
  EXPECT_EQ(check({{"names", {"a"}}, {"action", "nxdomain"}}), "ok");
  EXPECT_EQ(check({{"names", {"a"}}, {"types", {"A", "BOGUS"}}, {"action", "drop"}}), "types[1]");
  EXPECT_EQ(check({{"names", {"a"}}, {"action", "delay"}}), "delay");
  EXPECT_EQ(check({{"names", {"a"}}, {"action", "drop"}, {"delay", 5}}), "delay");
  EXPECT_EQ(check({{"names", {"."}}, {"action", "drop"}}), "names[0]");
}

}  // namespace
}  // namespace chaosd
