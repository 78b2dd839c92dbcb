// dns.error for real: dnsmasq serves db.internal and web.internal in one network namespace of
// the test's own, the client is in the other (joined by veth), and the fault applies to the
// client's veth. Queries are built with ldns and sent over UDP (and TCP) from a socket in the
// client's namespace (and with `dig +tcp`); the answers are read with ldns. Asserted: ordinary
// names answered by dnsmasq, matching ones get the chosen rcode over UDP and inside the TCP
// stream (neither side keeping the connection), a reused TCP connection reset, drop times out,
// delay adds the delay (±10%), everything back after revert and after kill -9 of the owner, and
// the kernel's ruleset and queues clean.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/dns/DnsErrorInjector.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/NetnsPair.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

// Last: ldns/common.h defines bool, true and false as macros, which breaks C++ headers
// included after it.
extern "C" {
#include <ldns/ldns.h>
}

extern char** environ;

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::NetnsPair;
using chaosd::testing::runCommand;
using chaosd::testing::runShell;
using chaosd::testing::waitUntil;
using nlohmann::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

struct Answer {
  bool answered = false;
  int rcode = -1;
  std::vector<std::string> addresses;
  double ms = 0;
};

// A socket opened inside a namespace (it stays there).
Fd socketIn(const std::string& netns, int family, int type) {
  NetnsRef ref;
  ref.name = netns;
  Fd out;
  auto ran = runInNetns(ref, [&]() -> Result<void> {
    out = Fd(::socket(family, type | SOCK_CLOEXEC, 0));
    return success();
  });
  return ran ? std::move(out) : Fd();
}

std::vector<uint8_t> queryWire(const std::string& name, ldns_rr_type type, uint16_t id) {
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  ldns_pkt* q = ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD);
  ldns_pkt_set_id(q, id);
  uint8_t* wire = nullptr;
  size_t size = 0;
  ldns_pkt2wire(&wire, q, &size);
  std::vector<uint8_t> out(wire, wire + size);
  free(wire);
  ldns_pkt_free(q);
  return out;
}

Answer readAnswer(const uint8_t* data, size_t len, uint16_t id, Answer a) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, data, len) != LDNS_STATUS_OK || ldns_pkt_id(p) != id) {
    if (p != nullptr) ldns_pkt_free(p);
    return a;
  }
  a.answered = true;
  a.rcode = ldns_pkt_get_rcode(p);
  ldns_rr_list* an = ldns_pkt_answer(p);
  for (size_t i = 0; an != nullptr && i < ldns_rr_list_rr_count(an); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(an, i);
    if (ldns_rr_rd_count(rr) == 0) continue;
    char* s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    a.addresses.emplace_back(s);
    free(s);
  }
  ldns_pkt_free(p);
  return a;
}

