// netem faults through QdiscInjector on a kernel that has sch_netem (scripts/vm-test boots one;
// this suite skips itself elsewhere): delay measured as round-trip time on a UDP echo, loss
// counted over 1,000 datagrams, a filter that spares the other peer, ingress through an ifb,
// everything reverted and audited.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>

#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/network/BackendSwitch.h"
#include "injectors/network/NetemSupport.h"
#include "injectors/network/NftablesInjector.h"
#include "tests/integration/QdiscTestNet.h"

namespace chaosd {
namespace {

using namespace qdisctest;

constexpr uint16_t kEcho = 7107;
constexpr uint16_t kSink = 7108;
constexpr int kProbes = 21;
constexpr double kDelayMs = 100.0;

// Echoes datagrams back until destroyed.
class Echo {
 public:
  explicit Echo(Fd fd) : fd_(std::move(fd)), thread_([this] { serve(); }) {}
  ~Echo() {
    stop_ = true;
    thread_.join();
  }

 private:
  void serve() {
    std::array<char, 64> buf{};
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;  // only to notice stop_
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) {
        ::sendto(fd_.get(), buf.data(), static_cast<size_t>(n), 0,
                 reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }
  Fd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class NetemVmQdisc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto has = kernelHasNetem();
    ASSERT_TRUE(has.ok()) << has.error().describe();
    if (!*has) GTEST_SKIP() << "this kernel has no sch_netem (scripts/vm-test runs these)";
    ASSERT_TRUE(net_.setUp("nq"));
    target_ = net_.target(net_.a, "cqd-a");
    for (const char* host : {"2", "3"}) {
      auto fd = socketIn(net_.b, SOCK_DGRAM, net_.net + host, kEcho, true);
      ASSERT_TRUE(fd.ok()) << fd.error().describe();
      echoes_.push_back(std::make_unique<Echo>(std::move(*fd)));
    }
    auto c = socketIn(net_.a, SOCK_DGRAM, net_.net + "1", 0, true);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    client_ = std::move(*c);
  }

  // Median round trip in ms of kProbes sequential echoes from A to host (".2"/".3").
  double rttMs(const std::string& host) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kEcho);
    ::inet_pton(AF_INET, (net_.net + host).c_str(), &to.sin_addr);
    std::vector<double> rtts;
    for (uint32_t seq = 0; seq < kProbes; ++seq) {
      const auto sent = Clock::now();
      ::sendto(client_.get(), &seq, sizeof seq, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      for (;;) {
        pollfd p{client_.get(), POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0) {
          ADD_FAILURE() << "probe " << seq << " to " << host << " unanswered";
          return -1;
        }
        uint32_t back = 0;
        if (::recv(client_.get(), &back, sizeof back, 0) == sizeof back && back == seq) break;
      }
      rtts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    }
    std::nth_element(rtts.begin(), rtts.begin() + kProbes / 2, rtts.end());
    return rtts[kProbes / 2];
  }

  PreparedFault applyOk(const FaultRequest& r) {
    auto prepared = injector_.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    if (!prepared) return {};
    auto applied = injector_.apply(r.faultId, prepared->undo);
    EXPECT_TRUE(applied.ok()) << applied.error().describe();
    if (applied) {
      EXPECT_EQ(applied->backend, "netem");
    }
    return *prepared;
  }

  void revertOk(const std::string& id, const PreparedFault& p) {
    auto reverted = injector_.revert(id, p.undo);
    ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
    auto audit = injector_.audit(p.undo);
    ASSERT_TRUE(audit.ok()) << audit.error().describe();
    EXPECT_TRUE(audit->empty()) << (*audit)[0];
  }

  NetPair net_;
  TargetSpec target_;
  QdiscInjector injector_;
  std::vector<std::unique_ptr<Echo>> echoes_;
  Fd client_;
};

constexpr int64_t kDelayNs = 100'000'000;

// network.loss and network.delay reach QdiscInjector through the backend switch, composed the
// way injectors/network/NetworkFaults.cpp does with QdiscInjector as the `netem` factory:
// `auto` picks netem on this kernel, the choice is in the undo record, and a switch of another
// process (the guardian's) reverts from that record alone.
TEST_F(NetemVmQdisc, BackendAutoPicksNetemThroughTheSwitch) {
  auto makeSwitch = [] {
    return BackendSwitch({{"netem", [] { return std::make_unique<QdiscInjector>(); },
                           [] { return kernelHasNetem(); }},
                          {"nftables", [] { return std::make_unique<NftablesInjector>(); }, {}}});
  };
  BackendSwitch sw = makeSwitch();
  const double base = rttMs("2");
  FaultRequest r = request(target_, "network.delay", "d-sw",
                           {{"delay", kDelayNs}, {"loss", 0.0}, {"backend", "auto"}});
  auto p = sw.prepare(r);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["backend"], "netem");
  auto applied = sw.apply("d-sw", p->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "netem");
  const double delayed = rttMs("2");
  std::printf("[ measure  ] through the backend switch: %.3f -> %.3f ms\n", base, delayed);
  EXPECT_NEAR(delayed - base, kDelayMs, kDelayMs * 0.05 + 2.0);
  BackendSwitch other = makeSwitch();  // nothing shared with the one that applied
  ASSERT_TRUE(other.revert("d-sw", p->undo).ok());
  auto audit = other.audit(p->undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->empty());
  EXPECT_LT(rttMs("2"), base + 2.0);
  EXPECT_EQ(runShell("tc -n " + net_.a + " qdisc show dev cqd-a").find("c4a0"), std::string::npos);
}

