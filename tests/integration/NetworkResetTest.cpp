// network.reset through nftables, in two network namespaces of the test's own joined by a veth
// pair: a real HTTP server in one, curl and sockets in the other. New connections to the reset
// port fail with a reset at once, established ones are reset at their next segment, other
// ports keep working, and the revert leaves the ruleset as it was.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NftablesInjector.h"
#include "tests/support/NetnsPair.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

using chaosd::testing::NetnsPair;
using chaosd::testing::runShell;

sockaddr_in addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A TCP socket opened inside a namespace (it stays there).
Fd tcpIn(const std::string& netns) {
  NetnsRef ref;
  ref.name = netns;
  Fd out;
  auto ran = runInNetns(ref, [&]() -> Result<void> {
    out = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return success();
  });
  return ran ? std::move(out) : Fd();
}

// An HTTP server in a namespace: answers every request on `port` with 200 "ok" and keeps the
// connection open until the peer closes it (so a test can hold one established).
class HttpIn {
 public:
  HttpIn(const std::string& netns, uint16_t port) : sock_(tcpIn(netns)) {
    int one = 1;
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = addr("0.0.0.0", port);
    ok_ = sock_ && ::bind(sock_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::listen(sock_.get(), 16) == 0;
    stop_ = Fd(::eventfd(0, EFD_CLOEXEC));
    if (ok_) thread_ = std::thread([this] { loop(); });
  }
  ~HttpIn() {
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return ok_; }
  // Errors the server's side saw on its connections (ECONNRESET when the client's reset came).
  int resetsSeen() const { return resets_; }

 private:
  void loop() {
    std::vector<Fd> conns;
    for (;;) {
      std::vector<pollfd> fds = {{sock_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      for (const auto& c : conns) fds.push_back({c.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0 || fds[1].revents != 0) return;
      if (fds[0].revents != 0)
        conns.emplace_back(::accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (n < 0 && errno == ECONNRESET) ++resets_;
        if (n <= 0) {
          conns[i - 2] = Fd();
          continue;
        }
        static const char kReply[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
        (void)::send(fds[i].fd, kReply, sizeof kReply - 1, MSG_NOSIGNAL);
      }
      std::erase_if(conns, [](const Fd& c) { return !c; });
    }
  }
  Fd sock_;
  Fd stop_;
  bool ok_ = false;
  std::atomic<int> resets_{0};
  std::thread thread_;
};

class NetworkResetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    net_ = "10.233." + std::to_string(::getpid() % 250) + ".";
    // Namespaces chaosd-nr-<id>-a/-b, veth cnr-a (net.1) / cnr-b (net.2, net.3).
    ASSERT_EQ(pair_.create("nr", "cnr", {net_ + "1/24"}, {net_ + "2/24", net_ + "3/24"}), "");
    a_ = pair_.a();
    b_ = pair_.b();
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "cnr-a";
    target_.interface.netns.name = a_;
    for (uint16_t port : {kReset, kOther}) {
      servers_.push_back(std::make_unique<HttpIn>(b_, port));
      ASSERT_TRUE(servers_.back()->ok()) << port;
    }
  }

  // curl from A: "<exit code> <seconds>" (curl's own clock: from its start to the failure).
  std::pair<int, double> curl(const std::string& host, uint16_t port) {
    const std::string out = runShell("ip netns exec " + a_ +
                                     " curl -s -o /dev/null --max-time 3 -w '%{exitcode} "
                                     "%{time_total}' http://" +
                                     host + ":" + std::to_string(port) + "/");
    int code = -1;
    double seconds = -1;
    std::sscanf(out.c_str(), "%d %lf", &code, &seconds);
    return {code, seconds};
  }
  std::string table() {
    return runShell("ip netns exec " + a_ + " nft list table inet chaosd_run_t 2>&1");
  }

  FaultRequest request(nlohmann::json args, const std::string& faultId = "nr-1") {
    FaultRequest r;
    r.runId = "t";
    r.faultId = faultId;
    r.stepName = "reset";
    r.faultType = "network.reset";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }
  void holdTable(const PreparedFault& prepared) {
    ASSERT_EQ(prepared.shared.size(), 1u);
    tableUndo_ = prepared.shared[0].undo;
    ASSERT_TRUE(table_.apply("nr-table", tableUndo_).ok());
  }
  void releaseTable() {
    ASSERT_TRUE(table_.revert("nr-table", tableUndo_).ok());
    EXPECT_TRUE(table_.audit(tableUndo_)->empty());
  }
  // An established connection from A to B:port, one request answered on it.
  Fd established(uint16_t port) {
    Fd s = tcpIn(a_);
    sockaddr_in to = addr(net_ + "2", port);
    EXPECT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    EXPECT_EQ(exchange(s), 0);
    return s;
  }
  // One request and its answer on `s`: 0, or the errno that ended it (2 s at most).
  static int exchange(const Fd& s) {
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    if (::send(s.get(), req, sizeof req - 1, MSG_NOSIGNAL) < 0) return errno;
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return ETIMEDOUT;
    char buf[512];
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) return errno;
    return n == 0 ? EPIPE : 0;
  }

  static constexpr uint16_t kReset = 8001;
  static constexpr uint16_t kOther = 8002;
  NetnsPair pair_;
  std::string a_, b_, net_;
  TargetSpec target_;
  std::vector<std::unique_ptr<HttpIn>> servers_;
  NftablesTableInjector table_;
  nlohmann::json tableUndo_;
};

TEST_F(NetworkResetTest, CurlFailsWithAResetAtOnceWhileOtherPortsWork) {
  ASSERT_EQ(curl(net_ + "2", kReset).first, 0) << "the server answers before the fault";
  Fd held = established(kReset);
  NftablesInjector injector;
  auto prepared = injector.prepare(
      request({{"cidr", {net_ + "2/32"}}, {"ports", {{{"first", kReset}, {"last", kReset}}}}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  holdTable(*prepared);
  ASSERT_TRUE(injector.apply("nr-1", prepared->undo).ok());
  const std::string rules = table();
  EXPECT_NE(rules.find("oifname \"cnr-a\" ip daddr 10.233."), std::string::npos) << rules;
  EXPECT_NE(rules.find("tcp dport 8001 counter packets"), std::string::npos) << rules;
  EXPECT_NE(rules.find("reject with tcp reset comment \"chaosd:nr-1\""), std::string::npos)
      << rules;

  // A new connection: curl's SYN is answered with a reset, "connection refused" (exit 7).
  const auto [code, seconds] = curl(net_ + "2", kReset);
  std::printf("[ measure  ] curl to the reset port: exit %d after %.1f ms\n", code, seconds * 1e3);
  EXPECT_EQ(code, 7);
  EXPECT_LT(seconds, 0.050);
  EXPECT_EQ(curl(net_ + "2", kOther).first, 0) << "another port of the same peer works";
  EXPECT_EQ(curl(net_ + "3", kReset).first, 0) << "the same port of another peer works";
  // The established connection: reset at its next segment.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(exchange(held), ECONNRESET);
  const double heldMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ measure  ] established connection reset after %.2f ms\n", heldMs);
  EXPECT_LT(heldMs, 50.0);

  auto reverted = injector.revert("nr-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  std::printf("[ measure  ] observed %s\n", reverted->dump().c_str());
  // curl's SYN, the held connection's request, and whatever the server's side sent meanwhile.
  EXPECT_GE((*reverted)["resetsSent"].get<uint64_t>(), 2u);
  EXPECT_EQ(table().find("reject"), std::string::npos) << table();
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
  EXPECT_EQ(curl(net_ + "2", kReset).first, 0) << "the port works again after the revert";
  releaseTable();
  EXPECT_EQ(runShell("ip netns exec " + a_ + " nft list tables"), "");
}

// direction from: the peer's segments to us are answered with a reset, so the peer's side sees
// it; our new connections get no answer (their SYN-ACK is rejected) rather than a reset.
TEST_F(NetworkResetTest, FromResetsThePeersSide) {
  Fd held = established(kReset);
  NftablesInjector injector;
  auto prepared = injector.prepare(request({{"cidr", {net_ + "2/32"}}, {"direction", "from"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  holdTable(*prepared);
  ASSERT_TRUE(injector.apply("nr-1", prepared->undo).ok());
  const std::string rules = table();
  EXPECT_NE(rules.find("iifname \"cnr-a\" ip saddr 10.233."), std::string::npos) << rules;
  EXPECT_EQ(rules.find("oifname"), std::string::npos) << rules;
  // Our request goes out; the server's answer comes back, is rejected, and the server's side
  // gets the reset.
  EXPECT_NE(exchange(held), 0);
  EXPECT_TRUE(chaosd::testing::waitUntil([&] { return servers_[0]->resetsSeen() > 0; },
                                         std::chrono::seconds(2)))
      << "the server saw no reset";
  auto reverted = injector.revert("nr-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_GE((*reverted)["resetsSent"].get<uint64_t>(), 1u);
  releaseTable();
}

}  // namespace
}  // namespace chaosd