// One query from `netns` to server:53 over UDP or TCP, waiting up to `timeout`.
Answer ask(const std::string& netns, const std::string& server, const std::string& name,
           ldns_rr_type type = LDNS_RR_TYPE_A, bool tcp = false,
           std::chrono::milliseconds timeout = 2000ms) {
  static uint16_t nextId = 0x1200;
  const uint16_t id = ++nextId;
  const auto wire = queryWire(name, type, id);
  Fd s = socketIn(netns, AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server.c_str(), &to.sin_addr);
  Answer a;
  const auto t0 = SteadyClock::now();
  const auto deadline = t0 + timeout;
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return a;
  // Sized once, then filled: GCC 12 at -O2 warns (-Wstringop-overread, a false positive) on
  // push_back followed by insert into the same small vector.
  const size_t prefix = tcp ? 2 : 0;
  std::vector<uint8_t> out(prefix + wire.size());
  if (tcp) {
    out[0] = static_cast<uint8_t>(wire.size() >> 8);
    out[1] = static_cast<uint8_t>(wire.size());
  }
  std::copy(wire.begin(), wire.end(), out.begin() + static_cast<std::ptrdiff_t>(prefix));
  if (::send(s.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    return a;
  }
  std::vector<uint8_t> in(65536);
  size_t have = 0;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    pollfd p{s.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return a;
    const ssize_t n = ::recv(s.get(), in.data() + have, in.size() - have, 0);
    if (n <= 0) return a;
    have += static_cast<size_t>(n);
    a.ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
    if (!tcp) return readAnswer(in.data(), have, id, a);
    if (have >= 2 && have >= 2 + static_cast<size_t>(in[0] << 8 | in[1])) {
      return readAnswer(in.data() + 2, have - 2, id, a);
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

class DnsFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!fs::exists("/usr/sbin/dnsmasq")) GTEST_SKIP() << "dnsmasq is not installed";
    net_ = "10.233." + std::to_string(::getpid() % 250) + ".";
    server_ = net_ + "2";
    net6_ = "fd00:233:" + std::to_string(::getpid() % 250) + "::";
    server6_ = net6_ + "2";
    // Client in A (net.1), resolver in B (net.2), and the same over IPv6.
    ASSERT_EQ(pair_.create("dns", "cdn", {net_ + "1/24", net6_ + "1/64"},
                           {server_ + "/24", server6_ + "/64"}),
              "");
    ASSERT_EQ(pair_.waitUp(5s), "");
    a_ = pair_.a();
    target_.name = "client-link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "cdn-a";
    target_.interface.netns.name = a_;
    const std::string cmd = "exec ip netns exec " + pair_.b() +
                            " /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts "
                            "--bind-interfaces --listen-address=" +
                            server_ + " --listen-address=" + server6_ +
                            " --port=53 --user=root --pid-file= "
                            "--address=/db.internal/10.9.9.9 --address=/web.internal/10.9.9.10";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    ASSERT_EQ(
        ::posix_spawn(&dnsmasq_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ),
        0);
    ASSERT_TRUE(waitUntil(
        [&] { return ask(a_, server_, "web.internal", LDNS_RR_TYPE_A, false, 200ms).answered; },
        10s))
        << "dnsmasq never answered";
  }
  void TearDown() override {
    if (dnsmasq_ > 0) {
      ::kill(dnsmasq_, SIGTERM);
      ::waitpid(dnsmasq_, nullptr, 0);
    }
  }

  FaultRequest request(json args, const std::string& faultId = "dns-1") {
    FaultRequest r;
    r.runId = "t";
    r.faultId = faultId;
    r.stepName = "dns";
    r.faultType = "dns.error";
    r.target = &target_;
    json full = {{"port", 53}, {"protocol", "both"}, {"limit", 1000}};
    full.update(args);
    r.args = std::move(full);
    return r;
  }
  std::string tables() { return runShell("ip netns exec " + a_ + " nft list tables"); }
  std::string queues() {
    return runShell("ip netns exec " + a_ + " cat /proc/net/netfilter/nfnetlink_queue");
  }
  Answer q(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A, bool tcp = false,
           std::chrono::milliseconds timeout = 2000ms) {
    return ask(a_, server_, name, type, tcp, timeout);
  }
  // `dig +tcp` from the client's namespace: its status ("NOERROR", "NXDOMAIN"..., or "timeout"
  // when no answer came), its whole output, and the records of a second, `+short` run.
  struct Dig {
    std::string status, out, records;
  };
  Dig digTcp(const std::string& name, const std::string& type = "A", int seconds = 2,
             const std::string& server = "") {
    const std::string dig = "ip netns exec " + a_ +
                            " dig +tcp +tries=1 +time=" + std::to_string(seconds) + " @" +
                            (server.empty() ? server_ : server) + " " + name + " " + type;
    Dig d;
    d.out = runCommand(dig + " 2>&1");
    const auto at = d.out.find("status: ");
    if (at == std::string::npos) {
      d.status = "timeout";
      return d;
    }
    d.status = d.out.substr(at + 8, d.out.find(',', at) - at - 8);
    d.records = runCommand(dig + " +short 2>&1");
    return d;
  }
  // ESTABLISHED TCP connections to port 53 in `netns`.
  std::string dnsConnections(const std::string& netns) {
    return runShell("ip netns exec " + netns +
                    " ss -Htn state established '( sport = :53 or dport = :53 )'");
  }
  void expectAddress(const Answer& a, const std::string& addr) {
    EXPECT_TRUE(a.answered);
    EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
    EXPECT_EQ(a.addresses, std::vector<std::string>{addr});
  }

  NetnsPair pair_;
  pid_t dnsmasq_ = -1;
  std::string a_, net_, server_, net6_, server6_;
  TargetSpec target_;
  std::shared_ptr<DnsContext> context_ = std::make_shared<DnsContext>();
  DnsErrorInjector injector_{context_};
};

TEST_F(DnsFaultTest, NxdomainForMatchingNamesOthersAnsweredRevertRestores) {
  expectAddress(q("api.db.internal"), "10.9.9.9");
  auto p = injector_.prepare(request({{"names", {"*.db.internal"}}, {"action", "nxdomain"}}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  auto applied = injector_.apply("dns-1", p->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  const std::string table = runShell("ip netns exec " + a_ + " nft list table inet chaosd_dns_1");
  EXPECT_NE(table.find("oifname \"cdn-a\""), std::string::npos) << table;
  EXPECT_NE(table.find("udp dport 53"), std::string::npos) << table;

  const Answer nx = q("api.db.internal");
  EXPECT_TRUE(nx.answered);
  EXPECT_EQ(nx.rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(nx.addresses.empty());
  EXPECT_EQ(q("API.DB.Internal.", LDNS_RR_TYPE_AAAA).rcode, LDNS_RCODE_NXDOMAIN);
  expectAddress(q("web.internal"), "10.9.9.10");
  expectAddress(q("db.internal"), "10.9.9.9");  // the glob needs a label before .db.internal
  std::printf("[ measure  ] forged NXDOMAIN answered in %.3f ms\n", nx.ms);

  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  std::printf("[ measure  ] observed %s\n", reverted->dump().c_str());
  EXPECT_EQ((*reverted)["answered"], 2);
  EXPECT_EQ((*reverted)["queries"], 4);
  EXPECT_EQ((*reverted)["names"]["api.db.internal"]["answered"], 2);
  EXPECT_EQ((*reverted)["names"]["web.internal"]["seen"], 1);
  EXPECT_EQ((*reverted)["names"]["web.internal"]["matched"], 0);
  expectAddress(q("api.db.internal"), "10.9.9.9");
  EXPECT_EQ(tables(), "");
  EXPECT_EQ(queues(), "");
  auto audit = injector_.audit(p->undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->empty());
  EXPECT_TRUE(injector_.revert("dns-1", p->undo).ok()) << "a second revert";
}

TEST_F(DnsFaultTest, ServfailAndRefusedOnlyForTheGivenTypes) {
  for (const auto& [action, rcode] : std::vector<std::pair<std::string, int>>{
           {"servfail", LDNS_RCODE_SERVFAIL}, {"refused", LDNS_RCODE_REFUSED}}) {
    SCOPED_TRACE(action);
    auto p = injector_.prepare(
        request({{"names", {"web.internal"}}, {"types", {"AAAA"}}, {"action", action}}));
    ASSERT_TRUE(p.ok()) << p.error().describe();
    ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
    EXPECT_EQ(q("web.internal", LDNS_RR_TYPE_AAAA).rcode, rcode);
    expectAddress(q("web.internal", LDNS_RR_TYPE_A), "10.9.9.10");
    ASSERT_TRUE(injector_.revert("dns-1", p->undo).ok());
    EXPECT_EQ(tables(), "");
  }
}

// Error answers inside the TCP stream: `dig +tcp` gets NXDOMAIN/SERVFAIL/REFUSED for matching
// names and dnsmasq's answers for the others; neither side keeps the connection afterwards.
TEST_F(DnsFaultTest, TcpQueriesGetTheErrorOthersTheRealAnswer) {
  ASSERT_EQ(digTcp("api.db.internal").status, "NOERROR");
  for (const auto& [action, status] : std::vector<std::pair<std::string, std::string>>{
           {"nxdomain", "NXDOMAIN"}, {"servfail", "SERVFAIL"}, {"refused", "REFUSED"}}) {
    SCOPED_TRACE(action);
    auto p = injector_.prepare(
        request({{"names", {"*.db.internal"}}, {"action", action}, {"protocol", "tcp"}}));
    ASSERT_TRUE(p.ok()) << p.error().describe();
    ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
    const Dig got = digTcp("api.db.internal");
    const std::string& out = got.out;
    EXPECT_EQ(got.status, status) << out;
    // A clean answer: dig complains of no error, truncation or broken stream.
    for (const char* bad : {"communications error", "malformed", "WARNING", "Truncated"}) {
      EXPECT_EQ(out.find(bad), std::string::npos) << out;
    }
    const Answer viaLdns = q("x.db.internal", LDNS_RR_TYPE_AAAA, true);
    EXPECT_TRUE(viaLdns.answered);
    std::printf("[ measure  ] %s over TCP: forged answer read %.3f ms after the query was sent\n",
                action.c_str(), viaLdns.ms);
    const Dig other = digTcp("web.internal");
    EXPECT_EQ(other.status, "NOERROR");
    EXPECT_EQ(other.records, "10.9.9.10\n");
    expectAddress(q("db.internal", LDNS_RR_TYPE_A, true), "10.9.9.9");
    // The server's side was reset by the rewritten query; the client's closed after our FIN.
    EXPECT_TRUE(waitUntil([&] { return dnsConnections(pair_.b()).empty(); }, 3s))
        << dnsConnections(pair_.b());
    EXPECT_TRUE(waitUntil([&] { return dnsConnections(a_).empty(); }, 3s)) << dnsConnections(a_);
    auto reverted = injector_.revert("dns-1", p->undo);
    ASSERT_TRUE(reverted.ok());
    std::printf("[ measure  ] observed %s\n", reverted->dump().c_str());
    EXPECT_EQ((*reverted)["answered"], 3);  // dig's twice, ldns's once
    EXPECT_EQ((*reverted)["answerErrors"], 0);
    EXPECT_EQ((*reverted)["resets"], 0);
    EXPECT_EQ(tables(), "");
    EXPECT_EQ(digTcp("api.db.internal").records, "10.9.9.9\n");
  }
}

// A matching query on a connection that already carried one: both sides are reset (answers to
// earlier queries could be in flight); the client's next connection gets the error.
TEST_F(DnsFaultTest, TcpReusedConnectionIsResetThenTheNextOneAnswered) {
  auto p = injector_.prepare(request({{"names", {"*.db.internal"}}, {"action", "nxdomain"}}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  Fd s = socketIn(a_, AF_INET, SOCK_STREAM);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server_.c_str(), &to.sin_addr);
  ASSERT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  auto sendQuery = [&](const std::string& name, uint16_t id) {
    const auto wire = queryWire(name, LDNS_RR_TYPE_A, id);
    std::vector<uint8_t> out(2 + wire.size());
    out[0] = static_cast<uint8_t>(wire.size() >> 8);
    out[1] = static_cast<uint8_t>(wire.size());
    std::copy(wire.begin(), wire.end(), out.begin() + 2);
    return ::send(s.get(), out.data(), out.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(out.size());
  };
  ASSERT_TRUE(sendQuery("web.internal", 1));
  std::vector<uint8_t> in(4096);
  pollfd pf{s.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 2000), 1);
  ASSERT_GT(::recv(s.get(), in.data(), in.size(), 0), 2) << "web.internal answered";
  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(sendQuery("api.db.internal", 2));
  ASSERT_EQ(::poll(&pf, 1, 2000), 1);
  errno = 0;
  const ssize_t n = ::recv(s.get(), in.data(), in.size(), 0);
  const int err = errno;
  std::printf("[ measure  ] reused connection reset after %.3f ms\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_TRUE(waitUntil([&] { return dnsConnections(pair_.b()).empty(); }, 3s))
      << dnsConnections(pair_.b());
  EXPECT_EQ(q("api.db.internal", LDNS_RR_TYPE_A, true).rcode, LDNS_RCODE_NXDOMAIN);
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["resets"], 1);
  EXPECT_EQ((*reverted)["answered"], 1);
}

// IPv6 (the answer leaves an AF_INET6 IPPROTO_RAW socket), and glibc's own resolver over TCP
// (`options use-vc`): getaddrinfo writes its A and AAAA queries at once (one segment), both
// answered.
TEST_F(DnsFaultTest, TcpOverIpv6AndGlibcsPairedQueries) {
  ASSERT_TRUE(
      waitUntil([&] { return digTcp("web.internal", "A", 1, server6_).status == "NOERROR"; }, 10s))
      << "dnsmasq never answered over IPv6";
  const std::string etc = "/etc/netns/" + a_;
  fs::create_directories(etc);
  {
    std::FILE* f = std::fopen((etc + "/resolv.conf").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "nameserver %s\noptions use-vc attempts:1 timeout:2\n", server_.c_str());
    std::fclose(f);
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{etc};
  auto getent = [&](const std::string& name, int* status) {
    return runCommand("ip netns exec " + a_ + " getent ahosts " + name, status);
  };
  int st = -1;
  ASSERT_NE(getent("api.db.internal", &st).find("10.9.9.9"), std::string::npos);

  auto p = injector_.prepare(request({{"names", {"*.db.internal"}}, {"action", "nxdomain"}}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  const Dig v6 = digTcp("api.db.internal", "AAAA", 2, server6_);
  EXPECT_EQ(v6.status, "NXDOMAIN") << v6.out;
  EXPECT_EQ(digTcp("web.internal", "A", 2, server6_).records, "10.9.9.10\n");
  const std::string none = getent("api.db.internal", &st);
  EXPECT_EQ(st, 2) << "getent: not found; it printed " << none;
  EXPECT_NE(getent("web.internal", &st).find("10.9.9.10"), std::string::npos);
  EXPECT_TRUE(waitUntil([&] { return dnsConnections(pair_.b()).empty(); }, 3s))
      << dnsConnections(pair_.b());
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok());
  std::printf("[ measure  ] observed %s\n", reverted->dump().c_str());
  EXPECT_EQ((*reverted)["answerErrors"], 0);
  EXPECT_EQ((*reverted)["tcpPassed"], 0);
  // dig twice (the status, then +short), getaddrinfo's A and AAAA.
  EXPECT_EQ((*reverted)["names"]["api.db.internal"]["answered"], 4);
  EXPECT_NE(getent("api.db.internal", &st).find("10.9.9.9"), std::string::npos);
  EXPECT_EQ(tables(), "");
}

TEST_F(DnsFaultTest, DropTimesOutOverUdpAndTcpOthersUnaffected) {
  auto p = injector_.prepare(request({{"names", {"*.db.internal"}}, {"action", "drop"}}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  EXPECT_FALSE(q("a.db.internal", LDNS_RR_TYPE_A, false, 1000ms).answered);
  EXPECT_FALSE(q("a.db.internal", LDNS_RR_TYPE_A, true, 1000ms).answered);
  EXPECT_EQ(digTcp("a.db.internal", "A", 1).status, "timeout");
  expectAddress(q("web.internal"), "10.9.9.10");
  expectAddress(q("web.internal", LDNS_RR_TYPE_A, true), "10.9.9.10");
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_GE((*reverted)["dropped"].get<int>(), 2);
  expectAddress(q("a.db.internal"), "10.9.9.9");
  expectAddress(q("a.db.internal", LDNS_RR_TYPE_A, true), "10.9.9.9");
  EXPECT_EQ(tables(), "");
}

TEST_F(DnsFaultTest, DelayAddsTheDelayToMatchingQueriesOnly) {
  std::vector<double> base;
  for (int i = 0; i < 10; ++i) base.push_back(q("a.db.internal").ms);
  auto p = injector_.prepare(
      request({{"names", {"*.db.internal"}}, {"action", "delay"}, {"delay", 200'000'000}}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  std::vector<double> slow, other, slowTcp;
  for (int i = 0; i < 10; ++i) {
    const Answer a = q("a.db.internal");
    expectAddress(a, "10.9.9.9");
    slow.push_back(a.ms);
    other.push_back(q("web.internal").ms);
  }
  for (int i = 0; i < 3; ++i) slowTcp.push_back(q("a.db.internal", LDNS_RR_TYPE_A, true).ms);
  ASSERT_TRUE(injector_.revert("dns-1", p->undo).ok());
  const double rise = median(slow) - median(base);
  std::printf(
      "[ measure  ] delay 200ms: UDP query median %.3f -> %.3f ms (rise %.3f), other names "
      "%.3f ms, TCP %.3f ms\n",
      median(base), median(slow), rise, median(other), median(slowTcp));
  EXPECT_NEAR(rise, 200.0, 20.0);
  EXPECT_LT(median(other), 20.0);
  // The handshake passes at once, only the query waits: within 10% of the delay.
  EXPECT_NEAR(median(slowTcp), 200.0, 20.0);
  EXPECT_EQ(tables(), "");
}

TEST_F(DnsFaultTest, RevertWhileHoldingQueriesReleasesThem) {
  auto p = injector_.prepare(
      request({{"names", {"*.db.internal"}}, {"action", "delay"}, {"delay", 5'000'000'000}}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(injector_.apply("dns-1", p->undo).ok());
  Fd s = socketIn(a_, AF_INET, SOCK_DGRAM);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server_.c_str(), &to.sin_addr);
  const auto wire = queryWire("held.db.internal", LDNS_RR_TYPE_A, 77);
  ASSERT_EQ(
      ::sendto(s.get(), wire.data(), wire.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
      static_cast<ssize_t>(wire.size()));
  std::this_thread::sleep_for(100ms);  // the query reaches the interceptor (no event to await)
  const auto t0 = SteadyClock::now();
  auto reverted = injector_.revert("dns-1", p->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["releasedAtStop"], 1);
  pollfd pf{s.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 2000), 1) << "the held query reached dnsmasq at revert";
  std::printf("[ measure  ] held query answered %.1f ms after revert began\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
}

// kill -9 of `chaosctl run` while dns.error is held: the guardian deletes the fault's table from
// the journal record (the namespace stays: the test owns it), and every name resolves again.
TEST_F(DnsFaultTest, KillNineOfTheRunLeavesNoRuleBehind) {
  char tmpl[] = "/tmp/chaosd-dns-kill-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string exp = dir + "/dns-kill.yaml";
  {
    std::FILE* f = std::fopen(exp.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f,
                 "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: dns-kill}\n"
                 "targets:\n  link: {interface: {name: cdn-a, netns: %s}}\n"
                 "steadyState:\n  baseline: {duration: 200ms}\n"
                 "  recovery: {duration: 200ms}\n  probes:\n"
                 "    - {name: alive, command: {argv: [/bin/true]}, every: 100ms}\n"
                 "method:\n  - {name: nx, fault: dns.error, target: link, duration: 60s,\n"
                 "     args: {names: ['*.db.internal'], action: nxdomain}}\n",
                 a_.c_str());
    std::fclose(f);
  }
  const std::string cmd = std::string("exec ") + CHAOSCTL_PATH + " run --state-dir " + dir +
                          "/state --report-dir " + dir + "/reports " + exp + " >" + dir +
                          "/run.log 2>&1";
  pid_t run = 0;
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  ASSERT_EQ(::posix_spawn(&run, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  ASSERT_TRUE(waitUntil(
      [&] { return q("a.db.internal", LDNS_RR_TYPE_A, false, 300ms).rcode == LDNS_RCODE_NXDOMAIN; },
      30s))
      << chaosd::testing::readFile(dir + "/run.log");
  ASSERT_NE(tables().find("chaosd_"), std::string::npos);
  EXPECT_EQ(q("a.db.internal", LDNS_RR_TYPE_A, true).rcode, LDNS_RCODE_NXDOMAIN) << "over TCP";
  const auto killed = SteadyClock::now();
  ::kill(run, SIGKILL);
  ASSERT_EQ(::waitpid(run, nullptr, 0), run);
  EXPECT_TRUE(waitUntil([&] { return tables().find("chaosd_") == std::string::npos; }, 10s))
      << tables();
  std::printf("[ measure  ] kill -9 of chaosctl run to the DNS table removed: %.1f ms\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - killed).count());
  expectAddress(q("a.db.internal"), "10.9.9.9");
  expectAddress(q("a.db.internal", LDNS_RR_TYPE_A, true), "10.9.9.9");
  EXPECT_EQ(digTcp("a.db.internal").records, "10.9.9.9\n");
  EXPECT_EQ(queues(), "");
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(dir + "/state"); }, 10s));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace chaosd
