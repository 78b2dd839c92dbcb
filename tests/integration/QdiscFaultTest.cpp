// network.bandwidth (tbf) through QdiscInjector, for real on this kernel (htb, tbf, u32, ifb,
// mirred; no netem), in two namespaces of the test's own: the limit measured on TCP streams,
// the classful tree's filters, a user's root qdisc restored, two faults on one device, ingress
// through an ifb, the revert from the undo alone in another process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "injectors/network/NetemSupport.h"
#include "tests/integration/QdiscTestNet.h"

namespace chaosd {
namespace {

using namespace qdisctest;

constexpr double kRateMbit = 16.0;
// Shaping what comes in drops (the sender sees no queue of ours filling up, as on egress), and
// TCP's goodput then dips with every drop, more on a loaded machine (13.2 Mbit/s of 16 seen at
// load average 9): the ingress tests offer paced UDP at three times the rate and measure what
// the bucket lets through.
constexpr double kOffered = 3.0;

class QdiscFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(net_.setUp("qd"));
    target_ = net_.target(net_.a, "cqd-a");
  }

  std::string tc(const std::string& what) {
    return runShell("ip netns exec " + net_.a + " tc " + what);
  }
  std::string qdiscs() { return tc("-d qdisc show dev cqd-a"); }

  nlohmann::json bandwidth(double mbit, nlohmann::json extra = nlohmann::json::object()) {
    extra["rate"] = static_cast<uint64_t>(mbit * 1e6);
    return extra;
  }

  PreparedFault applyOk(const FaultRequest& r) {
    auto prepared = injector_.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    if (!prepared) return {};
    auto applied = injector_.apply(r.faultId, prepared->undo);
    EXPECT_TRUE(applied.ok()) << applied.error().describe();
    if (applied) {
      EXPECT_EQ(applied->backend, "tbf");
    }
    return *prepared;
  }

  void revertOk(const std::string& id, const PreparedFault& p) {
    auto reverted = injector_.revert(id, p.undo);
    ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
    auto audit = injector_.audit(p.undo);
    ASSERT_TRUE(audit.ok()) << audit.error().describe();
    EXPECT_TRUE(audit->empty()) << (*audit)[0];
    EXPECT_TRUE(injector_.revert(id, p.undo).ok()) << "a second revert is a no-op";
  }

  double mbit(const std::string& addr, uint16_t port) {
    auto m = tcpMbit(net_.a, net_.b, addr, port);
    EXPECT_TRUE(m.ok()) << m.error().describe();
    return m.valueOr(0.0);
  }

  // The rate a shaper of `expected` Mbit/s lets through. A shaper never passes more than its
  // rate, so a short measurement only falls below it when the host stalls the sender or the
  // receiver (a loaded CI machine, the sanitizer build: 9.4 of 12 Mbit/s once): up to three
  // measurements, the best one. A shaper that passes too much still fails the check.
  double shapedMbit(const std::string& addr, uint16_t port, double expected) {
    double best = 0;
    for (uint16_t attempt = 0; attempt < 3; ++attempt) {
      best = std::max(best, mbit(addr, static_cast<uint16_t>(port + 1000 * attempt)));
      if (best >= expected * 0.9) break;
    }
    return best;
  }

  NetPair net_;
  TargetSpec target_;
  QdiscInjector injector_;
};

TEST_F(QdiscFaultTest, BandwidthLimitsATcpTransferToTheRate) {
  const double before = mbit(net_.net + "2", 5001);
  auto p = applyOk(request(target_, "network.bandwidth", "bw-1", bandwidth(kRateMbit)));
  EXPECT_NE(qdiscs().find("qdisc htb c4a0: root"), std::string::npos) << qdiscs();
  EXPECT_NE(qdiscs().find("qdisc tbf"), std::string::npos) << qdiscs();
  const double limited = shapedMbit(net_.net + "2", 5002, kRateMbit);
  std::printf("[ qdisc ] unlimited %.0f Mbit/s; tbf %.0f Mbit/s: %.2f Mbit/s\n", before, kRateMbit,
              limited);
  EXPECT_NEAR(limited, kRateMbit, kRateMbit * 0.10);
  EXPECT_GT(before, kRateMbit * 4) << "the limit must be the fault's doing";
  revertOk("bw-1", p);
  EXPECT_EQ(qdiscs().find("c4a0"), std::string::npos) << qdiscs();
  EXPECT_GT(mbit(net_.net + "2", 5003), kRateMbit * 4) << "the limit is gone after the revert";
}

