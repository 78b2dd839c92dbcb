// network.partition through nftables, in two network namespaces of the test's own joined by
// a veth pair: real packets, the real ruleset, a table that existed before left identical.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NftablesInjector.h"
#include "tests/support/NetnsPair.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

using chaosd::testing::NetnsPair;
using chaosd::testing::runShell;
using chaosd::testing::shellStatus;

class NetworkPartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    net_ = "10.231." + std::to_string(::getpid() % 250) + ".";
    // Namespaces chaosd-np-<id>-a/-b, veth cnp-a (net.1) / cnp-b (net.2, net.3).
    ASSERT_EQ(pair_.create("np", "cnp", {net_ + "1/24"}, {net_ + "2/24", net_ + "3/24"}), "");
    a_ = pair_.a();
    b_ = pair_.b();
    // A table of someone else's, which must come out of the fault identical.
    ASSERT_EQ(shellStatus("ip netns exec " + a_ +
                          " nft 'add table inet keepme; add chain inet keepme c { type filter hook "
                          "input priority 0; policy accept; }; add rule inet keepme c tcp dport 7 "
                          "counter accept'"),
              0);
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "cnp-a";
    target_.interface.netns.name = a_;
  }
  bool ping(const std::string& host) {
    return shellStatus("ip netns exec " + a_ + " ping -c 1 -W 1 " + host) == 0;
  }
  std::string tables() { return runShell("ip netns exec " + a_ + " nft list tables"); }

  // Whether a UDP datagram sent from namespace `from` to `toAddr` (an address of namespace
  // `to`) arrives within 300 ms: one direction at a time, unlike ping or TCP.
  bool udpArrives(const std::string& from, const std::string& to, const std::string& toAddr) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(40000 + ::getpid() % 20000));
    ::inet_pton(AF_INET, toAddr.c_str(), &addr.sin_addr);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    Fd rx, tx;
    NetnsRef toNs, fromNs;
    toNs.name = to;
    fromNs.name = from;
    auto opened = runInNetns(toNs, [&]() -> Result<void> {
      rx = Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!rx || ::bind(rx.get(), sa, sizeof addr) != 0) return Error::fromErrno("bind", errno);
      return success();
    });
    if (!opened) ADD_FAILURE() << opened.error().describe();
    auto sent = runInNetns(fromNs, [&]() -> Result<void> {
      tx = Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!tx || ::sendto(tx.get(), "x", 1, 0, sa, sizeof addr) != 1) {
        return Error::fromErrno("sendto", errno);
      }
      return success();
    });
    // A drop on the sender's output hook makes sendto fail with EPERM: not arrived.
    if (!sent) return false;
    pollfd p{rx.get(), POLLIN, 0};
    return ::poll(&p, 1, 300) == 1;
  }
  std::string keepme() { return runShell("ip netns exec " + a_ + " nft list table inet keepme"); }

  FaultRequest request(nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = "np-1";
    r.stepName = "cut";
    r.faultType = "network.partition";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }

  // What the engine does before the run's first nftables fault: create the run's table.
  void holdTable(const PreparedFault& prepared) {
    ASSERT_EQ(prepared.shared.size(), 1u);
    EXPECT_EQ(prepared.shared[0].faultType, kNftablesTableFaultType);
    tableUndo_ = prepared.shared[0].undo;
    auto held = table_.apply("np-table", tableUndo_);
    ASSERT_TRUE(held.ok()) << held.error().describe();
  }
  // ... and after its last: delete it.
  void releaseTable() {
    ASSERT_TRUE(table_.revert("np-table", tableUndo_).ok());
    EXPECT_TRUE(table_.audit(tableUndo_)->empty());
  }

  NetnsPair pair_;  // deleted (with the veth pair) whatever the test did
  std::string a_, b_, net_;
  TargetSpec target_;
  NftablesTableInjector table_;
  nlohmann::json tableUndo_;
};

