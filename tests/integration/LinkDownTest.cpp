// network.down for real, in two network namespaces of the test's own joined by a veth pair: the
// link really goes down (IFF_UP), traffic across the veth stops and comes back, and after revert
// the link's addresses and routes (an extra route with a gateway and a metric in a second table
// included) are exactly as before: by the injector, by a fresh injector with only the record
// (the guardian's case), and after kill -9 of `chaosctl run`.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/LinkDownInjector.h"
#include "tests/support/NetnsPair.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::NetnsPair;
using chaosd::testing::runShell;
using chaosd::testing::shellStatus;
using chaosd::testing::waitUntil;
using nlohmann::json;

class LinkDownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    const std::string id = std::to_string(::getpid() % 250);
    net_ = "10.232." + id + ".";
    net6_ = "fd00:232:" + id + "::";
    ASSERT_EQ(
        pair_.create("ld", "cld", {net_ + "1/24", net6_ + "1/64"}, {net_ + "2/24", net6_ + "2/64"}),
        "");
    a_ = pair_.a();
    dev_ = pair_.vethA();
    // No duplicate address detection on the veth: its link-local address (made again each time
    // the link comes up) is usable at once, so the state after revert is comparable at once.
    ASSERT_EQ(
        shellStatus("ip netns exec " + a_ + " sysctl -qw net.ipv6.conf." + dev_ + ".accept_dad=0"),
        0);
    ASSERT_EQ(pair_.waitUp(5s), "");
    ASSERT_TRUE(waitUntil(
        [&] { return ipA("-6 addr show dev " + dev_).find("tentative") == std::string::npos; },
        5s));
    // Routes of the user's own: a gateway and a metric in a second table, one in main, an IPv6
    // one with a metric, and an on-link one with a preferred source.
    for (const std::string& r : {"route add 10.77.0.0/16 via " + net_ + "2 metric 50 table 100",
                                 "route add 10.78.0.0/16 via " + net_ + "2 metric 20 proto static",
                                 "route add 10.79.0.0/16 dev " + dev_ + " src " + net_ + "1",
                                 "-6 route add fd00:77::/64 via " + net6_ + "2 metric 7 table 100",
                                 "-6 route add fd00:78::/64 via " + net6_ + "2 metric 9"}) {
      ASSERT_EQ(shellStatus("ip -n " + a_ + " " + r), 0) << r;
    }
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = dev_;
    target_.interface.netns.name = a_;
  }

  std::string ipA(const std::string& args) { return runShell("ip -n " + a_ + " " + args); }

  bool linkUp() {
    auto j = json::parse(ipA("-j link show dev " + dev_), nullptr, false);
    if (j.is_discarded() || j.empty()) return false;
    const auto& flags = j[0]["flags"];
    return std::find(flags.begin(), flags.end(), "UP") != flags.end();
  }

  // The link's addresses and routes (every table, both families), as `ip -j` lists them,
  // sorted, without the kernel's counters and transient flags.
  std::vector<std::string> state() {
    std::vector<std::string> out;
    auto addrs = json::parse(ipA("-j addr show dev " + dev_), nullptr, false);
    if (!addrs.is_discarded() && !addrs.empty()) {
      for (auto a : addrs[0]["addr_info"]) out.push_back("addr " + a.dump());
    }
    for (const char* family : {"-4", "-6"}) {
      auto routes = json::parse(
          ipA(std::string("-j ") + family + " route show table all dev " + dev_), nullptr, false);
      if (routes.is_discarded()) continue;
      for (auto r : routes) {
        r.erase("flags");
        out.push_back("route " + r.dump());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  bool ping() { return shellStatus("ip netns exec " + a_ + " ping -c 1 -W 1 " + net_ + "2") == 0; }

  // Whether a TCP connection from namespace a to a listener of b's address completes in 500 ms.
  bool tcpConnects() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(41000 + ::getpid() % 20000));
    ::inet_pton(AF_INET, (net_ + "2").c_str(), &addr.sin_addr);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    NetnsRef b, a;
    b.name = pair_.b();
    a.name = a_;
    if (!listener_) {
      auto made = runInNetns(b, [&]() -> Result<void> {
        listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(listener_.get(), sa, sizeof addr) != 0 || ::listen(listener_.get(), 64) != 0) {
          return Error::fromErrno("listen", errno);
        }
        return success();
      });
      if (!made) ADD_FAILURE() << made.error().describe();
    }
    bool connected = false;
    auto tried = runInNetns(a, [&]() -> Result<void> {
      Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (::connect(s.get(), sa, sizeof addr) == 0) {
        connected = true;
        return success();
      }
      if (errno != EINPROGRESS) return success();  // unreachable: not connected
      pollfd p{s.get(), POLLOUT, 0};
      if (::poll(&p, 1, 500) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        connected = err == 0;
      }
      return success();
    });
    if (!tried) ADD_FAILURE() << tried.error().describe();
    return connected;
  }

  FaultRequest request(const std::string& faultId) {
    FaultRequest r;
    r.runId = "run-ld";
    r.faultId = faultId;
    r.faultType = "network.down";
    r.target = &target_;
    r.guardrails = &guardrails_;
    return r;
  }

  NetnsPair pair_;
  std::string net_, net6_, a_, dev_;
  TargetSpec target_;
  Guardrails guardrails_;
  Fd listener_;
};

