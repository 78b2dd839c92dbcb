// Qdisc faults through the whole engine: `chaosctl run` applies three network.bandwidth faults
// at once on one veth that carries a root qdisc of the user's own (two egress faults to
// different peers under our shared HTB root, one ingress fault through its ifb), and is killed
// with SIGKILL while they hold. The guardian reverts them from the journal alone: our tree and
// the ifb are gone, the user's root is back byte for byte, traffic is no longer limited, and
// the journal holds nothing unreverted.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/QdiscTestNet.h"

namespace chaosd {
namespace {

using namespace qdisctest;
using namespace std::chrono_literals;

class QdiscGuardianTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(net_.setUp("qg"));
    char tmpl[] = "/tmp/chaosd-qg-run-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (runner_ > 0) {
      ::kill(runner_, SIGKILL);
      ::waitpid(runner_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string qdiscs() { return run("tc -n " + net_.a + " -d qdisc show dev cqd-a"); }
  std::string ifbs() { return run("ip -n " + net_.a + " -o link show type ifb"); }

  // Waits until pred holds or the deadline passes; whether it held.
  template <typename Pred>
  bool waitFor(Pred pred, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);  // another process changes the kernel: poll its state
    }
    return true;
  }

  NetPair net_;
  std::string dir_;
  pid_t runner_ = -1;
};

TEST_F(QdiscGuardianTest, OwnerKilledTheGuardianRevertsEveryQdiscFaultAndRestoresTheUsersRoot) {
  ASSERT_EQ(status("tc -n " + net_.a +
                   " qdisc add dev cqd-a root handle 7: tbf rate 300mbit burst 64kb latency 25ms"),
            0);
  const std::string before = qdiscs();
  const std::string file = dir_ + "/exp.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: qg}\n"
                         "targets: {link: {interface: {name: cqd-a, netns: "
                      << net_.a
                      << "}}}\n"
                         "steadyState:\n  baseline: {duration: 100ms}\n  probes:\n"
                         "    - {name: up, command: {argv: [/bin/true]}, every: 50ms}\n"
                         "method:\n"
                         "  - name: thin\n    parallel:\n"
                         "      - {name: to-2, fault: network.bandwidth, target: link, duration: "
                         "60s, args: {rate: 8mbit, to: {cidr: ["
                      << net_.net
                      << "2/32]}}}\n"
                         "      - {name: to-3, fault: network.bandwidth, target: link, duration: "
                         "60s, args: {rate: 12mbit, to: {cidr: ["
                      << net_.net
                      << "3/32]}}}\n"
                         "      - {name: in, fault: network.bandwidth, target: link, duration: "
                         "60s, args: {rate: 4mbit, direction: ingress}}\n"
                         "guardrails: {maxFaults: 3}\n"
                         "report: {dir: "
                      << dir_ << "/reports}\n";
  runner_ = ::fork();
  ASSERT_GE(runner_, 0);
  if (runner_ == 0) {
    const int out = ::open((dir_ + "/chaosctl.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execl(CHAOSCTL_PATH, CHAOSCTL_PATH, "run", "--state-dir", (dir_ + "/state").c_str(),
            file.c_str(), nullptr);
    ::_exit(127);
  }
  auto log = [&] {
    std::ifstream in(dir_ + "/chaosctl.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // All three held: two fault classes under our root, an ingress redirect, one ifb.
  auto held = [&] {
    const std::string q = qdiscs();
    size_t tbfs = 0;
    for (size_t at = q.find("qdisc tbf"); at != std::string::npos; at = q.find("qdisc tbf", at + 1))
      ++tbfs;
    return q.find("qdisc htb c4a0: root") != std::string::npos && tbfs == 2 &&
           q.find("qdisc ingress ffff:") != std::string::npos && !ifbs().empty();
  };
  ASSERT_TRUE(waitFor(held, 15s)) << qdiscs() << ifbs() << log();
  // The engine's faults act: .2 limited to 8, .3 to 12 (checked in the fault's own test, not
  // here), and what comes in to 4 Mbit/s.
  auto to2 = tcpMbit(net_.a, net_.b, net_.net + "2", 5601);
  auto in = tcpMbit(net_.b, net_.a, net_.net + "1", 5602);
  ASSERT_TRUE(to2.ok() && in.ok());
  std::printf("[ measure  ] through chaosctl: to .2 %.2f Mbit/s (8), incoming %.2f Mbit/s (4)\n",
              *to2, *in);
  EXPECT_NEAR(*to2, 8, 0.8);
  EXPECT_NEAR(*in, 4, 0.4);

  ::kill(runner_, SIGKILL);
  ::waitpid(runner_, nullptr, 0);
  runner_ = -1;
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_TRUE(waitFor([&] { return qdiscs() == before && ifbs().empty(); }, 5s))
      << "before:\n"
      << before << "now:\n"
      << qdiscs() << ifbs();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  std::printf(
      "[ measure  ] tree, ingress redirect and ifb gone, user's tbf back %lld ms after the "
      "owner's SIGKILL\n",
      static_cast<long long>(took.count()));
  EXPECT_EQ(qdiscs(), before) << "the user's root, byte for byte";
  EXPECT_EQ(ifbs(), "");
  EXPECT_GT(tcpMbit(net_.a, net_.b, net_.net + "2", 5603).valueOr(0), 32) << "no limit left";
  EXPECT_GT(tcpMbit(net_.b, net_.a, net_.net + "1", 5604).valueOr(0), 32) << "no limit left";
  // The guardian marked them reverted: nothing held in the journal.
  const std::string faults =
      run(std::string(CHAOSCTL_PATH) + " faults --state-dir " + dir_ + "/state");
  EXPECT_NE(faults.find("no faults held"), std::string::npos) << faults;
}

}  // namespace
}  // namespace chaosd