TEST_F(NetworkPartitionTest, CutsOnePeerLeavesTheOtherAndRevertsToTheSameRuleset) {
  ASSERT_TRUE(ping(net_ + "2"));
  const std::string before = keepme();
  NftablesInjector injector;
  auto prepared = injector.prepare(request({{"cidr", {net_ + "2/32"}}, {"direction", "to"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  holdTable(*prepared);
  auto applied = injector.apply("np-1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "nftables");
  EXPECT_NE(tables().find("table inet chaosd_run_t"), std::string::npos) << tables();
  EXPECT_FALSE(ping(net_ + "2")) << "the cut peer still answers";
  EXPECT_TRUE(ping(net_ + "3")) << "the other peer must stay reachable";
  EXPECT_EQ(injector.audit(prepared->undo)->size(), 1u) << "one rule: to the peer";

  ASSERT_TRUE(injector.revert("np-1", prepared->undo).ok());
  EXPECT_TRUE(ping(net_ + "2")) << "connectivity is back after the revert";
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
  EXPECT_TRUE(injector.revert("np-1", prepared->undo).ok()) << "a second revert is a no-op";
  const std::string empty =
      runShell("ip netns exec " + a_ + " nft list table inet chaosd_run_t | grep -c chaosd:");
  EXPECT_EQ(empty, "0\n") << "no rule of the fault is left in the run's table";
  releaseTable();
  EXPECT_EQ(tables(), "table inet keepme\n");
  EXPECT_EQ(keepme(), before) << "a table that was there before must be untouched";
  EXPECT_TRUE(injector.revert("np-1", prepared->undo).ok()) << "no table: still a no-op";
}

// direction: `to` cuts our packets to the peer and lets the peer's reach us; `from` the reverse.
TEST_F(NetworkPartitionTest, DirectionCutsOnlyTheConfiguredWay) {
  ASSERT_TRUE(udpArrives(a_, b_, net_ + "2"));
  ASSERT_TRUE(udpArrives(b_, a_, net_ + "1"));
  NftablesInjector injector;
  for (const std::string direction : {"to", "from"}) {
    auto prepared =
        injector.prepare(request({{"cidr", {net_ + "2/32"}}, {"direction", direction}}));
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    holdTable(*prepared);
    ASSERT_TRUE(injector.apply("np-1", prepared->undo).ok());
    const bool toPeer = udpArrives(a_, b_, net_ + "2");
    const bool fromPeer = udpArrives(b_, a_, net_ + "1");
    ASSERT_TRUE(injector.revert("np-1", prepared->undo).ok());
    releaseTable();
    EXPECT_EQ(toPeer, direction == "from") << "direction " << direction << ": ours to the peer";
    EXPECT_EQ(fromPeer, direction == "to") << "direction " << direction << ": the peer's to us";
  }
  EXPECT_TRUE(udpArrives(a_, b_, net_ + "2"));
  EXPECT_TRUE(udpArrives(b_, a_, net_ + "1"));
  EXPECT_EQ(tables(), "table inet keepme\n");
}

// Two faults of one run share the run's table; each revert removes its own rules only.
TEST_F(NetworkPartitionTest, TwoFaultsShareTheRunsTableAndRevertIndependently) {
  NftablesInjector injector;
  FaultRequest r1 = request({{"cidr", {net_ + "2/32"}}, {"direction", "to"}});
  FaultRequest r2 = request({{"cidr", {net_ + "3/32"}}, {"direction", "to"}});
  r2.faultId = "np-2";
  auto p1 = injector.prepare(r1);
  auto p2 = injector.prepare(r2);
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(p1->shared[0].key, p2->shared[0].key) << "one table per run and namespace";
  holdTable(*p1);
  ASSERT_TRUE(injector.apply("np-1", p1->undo).ok());
  ASSERT_TRUE(injector.apply("np-2", p2->undo).ok());
  EXPECT_FALSE(ping(net_ + "2"));
  EXPECT_FALSE(ping(net_ + "3"));
  ASSERT_TRUE(injector.revert("np-1", p1->undo).ok());
  EXPECT_TRUE(ping(net_ + "2")) << "the first fault is gone";
  EXPECT_FALSE(ping(net_ + "3")) << "the second still holds";
  EXPECT_EQ(injector.audit(p2->undo)->size(), 1u);
  ASSERT_TRUE(injector.revert("np-2", p2->undo).ok());
  EXPECT_TRUE(ping(net_ + "3"));
  releaseTable();
  EXPECT_EQ(tables(), "table inet keepme\n");
}

TEST_F(NetworkPartitionTest, RejectAnswersATcpConnectAtOnceInsteadOfDropping) {
  // A listener in B on the cut address; from A a connect is refused by our reset at once.
  NftablesInjector injector;
  auto prepared = injector.prepare(request({{"cidr", {net_ + "2/32"}},
                                            {"ports", {{{"first", 8080}, {"last", 8080}}}},
                                            {"protocol", "tcp"},
                                            {"direction", "to"},
                                            {"reject", true}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  holdTable(*prepared);
  ASSERT_TRUE(injector.apply("np-1", prepared->undo).ok());
  const auto t0 = std::chrono::steady_clock::now();
  int st = -1;
  const std::string out = runShell(
      "ip netns exec " + a_ + " timeout 5 bash -c 'echo > /dev/tcp/" + net_ + "2/8080'", &st);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("Connection refused"), std::string::npos) << out;
  EXPECT_LT(elapsed, std::chrono::seconds(2)) << "a reject answers; a drop would time out";
  EXPECT_TRUE(ping(net_ + "2")) << "only TCP port 8080 is cut";
  ASSERT_TRUE(injector.revert("np-1", prepared->undo).ok());
  releaseTable();
  EXPECT_EQ(tables(), "table inet keepme\n");
}

TEST_F(NetworkPartitionTest, NftablesLossDropsItsShareOfPackets) {
  NftablesInjector injector;
  FaultRequest r = request({{"loss", 0.3},
                            {"direction", "egress"},
                            {"to", {{"cidr", {net_ + "2/32"}}}},
                            {"backend", "nftables"}});
  r.faultType = "network.loss";
  auto prepared = injector.prepare(r);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  holdTable(*prepared);
  ASSERT_TRUE(injector.apply("np-1", prepared->undo).ok());
  // 1,000 echo requests: each is dropped with p = 0.3 on its way out (replies are not).
  const std::string out =
      runShell("ip netns exec " + a_ + " ping -q -c 1000 -i 0.002 -W 1 " + net_ + "2");
  ASSERT_TRUE(injector.revert("np-1", prepared->undo).ok());
  int sent = 0, received = 0;
  const size_t at = out.find(" packets transmitted, ");
  ASSERT_NE(at, std::string::npos) << out;
  std::sscanf(out.c_str() + out.rfind('\n', at) + 1, "%d packets transmitted, %d received", &sent,
              &received);
  ASSERT_EQ(sent, 1000) << out;
  // Binomial(1000, 0.3): mean 300 lost, sd 14.5; five sd either way.
  const int lost = sent - received;
  EXPECT_GT(lost, 300 - 73) << out;
  EXPECT_LT(lost, 300 + 73) << out;
  EXPECT_TRUE(ping(net_ + "3")) << "only traffic to the matched peer loses packets";
  releaseTable();
  EXPECT_EQ(tables(), "table inet keepme\n");
}

// chaosctl killed with SIGKILL while the partition holds: the guardian deletes our table
// from the journal alone, and traffic flows again.
TEST_F(NetworkPartitionTest, OwnerKilledTheGuardianRemovesTheTable) {
  char tmpl[] = "/tmp/chaosd-np-run-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string file = dir + "/exp.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: np}\n"
                         "targets: {link: {interface: {name: cnp-a, netns: "
                      << a_
                      << "}}}\n"
                         "steadyState:\n  baseline: {duration: 100ms}\n  probes:\n"
                         "    - {name: up, command: {argv: [/bin/true]}, every: 50ms}\n"
                         "method:\n  - {name: cut, fault: network.partition, target: link, args: "
                         "{cidr: ["
                      << net_ << "2/32]}, duration: 60s}\nreport: {dir: " << dir << "/reports}\n";
  const pid_t runner = ::fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(CHAOSCTL_PATH, CHAOSCTL_PATH, "run", "--state-dir", (dir + "/state").c_str(),
            file.c_str(), nullptr);
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (tables().find("chaosd_") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // another process applies it
  }
  ASSERT_NE(tables().find("chaosd_"), std::string::npos) << "the partition was never applied";
  EXPECT_FALSE(ping(net_ + "2"));
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  const auto killed = std::chrono::steady_clock::now();
  while (tables().find("chaosd_") != std::string::npos &&
         std::chrono::steady_clock::now() - killed < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  EXPECT_EQ(tables(), "table inet keepme\n") << "after " << took.count() << " ms";
  EXPECT_LT(took.count(), 1000);
  EXPECT_TRUE(ping(net_ + "2")) << "traffic flows again";
  std::printf("[ measure  ] partition table removed %lld ms after chaosctl was killed\n",
              static_cast<long long>(took.count()));
  std::filesystem::remove_all(dir);
}

TEST(NftablesScriptTest, BothDirectionsBothFamiliesAndPorts) {
  auto rules = nftablesRules(
      "network.partition", "eth0",
      {{"cidr", {"10.0.0.0/24", "fd00::/64"}},
       {"ports", {{{"first", 5432}, {"last", 5432}}, {{"first", 8000}, {"last", 8100}}}},
       {"direction", "both"}});
  ASSERT_TRUE(rules.ok());
  const std::string tail = " comment \"chaosd:f-1\"\n";
  EXPECT_EQ(nftablesFaultScript("chaosd_run_x", "f-1", *rules),
            "add rule inet chaosd_run_x out oifname \"eth0\" ip daddr { 10.0.0.0/24 } meta "
            "l4proto { tcp, udp } th dport { 5432, 8000-8100 } drop" +
                tail +
                "add rule inet chaosd_run_x out oifname \"eth0\" ip6 daddr { fd00::/64 } meta "
                "l4proto { tcp, udp } th dport { 5432, 8000-8100 } drop" +
                tail +
                "add rule inet chaosd_run_x in iifname \"eth0\" ip saddr { 10.0.0.0/24 } meta "
                "l4proto { tcp, udp } th sport { 5432, 8000-8100 } drop" +
                tail +
                "add rule inet chaosd_run_x in iifname \"eth0\" ip6 saddr { fd00::/64 } meta "
                "l4proto { tcp, udp } th sport { 5432, 8000-8100 } drop" +
                tail);
  EXPECT_EQ(nftablesTableScript("chaosd_run_x"),
            "table inet chaosd_run_x {\n"
            "  chain out {\n    type filter hook output priority -300; policy accept;\n  }\n"
            "  chain in {\n    type filter hook input priority -300; policy accept;\n  }\n"
            "}\n");
}

}  // namespace
}  // namespace chaosd