TEST_F(QdiscFaultTest, AFilteredFaultLimitsOnlyMatchingTraffic) {
  // By destination address, IPv4 and IPv6: .2 and ::2 limited, .3 and ::3 not.
  auto p = applyOk(
      request(target_, "network.bandwidth", "bw-f1",
              bandwidth(8, {{"to", {{"cidr", {net_.net + "2/32", net_.net6 + "2/128"}}}}})));
  const double hit = shapedMbit(net_.net + "2", 5101, 8);
  const double miss = mbit(net_.net + "3", 5102);
  const double hit6 = shapedMbit(net_.net6 + "2", 5103, 8);
  const double miss6 = mbit(net_.net6 + "3", 5104);
  std::printf("[ qdisc ] by address: .2 %.1f, .3 %.1f, ::2 %.1f, ::3 %.1f Mbit/s\n", hit, miss,
              hit6, miss6);
  EXPECT_NEAR(hit, 8, 0.8);
  EXPECT_NEAR(hit6, 8, 0.8);
  EXPECT_GT(miss, 32);
  EXPECT_GT(miss6, 32);
  revertOk("bw-f1", p);

  // By destination port and protocol.
  auto q = applyOk(request(target_, "network.bandwidth", "bw-f2",
                           bandwidth(8, {{"to", {{"ports", {{{"first", 5200}, {"last", 5203}}}}}},
                                         {"protocol", "tcp"}})));
  const double portHit = mbit(net_.net + "2", 5202);
  const double portMiss = mbit(net_.net + "2", 5204);
  std::printf("[ qdisc ] by port: 5202 %.1f, 5204 %.1f Mbit/s\n", portHit, portMiss);
  EXPECT_NEAR(portHit, 8, 0.8);
  EXPECT_GT(portMiss, 32);
  revertOk("bw-f2", q);
}

TEST_F(QdiscFaultTest, AUsersRootQdiscIsRestoredIdentically) {
  for (const std::string& config :
       {std::string("handle 8: tbf rate 50mbit burst 32kb latency 40ms"),
        std::string("handle 9: tbf rate 7mbit burst 10kb limit 30000 mpu 64"),
        std::string("tbf rate 1gbit burst 200kb latency 5ms peakrate 2gbit mtu 2000"),
        std::string("handle 6: pfifo limit 77"), std::string("handle 3: bfifo limit 30000")}) {
    ASSERT_EQ(shellStatus("ip netns exec " + net_.a + " tc qdisc add dev cqd-a root " + config), 0);
    const std::string before = qdiscs();
    auto p = applyOk(request(target_, "network.bandwidth", "bw-r", bandwidth(kRateMbit)));
    EXPECT_EQ(qdiscs().find(before), std::string::npos) << "ours replaced it while applied";
    revertOk("bw-r", p);
    EXPECT_EQ(qdiscs(), before) << config;
    ASSERT_EQ(shellStatus("ip netns exec " + net_.a + " tc qdisc del dev cqd-a root"), 0);
  }
}