TEST_F(LinkDownTest, TakesTheLinkDownAndBringsItBackExactly) {
  const auto before = state();
  ASSERT_TRUE(ping());
  ASSERT_TRUE(tcpConnects());
  LinkDownInjector injector(netlinkLinkKernel());
  auto prepared = injector.prepare(request("ld-1"));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  std::printf("[ describe ] %s\n", prepared->description.c_str());
  auto applied = injector.apply("ld-1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_FALSE(linkUp());
  EXPECT_FALSE(ping());
  EXPECT_FALSE(tcpConnects());
  EXPECT_NE(state(), before);
  // What the kernel took with the link: the IPv6 addresses and the user's routes.
  EXPECT_FALSE(applied->observed["addressesDroppedByKernel"].empty()) << applied->observed.dump();
  EXPECT_GE(applied->observed["routesDroppedByKernel"].size(), 5u) << applied->observed.dump();
  EXPECT_FALSE(injector.audit(prepared->undo)->empty());

  auto reverted = injector.revert("ld-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  std::printf("[ measure  ] network.down revert: %.2f ms to restore %zu addresses and %zu routes\n",
              (*reverted)["restoreMs"].get<double>(), (*reverted)["addressesRestored"].size(),
              (*reverted)["routesRestored"].size());
  EXPECT_TRUE(linkUp());
  EXPECT_EQ(state(), before) << ipA("addr show dev " + dev_) << ipA("route show table all");
  EXPECT_EQ((*reverted)["routesRestored"].size(), 5u) << reverted->dump();
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
  ASSERT_EQ(pair_.waitUp(5s), "");
  EXPECT_TRUE(waitUntil([&] { return ping(); }, 5s));
  EXPECT_TRUE(tcpConnects());

  // Idempotent.
  auto again = injector.revert("ld-1", prepared->undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_FALSE((*again)["raised"].get<bool>());
  EXPECT_EQ(state(), before);
}

TEST_F(LinkDownTest, AFreshInjectorWithOnlyTheRecordRestores) {
  const auto before = state();
  json undo;
  {
    LinkDownInjector owner(netlinkLinkKernel());
    auto prepared = owner.prepare(request("ld-2"));
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    undo = json::parse(prepared->undo.dump());  // as the journal keeps it
    ASSERT_TRUE(owner.apply("ld-2", undo).ok());
  }
  ASSERT_FALSE(linkUp());
  LinkDownInjector guardian(netlinkLinkKernel());
  auto reverted = guardian.revert("ld-2", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_TRUE(linkUp());
  EXPECT_EQ(state(), before);
  EXPECT_TRUE(guardian.audit(undo)->empty());
}

TEST_F(LinkDownTest, RefusesTheDefaultRoutesLinkUnlessTheGuardrailAllows) {
  ASSERT_EQ(shellStatus("ip -n " + a_ + " route add default via " + net_ + "2"), 0);
  const auto before = state();
  LinkDownInjector injector(netlinkLinkKernel());
  auto refused = injector.prepare(request("ld-3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(refused.error().describe().find("default route"), std::string::npos)
      << refused.error().describe();
  EXPECT_TRUE(linkUp());

  guardrails_.allowDefaultRouteDown = true;
  auto prepared = injector.prepare(request("ld-3"));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("ld-3", prepared->undo).ok());
  EXPECT_EQ(ipA("route show default"), "");
  ASSERT_TRUE(injector.revert("ld-3", prepared->undo).ok());
  EXPECT_EQ(state(), before) << "the default route is back";
}

TEST_F(LinkDownTest, RefusesTheLinkOfAnSshSessionInItsNamespace) {
  // A connection on local port 22 of namespace a, from b across the veth.
  NetnsRef a, b;
  a.name = a_;
  b.name = pair_.b();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(22);
  ::inet_pton(AF_INET, (net_ + "1").c_str(), &addr.sin_addr);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  Fd server, client;
  ASSERT_TRUE(runInNetns(a, [&]() -> Result<void> {
                server = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                if (::bind(server.get(), sa, sizeof addr) != 0 || ::listen(server.get(), 4) != 0) {
                  return Error::fromErrno("listen on 22", errno);
                }
                return success();
              }).ok());
  ASSERT_TRUE(runInNetns(b, [&]() -> Result<void> {
                client = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                if (::connect(client.get(), sa, sizeof addr) != 0) {
                  return Error::fromErrno("connect to 22", errno);
                }
                return success();
              }).ok());
  LinkDownInjector injector(netlinkLinkKernel());
  auto refused = injector.prepare(request("ld-4"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().describe().find("SSH session of " + net_ + "2"), std::string::npos)
      << refused.error().describe();
  guardrails_.allowSsh = true;
  EXPECT_TRUE(injector.prepare(request("ld-4")).ok());
}

TEST_F(LinkDownTest, TakesTheLoopbackOfANamespaceDownAndUp) {
  target_.interface.name = "lo";
  LinkDownInjector injector(netlinkLinkKernel());
  auto prepared = injector.prepare(request("ld-5"));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("ld-5", prepared->undo).ok());
  EXPECT_NE(shellStatus("ip netns exec " + a_ + " ping -c 1 -W 1 127.0.0.1"), 0);
  ASSERT_TRUE(injector.revert("ld-5", prepared->undo).ok());
  EXPECT_EQ(shellStatus("ip netns exec " + a_ + " ping -c 1 -W 1 127.0.0.1"), 0);
  EXPECT_NE(ipA("-6 addr show dev lo").find("::1/128"), std::string::npos) << "::1 is back";
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
}

// kill -9 of `chaosctl run` while the link is down: the guardian brings it up with its
// addresses and routes.
TEST_F(LinkDownTest, KillNineOfChaosctlRunLeavesTheLinkUpWithItsAddresses) {
  const auto before = state();
  char tmpl[] = "/var/tmp/chaosd-linkdown-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path root = tmpl;
  const std::string file = (root / "exp.yaml").string();
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: ldkill}\n"
                         "targets: {link: {interface: {name: "
                      << dev_ << ", netns: " << a_
                      << "}}}\n"
                         "steadyState:\n  baseline: {duration: 200ms}\n"
                         "  recovery: {duration: 200ms}\n  probes:\n"
                         "    - {name: alive, command: {argv: [/bin/true]}, every: 100ms}\n"
                         "method:\n"
                         "  - {name: down, fault: network.down, target: link, duration: 60s}\n"
                         "report: {dir: "
                      << root.string() << "/reports}\n";
  const std::string cmd = std::string("exec ") + CHAOSCTL_PATH + " run --state-dir " +
                          root.string() + "/state " + file + " >" + root.string() + "/run.log 2>&1";
  pid_t run = ::fork();
  if (run == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto log = [&] { return runShell("cat " + root.string() + "/run.log"); };
  ASSERT_TRUE(waitUntil([&] { return !linkUp(); }, 30s)) << log();
  const auto killedAt = std::chrono::steady_clock::now();
  ::kill(run, SIGKILL);
  ASSERT_EQ(::waitpid(run, nullptr, 0), run);
  EXPECT_TRUE(waitUntil([&] { return linkUp() && state() == before; }, 10s))
      << "the guardian did not restore the link\n"
      << log() << ipA("addr show dev " + dev_) << ipA("route show table all");
  std::printf("[ measure  ] kill -9 of chaosctl run to the link up with its routes: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killedAt)
                  .count());
  fs::remove_all(root);
}

}  // namespace
}  // namespace chaosd