TEST_F(NetemVmQdisc, DelayRaisesTheRoundTripByItsValue) {
  const double base = rttMs("2");
  auto p = applyOk(request(target_, "network.delay", "d-1", {{"delay", kDelayNs}}));
  const double delayed = rttMs("2");
  std::printf("[ measure  ] RTT %.3f ms, with delay 100ms %.3f ms (+%.3f)\n", base, delayed,
              delayed - base);
  EXPECT_NEAR(delayed - base, kDelayMs, kDelayMs * 0.05 + 2.0);
  revertOk("d-1", p);
  EXPECT_LT(rttMs("2"), base + 2.0);
}

TEST_F(NetemVmQdisc, LossDropsItsShareWithinBinomialBounds) {
  auto sink = socketIn(net_.b, SOCK_DGRAM, net_.net + "2", kSink, true);
  ASSERT_TRUE(sink.ok());
  auto p = applyOk(request(target_, "network.loss", "l-1", {{"loss", 0.2}}));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kSink);
  ::inet_pton(AF_INET, (net_.net + "2").c_str(), &to.sin_addr);
  constexpr int kN = 1000;
  // First the neighbour entry: netem drops ARP too, and datagrams sent while the address is
  // unresolved wait in a short queue (CI once saw 0 of 1000 arrive). Send until one arrives.
  for (int i = 0; i < 300; ++i) {
    uint32_t warm = 0xffffffffu;
    ::sendto(client_.get(), &warm, sizeof warm, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd pf{sink->get(), POLLIN, 0};
    if (::poll(&pf, 1, 20) == 1) break;
  }
  for (uint32_t v = 0; ::recv(sink->get(), &v, sizeof v, MSG_DONTWAIT) == sizeof v;) {
  }
  // Read while sending: a socket buffer holds a few hundred datagrams only.
  std::atomic<int> got{0};
  std::atomic<bool> sent{false};
  std::thread reader([&] {
    for (;;) {
      pollfd pf{sink->get(), POLLIN, 0};
      if (::poll(&pf, 1, 500) <= 0) {
        if (sent) break;  // quiet after the last datagram
        continue;
      }
      uint32_t v = 0;
      if (::recv(sink->get(), &v, sizeof v, 0) == sizeof v) ++got;
    }
  });
  for (uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(::sendto(client_.get(), &i, sizeof i, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(sizeof i));
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  sent = true;
  reader.join();
  // Binomial(1000, 0.8): mean 800, sd 12.6; 5 sd either side.
  const double sd = std::sqrt(kN * 0.2 * 0.8);
  std::printf("[ measure  ] loss 20%%: %d of %d arrived (bounds %.0f..%.0f)\n", got.load(), kN,
              800 - 5 * sd, 800 + 5 * sd);
  EXPECT_NEAR(got.load(), 800, 5 * sd);
  revertOk("l-1", p);
}

// Two ingress delays on one interface, by sender: replies from .2 wait 100 ms, from .3 50 ms,
// each through its own ifb; either revert leaves the other working.
TEST_F(NetemVmQdisc, TwoIngressDelaysByPeerShareTheInterface) {
  const double base2 = rttMs("2");
  const double base3 = rttMs("3");
  auto p = applyOk(request(
      target_, "network.delay", "di-2",
      {{"delay", kDelayNs}, {"direction", "ingress"}, {"from", {{"cidr", {net_.net + "2/32"}}}}}));
  auto q = applyOk(request(target_, "network.delay", "di-3",
                           {{"delay", kDelayNs / 2},
                            {"direction", "ingress"},
                            {"from", {{"cidr", {net_.net + "3/32"}}}}}));
  const double d2 = rttMs("2");
  const double d3 = rttMs("3");
  std::printf("[ measure  ] two ingress delays: .2 %.3f -> %.3f ms, .3 %.3f -> %.3f ms\n", base2,
              d2, base3, d3);
  EXPECT_NEAR(d2 - base2, kDelayMs, kDelayMs * 0.05 + 2.0);
  EXPECT_NEAR(d3 - base3, kDelayMs / 2, kDelayMs * 0.025 + 2.0);
  revertOk("di-2", p);
  EXPECT_LT(rttMs("2"), base2 + 5.0);
  EXPECT_NEAR(rttMs("3") - base3, kDelayMs / 2, kDelayMs * 0.025 + 2.0) << "the other stays";
  revertOk("di-3", q);
  EXPECT_LT(rttMs("3"), base3 + 5.0);
  EXPECT_EQ(shellStatus("tc -n " + net_.a + " qdisc show dev cqd-a ingress"), 0);
  EXPECT_EQ(runShell("tc -n " + net_.a + " qdisc show dev cqd-a ingress"), "");
  EXPECT_EQ(runShell("ip -n " + net_.a + " -o link show type ifb"), "");
}

TEST_F(NetemVmQdisc, AFilterDelaysOnlyTheMatchingPeer) {
  const double base2 = rttMs("2");
  const double base3 = rttMs("3");
  auto p = applyOk(request(target_, "network.delay", "d-f",
                           {{"delay", kDelayNs}, {"to", {{"cidr", {net_.net + "2/32"}}}}}));
  const double hit = rttMs("2");
  const double miss = rttMs("3");
  std::printf("[ measure  ] filtered delay: .2 %.3f -> %.3f ms, .3 %.3f -> %.3f ms\n", base2, hit,
              base3, miss);
  EXPECT_NEAR(hit - base2, kDelayMs, kDelayMs * 0.05 + 2.0);
  EXPECT_LT(miss, base3 + 5.0) << "the other peer is not delayed";
  // A second fault on the same interface, to the other peer, alongside.
  auto q = applyOk(request(target_, "network.delay", "d-g",
                           {{"delay", kDelayNs / 2}, {"to", {{"cidr", {net_.net + "3/32"}}}}}));
  EXPECT_NEAR(rttMs("3") - base3, kDelayMs / 2, kDelayMs * 0.025 + 2.0);
  revertOk("d-f", p);
  EXPECT_LT(rttMs("2"), base2 + 5.0);
  EXPECT_NEAR(rttMs("3") - base3, kDelayMs / 2, kDelayMs * 0.025 + 2.0) << "the other stays";
  revertOk("d-g", q);
  EXPECT_LT(rttMs("3"), base3 + 5.0);
}

TEST_F(NetemVmQdisc, IngressDelayGoesThroughAnIfb) {
  const double base = rttMs("2");
  auto p = applyOk(
      request(target_, "network.delay", "d-in", {{"delay", kDelayNs}, {"direction", "ingress"}}));
  const double delayed = rttMs("2");
  std::printf("[ measure  ] ingress delay: %.3f -> %.3f ms\n", base, delayed);
  EXPECT_NEAR(delayed - base, kDelayMs, kDelayMs * 0.05 + 2.0);
  revertOk("d-in", p);
  EXPECT_NE(shellStatus("ip -n " + net_.a + " link show " + p.undo["ifb"].get<std::string>()), 0);
  EXPECT_LT(rttMs("2"), base + 2.0);
}

TEST_F(NetemVmQdisc, CombinedDelayLossAndNetemRate) {
  // delay + loss + netem's rate (an attribute chaosd appends to libnl's request) in one fault.
  auto p = applyOk(request(target_, "network.delay", "d-c",
                           {{"delay", kDelayNs / 2}, {"loss", 0.01}, {"rate", 50'000'000}}));
  auto audit = injector_.audit(p.undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->size(), 2u) << "its class and its filter";
  // The kernel's own account of the leaf: every parameter arrived, the rate included.
  const std::string shown = runShell("tc -n " + net_.a + " qdisc show dev cqd-a");
  EXPECT_NE(shown.find("delay 50ms"), std::string::npos) << shown;
  EXPECT_NE(shown.find("loss 1%"), std::string::npos) << shown;
  EXPECT_NE(shown.find("rate 50Mbit"), std::string::npos) << shown;
  revertOk("d-c", p);
}

// duplicate, corrupt and reorder: the kernel's account of each leaf, and duplicates counted.
TEST_F(NetemVmQdisc, DuplicateCorruptAndReorderReachTheKernel) {
  auto shownFor = [&](const std::string& type, const std::string& id, nlohmann::json args) {
    auto p = applyOk(request(target_, type, id, std::move(args)));
    const std::string shown = runShell("tc -n " + net_.a + " qdisc show dev cqd-a");
    revertOk(id, p);
    return shown;
  };
  std::string shown = shownFor("network.corrupt", "c-1", {{"corrupt", 0.1}});
  EXPECT_NE(shown.find("corrupt 10%"), std::string::npos) << shown;
  shown =
      shownFor("network.reorder", "r-1", {{"delay", kDelayNs / 10}, {"reorder", 0.25}, {"gap", 5}});
  EXPECT_NE(shown.find("reorder 25%"), std::string::npos) << shown;
  EXPECT_NE(shown.find("gap 5"), std::string::npos) << shown;

  auto sink = socketIn(net_.b, SOCK_DGRAM, net_.net + "2", kSink, true);
  ASSERT_TRUE(sink.ok());
  auto p = applyOk(request(target_, "network.duplicate", "dup-1", {{"duplicate", 0.5}}));
  shown = runShell("tc -n " + net_.a + " qdisc show dev cqd-a");
  EXPECT_NE(shown.find("duplicate 50%"), std::string::npos) << shown;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kSink);
  ::inet_pton(AF_INET, (net_.net + "2").c_str(), &to.sin_addr);
  constexpr int kN = 400;
  std::atomic<int> got{0};
  std::atomic<bool> sent{false};
  std::thread reader([&] {
    for (;;) {
      pollfd pf{sink->get(), POLLIN, 0};
      if (::poll(&pf, 1, 500) <= 0) {
        if (sent) break;  // quiet after the last datagram
        continue;
      }
      uint32_t v = 0;
      if (::recv(sink->get(), &v, sizeof v, 0) == sizeof v) ++got;
    }
  });
  for (uint32_t i = 0; i < kN; ++i) {
    ::sendto(client_.get(), &i, sizeof i, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  sent = true;
  reader.join();
  // Each datagram arrives once, plus once more with p = 0.5: 400 + Binomial(400, 0.5), mean
  // 600, sd 10; 5 sd either side.
  std::printf("[ measure  ] duplicate 50%%: %d arrived for %d sent\n", got.load(), kN);
  EXPECT_NEAR(got.load(), 600, 50);
  revertOk("dup-1", p);
}

// qdisc_bench's netem half, where netem is (tests/bench/ programs do not run in the VM): a
// network.delay fault applied and reverted N times through chaosd's path with its journal
// writes, against a `tc` process per change through a shell, as tools that shell out run it
// (`tc -n NS qdisc add ... root netem delay`, `tc -n NS qdisc del ... root`), in the same run;
// medians printed. Under qemu's TCG every instruction is emulated, so absolute times are the VM's,
// not a machine's; the assertion only says chaosd is not slower than tc (the bench's own figures:
// docs/benchmarks.md).
TEST_F(NetemVmQdisc, ApplyRevertCostAgainstTcProcesses) {
  constexpr int kCycles = 40;
  char tmpl[] = "/tmp/chaosd-nvq-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto journal = openJournal(dir + "/journal.db");
  ASSERT_TRUE(journal.ok()) << journal.error().describe();
  RunRecord runRec;
  runRec.runId = "nvq";
  runRec.experiment = "netem-cost";
  runRec.ownerPid = ::getpid();
  ASSERT_TRUE(journal->beginRun(runRec).ok());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto msSince = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  std::vector<double> ours;
  for (int i = 0; i < kCycles; ++i) {
    FaultRequest r =
        request(target_, "network.delay", "cost-" + std::to_string(i), {{"delay", 10'000'000}});
    const auto t0 = Clock::now();
    auto p = injector_.prepare(r);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    ASSERT_TRUE(journal->recordIntent("nvq", makeIntent(r, *p, {}, false)).ok());
    ASSERT_TRUE(injector_.apply(r.faultId, p->undo).ok());
    ASSERT_TRUE(journal->markApplied(r.faultId).ok());
    ASSERT_TRUE(injector_.revert(r.faultId, p->undo).ok());
    ASSERT_TRUE(journal->markReverted(r.faultId).ok());
    ours.push_back(msSince(t0));
  }
  std::vector<double> tc;
  const std::string tcn = "tc -n " + net_.a + " qdisc ";
  for (int i = 0; i < kCycles; ++i) {
    const auto t0 = Clock::now();
    ASSERT_EQ(shellStatus(tcn + "add dev cqd-a root handle 1: netem delay 10ms"), 0);
    ASSERT_EQ(shellStatus(tcn + "del dev cqd-a root"), 0);
    tc.push_back(msSince(t0));
  }
  std::filesystem::remove_all(dir);
  std::printf(
      "[ measure  ] netem apply + revert, %d cycles, medians: chaosd (journalled) %.2f ms, tc "
      "processes %.2f ms: %.1fx\n",
      kCycles, median(ours), median(tc), median(tc) / median(ours));
  EXPECT_LT(median(ours), median(tc));
}

}  // namespace
}  // namespace chaosd