TEST_F(QdiscFaultTest, TwoFaultsOnOneInterfaceRevertInEitherOrder) {
  ASSERT_EQ(shellStatus("ip netns exec " + net_.a +
                        " tc qdisc add dev cqd-a root handle 5: tbf rate "
                        "200mbit burst 64kb latency 20ms"),
            0);
  const std::string before = qdiscs();
  for (bool firstFirst : {true, false}) {
    auto p1 = applyOk(request(target_, "network.bandwidth", "two-1",
                              bandwidth(8, {{"to", {{"cidr", {net_.net + "2"}}}}})));
    auto p2 = applyOk(request(target_, "network.bandwidth", "two-2",
                              bandwidth(12, {{"to", {{"cidr", {net_.net + "3"}}}}})));
    EXPECT_EQ(p1.undo["prior"], p2.undo["prior"]) << "both carry the user's root";
    EXPECT_NEAR(shapedMbit(net_.net + "2", 5301, 8), 8, 0.8);
    EXPECT_NEAR(shapedMbit(net_.net + "3", 5302, 12), 12, 1.2);
    const auto& [goneId, gone] = firstFirst ? std::pair{"two-1", p1} : std::pair{"two-2", p2};
    const auto& [keptId, kept] = firstFirst ? std::pair{"two-2", p2} : std::pair{"two-1", p1};
    revertOk(goneId, gone);
    EXPECT_FALSE(injector_.audit(kept.undo)->empty()) << "the other fault is still there";
    const double freed = mbit(net_.net + (firstFirst ? "2" : "3"), 5303);
    const double held = shapedMbit(net_.net + (firstFirst ? "3" : "2"), 5304, firstFirst ? 12 : 8);
    EXPECT_GT(freed, 32);
    EXPECT_NEAR(held, firstFirst ? 12 : 8, firstFirst ? 1.2 : 0.8);
    // The last one reverted from its undo alone, in another process (as the guardian would).
    const pid_t child = ::fork();
    if (child == 0) {
      QdiscInjector fresh;
      ::_exit(fresh.revert(keptId, kept.undo).ok() ? 0 : 1);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_TRUE(injector_.audit(kept.undo)->empty());
    EXPECT_EQ(qdiscs(), before) << "the user's root is back once the last fault is gone";
  }
}

TEST_F(QdiscFaultTest, NamespaceGivenByPid) {
  const pid_t child = ::fork();
  if (child == 0) {
    NetnsRef ref = named(net_.a);
    auto fd = openNetns(ref);
    if (!fd || ::setns(fd->get(), CLONE_NEWNET) != 0) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  // Wait until the child is in A (its namespace link differs from ours).
  std::string link;
  for (int i = 0; i < 500 && link.empty(); ++i) {
    const std::string mine = std::filesystem::read_symlink("/proc/self/ns/net");
    const std::string its =
        std::filesystem::read_symlink("/proc/" + std::to_string(child) + "/ns/net");
    if (its != mine)
      link = its;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  TargetSpec t;
  t.name = "link";
  t.kind = TargetKind::kInterface;
  t.interface.name = "cqd-a";
  t.interface.netns.pid = child;
  auto p = applyOk(request(t, "network.bandwidth", "bw-pid", bandwidth(kRateMbit)));
  EXPECT_EQ(p.undo.value("netns", std::string()), "/proc/" + std::to_string(child) + "/ns/net");
  EXPECT_NE(qdiscs().find("qdisc htb c4a0:"), std::string::npos) << qdiscs();
  EXPECT_NEAR(shapedMbit(net_.net + "2", 5401, kRateMbit), kRateMbit, kRateMbit * 0.10);
  revertOk("bw-pid", p);
  EXPECT_EQ(qdiscs().find("c4a0"), std::string::npos);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST_F(QdiscFaultTest, IngressThroughAnIfbLimitsIncomingTrafficAndTheIfbGoes) {
  auto p = applyOk(request(target_, "network.bandwidth", "bw-in",
                           bandwidth(kRateMbit, {{"direction", "ingress"}})));
  const std::string ifb = p.undo["ifb"].get<std::string>();
  EXPECT_EQ(ifb, qdiscIfbName("bw-in"));
  EXPECT_LE(ifb.size(), 15u);
  EXPECT_EQ(shellStatus("ip -n " + net_.a + " link show " + ifb), 0);
  EXPECT_NE(qdiscs().find("qdisc ingress ffff:"), std::string::npos) << qdiscs();
  auto in = udpMbit(net_.b, net_.a, net_.net + "1", 5501, kRateMbit * kOffered);
  ASSERT_TRUE(in.ok()) << in.error().describe();
  const double out = mbit(net_.net + "2", 5502);
  std::printf("[ qdisc ] ingress limited %.2f Mbit/s, egress %.0f Mbit/s\n", *in, out);
  EXPECT_NEAR(*in, kRateMbit, kRateMbit * 0.10);
  EXPECT_GT(out, kRateMbit * 4) << "egress is not limited by an ingress fault";
  revertOk("bw-in", p);
  EXPECT_NE(shellStatus("ip -n " + net_.a + " link show " + ifb), 0) << "the ifb is gone";
  EXPECT_EQ(qdiscs().find("ingress"), std::string::npos) << qdiscs();
  auto again = tcpMbit(net_.b, net_.a, net_.net + "1", 5503);
  EXPECT_GT(again.valueOr(0), kRateMbit * 4);
}

// Two ingress faults on one interface: each steers its own packets (here by destination port)
// from the shared ingress qdisc to its own ifb; the rest is delivered as usual. Either may go
// first; the ingress qdisc goes with the last.
TEST_F(QdiscFaultTest, TwoIngressFaultsShareTheInterfaceAndRevertInEitherOrder) {
  auto port = [](int p) { return nlohmann::json{{"ports", {{{"first", p}, {"last", p}}}}}; };
  // Offered: three times the fault's rate on its port, 100 Mbit/s elsewhere.
  auto inMbit = [&](uint16_t p, double offered = 100) {
    auto m = udpMbit(net_.b, net_.a, net_.net + "1", p, offered);
    EXPECT_TRUE(m.ok()) << m.error().describe();
    return m.valueOr(0.0);
  };
  auto ifbUp = [&](const PreparedFault& f) {
    return shellStatus("ip -n " + net_.a + " link show " + f.undo["ifb"].get<std::string>()) == 0;
  };
  for (bool firstFirst : {true, false}) {
    auto p1 = applyOk(
        request(target_, "network.bandwidth", "in-1",
                bandwidth(8, {{"direction", "ingress"}, {"protocol", "udp"}, {"to", port(5701)}})));
    auto p2 = applyOk(request(
        target_, "network.bandwidth", "in-2",
        bandwidth(12, {{"direction", "ingress"}, {"protocol", "udp"}, {"to", port(5702)}})));
    ASSERT_TRUE(ifbUp(p1) && ifbUp(p2));
    EXPECT_NE(p1.undo["ifb"], p2.undo["ifb"]);
    if (firstFirst) {
      const double a = inMbit(5701, 8 * kOffered), b = inMbit(5702, 12 * kOffered);
      const double c = inMbit(5703);
      std::printf("[ qdisc ] two ingress faults: port 5701 %.2f (8), 5702 %.2f (12), 5703 %.0f\n",
                  a, b, c);
      EXPECT_NEAR(a, 8, 0.8);
      EXPECT_NEAR(b, 12, 1.2);
      EXPECT_GT(c, 80) << "traffic no fault matches is delivered unshaped";
    }
    const auto& gone = firstFirst ? p1 : p2;
    const auto& kept = firstFirst ? p2 : p1;
    const std::string goneId = firstFirst ? "in-1" : "in-2";
    const std::string keptId = firstFirst ? "in-2" : "in-1";
    revertOk(goneId, gone);
    EXPECT_FALSE(ifbUp(gone));
    EXPECT_TRUE(ifbUp(kept));
    EXPECT_FALSE(injector_.audit(kept.undo)->empty()) << "the other fault is still there";
    EXPECT_NE(qdiscs().find("qdisc ingress ffff:"), std::string::npos) << "still shared";
    const double heldRate = firstFirst ? 12 : 8;
    EXPECT_NEAR(inMbit(firstFirst ? 5702 : 5701, heldRate * kOffered), heldRate, heldRate / 10);
    EXPECT_GT(inMbit(firstFirst ? 5701 : 5702), 80) << "the reverted fault's port is free";
    revertOk(keptId, kept);
    EXPECT_FALSE(ifbUp(kept));
    EXPECT_EQ(qdiscs().find("ingress"), std::string::npos) << qdiscs();
  }
}

// A user's own ingress qdisc is not ours to add filters to: an ingress fault is refused and the
// qdisc and its filter stay as they were.
TEST_F(QdiscFaultTest, AnIngressFaultLeavesAUsersIngressQdiscAlone) {
  ASSERT_EQ(shellStatus("tc -n " + net_.a + " qdisc add dev cqd-a ingress"), 0);
  ASSERT_EQ(shellStatus("tc -n " + net_.a +
                        " filter add dev cqd-a parent ffff: protocol ip u32 match ip src " +
                        net_.net + "3/32 flowid :1"),
            0);
  const std::string before = runShell("tc -n " + net_.a + " filter show dev cqd-a ingress");
  auto p = injector_.prepare(
      request(target_, "network.bandwidth", "in-u", bandwidth(8, {{"direction", "ingress"}})));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kConflict) << p.error().describe();
  EXPECT_EQ(runShell("tc -n " + net_.a + " filter show dev cqd-a ingress"), before);
}

TEST_F(QdiscFaultTest, ARevertAfterAPartialApplyCleansUp) {
  // A leaf the kernel refuses (tbf without rate) after the root and class went in.
  auto p = injector_.prepare(request(target_, "network.bandwidth", "bw-bad", bandwidth(kRateMbit)));
  ASSERT_TRUE(p.ok());
  nlohmann::json undo = p->undo;
  undo["leaf"]["rate"] = 0;
  EXPECT_FALSE(injector_.apply("bw-bad", undo).ok());
  EXPECT_FALSE(injector_.audit(undo)->empty()) << "something of ours is there to clean";
  ASSERT_TRUE(injector_.revert("bw-bad", undo).ok());
  EXPECT_TRUE(injector_.audit(undo)->empty());
  EXPECT_EQ(qdiscs().find("c4a0"), std::string::npos) << qdiscs();
}

TEST_F(QdiscFaultTest, NetemOnAKernelWithoutItFailsClearlyAndLeavesNothing) {
  auto has = kernelHasNetem();
  ASSERT_TRUE(has.ok());
  if (*has) GTEST_SKIP() << "this kernel has netem (the NetemVm tests cover it)";
  const std::string before = qdiscs();
  for (const char* type : {"network.duplicate", "network.corrupt", "network.rate"}) {
    nlohmann::json args = {{"duplicate", 0.1}, {"corrupt", 0.1}, {"rate", 1000000}};
    auto p = injector_.prepare(request(target_, type, "nn", args));
    ASSERT_FALSE(p.ok()) << type;
    EXPECT_EQ(p.error().code(), ErrorCode::kUnsupported);
    EXPECT_NE(p.error().describe().find("sch_netem"), std::string::npos) << p.error().describe();
  }
  // An undo record for netem (as another machine's journal could hold) fails at apply too.
  auto t = injector_.prepare(request(target_, "network.bandwidth", "nn", bandwidth(8)));
  ASSERT_TRUE(t.ok());
  nlohmann::json undo = t->undo;
  undo["leaf"] = {{"kind", "netem"}, {"delayUs", 1000}, {"limit", 1000}};
  auto applied = injector_.apply("nn", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.error().describe().find("sch_netem"), std::string::npos);
  ASSERT_TRUE(injector_.revert("nn", undo).ok());
  EXPECT_TRUE(injector_.audit(undo)->empty());
  EXPECT_EQ(qdiscs(), before);
}

}  // namespace
}  // namespace chaosd
