// netem faults through QdiscInjector on a kernel that has sch_netem (scripts/vm-test boots one;
// this suite skips itself elsewhere): delay measured as round-trip time on a UDP echo, loss
// counted over 1,000 datagrams, a filter that spares the other peer, ingress through an ifb,
// everything reverted and audited.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "injectors/network/NetemSupport.h"
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
    if (applied) EXPECT_EQ(applied->backend, "netem");
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
  EXPECT_NE(status("ip -n " + net_.a + " link show " + p.undo["ifb"].get<std::string>()), 0);
  EXPECT_LT(rttMs("2"), base + 2.0);
}

TEST_F(NetemVmQdisc, CombinedDelayLossAndNetemRate) {
  // delay + loss + netem's rate (an attribute chaosd appends to libnl's request) in one fault.
  auto p = applyOk(request(target_, "network.delay", "d-c",
                           {{"delay", kDelayNs / 2}, {"loss", 0.01}, {"rate", 50'000'000}}));
  auto audit = injector_.audit(p.undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->size(), 2u) << "its class and its filter";
  revertOk("d-c", p);
}

}  // namespace
}  // namespace chaosd
