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

  std::string qdiscs() { return runShell("tc -n " + net_.a + " -d qdisc show dev cqd-a"); }
  std::string ifbs() { return runShell("ip -n " + net_.a + " -o link show type ifb"); }

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

  // Starts `chaosctl run` on an experiment with these method lines (the target is `link`,
  // cqd-a in namespace A); its output goes to chaosctl.log.
  void startRun(const std::string& method, const std::string& guardrails = "") {
    const std::string file = dir_ + "/exp.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: qg}\n"
                           "targets: {link: {interface: {name: cqd-a, netns: "
                        << net_.a
                        << "}}}\n"
                           "steadyState:\n  baseline: {duration: 100ms}\n  probes:\n"
                           "    - {name: up, command: {argv: [/bin/true]}, every: 50ms}\n"
                           "method:\n"
                        << method << guardrails << "report: {dir: " << dir_ << "/reports}\n";
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
  }
  std::string log() {
    std::ifstream in(dir_ + "/chaosctl.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // chaosctl's exit code once it ends (-1 if it did not within the limit).
  int waitRun(std::chrono::milliseconds limit) {
    int st = 0;
    const bool ended = waitFor([&] { return ::waitpid(runner_, &st, WNOHANG) == runner_; }, limit);
    if (!ended) return -1;
    runner_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  NetPair net_;
  std::string dir_;
  pid_t runner_ = -1;
};

TEST_F(QdiscGuardianTest, OwnerKilledTheGuardianRevertsEveryQdiscFaultAndRestoresTheUsersRoot) {
  ASSERT_EQ(
      shellStatus("tc -n " + net_.a +
                  " qdisc add dev cqd-a root handle 7: tbf rate 300mbit burst 64kb latency 25ms"),
      0);
  const std::string before = qdiscs();
  startRun(
      "  - name: thin\n    parallel:\n"
      "      - {name: to-2, fault: network.bandwidth, target: link, duration: 60s, args: "
      "{rate: 8mbit, to: {cidr: [" +
          net_.net +
          "2/32]}}}\n"
          "      - {name: to-3, fault: network.bandwidth, target: link, duration: 60s, args: "
          "{rate: 12mbit, to: {cidr: [" +
          net_.net +
          "3/32]}}}\n"
          "      - {name: in, fault: network.bandwidth, target: link, duration: 60s, args: "
          "{rate: 4mbit, direction: ingress}}\n",
      "guardrails: {maxFaults: 3}\n");
  // All three held: two fault classes under our root, an ingress redirect, one ifb.
  auto held = [&] {
    const std::string q = qdiscs();
    return q.find("qdisc htb c4a0: root") != std::string::npos && count(q, "qdisc tbf") == 2 &&
           q.find("qdisc ingress ffff:") != std::string::npos && !ifbs().empty();
  };
  ASSERT_TRUE(waitFor(held, 15s)) << qdiscs() << ifbs() << log();
  // The engine's faults act: .2 limited to 8, .3 to 12 (checked in QdiscFaultTest, not here),
  // and what comes in to 4 Mbit/s. Paced UDP at three times the rates: what the buckets let
  // through, without TCP's dips on a loaded machine (TCP through tbf: QdiscFaultTest).
  auto to2 = udpMbit(net_.a, net_.b, net_.net + "2", 5601, 24);
  auto in = udpMbit(net_.b, net_.a, net_.net + "1", 5602, 12);
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
      runShell(std::string(CHAOSCTL_PATH) + " faults --state-dir " + dir_ + "/state");
  EXPECT_NE(faults.find("no faults held"), std::string::npos) << faults;
}

// Two runs (this process and a `chaosctl run`) with faults on one interface whose root is the
// kernel's default: the second joins the first's tree (the tree's default class says the root
// it replaced was the kernel's), each reverts alone, the last takes the tree away.
TEST_F(QdiscGuardianTest, TwoRunsShareAnInterfaceWhoseRootIsTheKernelsDefault) {
  const std::string before = qdiscs();
  QdiscInjector mine;
  auto a = mine.prepare(request(net_.target(net_.a, "cqd-a"), "network.bandwidth", "run1-a",
                                {{"rate", 8'000'000}, {"to", {{"cidr", {net_.net + "2/32"}}}}}));
  ASSERT_TRUE(a.ok()) << a.error().describe();
  ASSERT_TRUE(mine.apply("run1-a", a->undo).ok());
  startRun(
      "  - {name: to-3, fault: network.bandwidth, target: link, duration: 8s, args: {rate: "
      "12mbit, to: {cidr: [" +
      net_.net + "3/32]}}}\n");
  ASSERT_TRUE(waitFor([&] { return count(qdiscs(), "qdisc tbf") == 2; }, 15s)) << qdiscs() << log();
  auto to2 = udpMbit(net_.a, net_.b, net_.net + "2", 5701, 24);
  auto to3 = udpMbit(net_.a, net_.b, net_.net + "3", 5702, 36);
  std::printf("[ measure  ] two runs, one tree: to .2 %.2f Mbit/s (8), to .3 %.2f Mbit/s (12)\n",
              to2.valueOr(0), to3.valueOr(0));
  EXPECT_NEAR(to2.valueOr(0), 8, 0.8);
  EXPECT_NEAR(to3.valueOr(0), 12, 1.2);
  ASSERT_TRUE(mine.revert("run1-a", a->undo).ok());
  EXPECT_TRUE(mine.audit(a->undo)->empty());
  EXPECT_EQ(count(qdiscs(), "qdisc tbf"), 1u) << "the other run's fault holds" << qdiscs();
  EXPECT_EQ(waitRun(15s), 0) << log();
  EXPECT_EQ(qdiscs(), before) << "the last revert (the other run's) took the tree away";
}

// With a root of the user's under our tree, only the process that replaced it holds its
// snapshot: a second run is refused before it touches anything, and the first restores it.
TEST_F(QdiscGuardianTest, ASecondRunIsRefusedWhereAnotherReplacedTheUsersRoot) {
  ASSERT_EQ(shellStatus("tc -n " + net_.a + " qdisc add dev cqd-a root handle 7: pfifo limit 500"),
            0);
  const std::string before = qdiscs();
  QdiscInjector mine;
  auto a = mine.prepare(request(net_.target(net_.a, "cqd-a"), "network.bandwidth", "run1-b",
                                {{"rate", 8'000'000}, {"to", {{"cidr", {net_.net + "2/32"}}}}}));
  ASSERT_TRUE(a.ok()) << a.error().describe();
  ASSERT_TRUE(mine.apply("run1-b", a->undo).ok());
  const std::string held = qdiscs();
  startRun(
      "  - {name: to-3, fault: network.bandwidth, target: link, duration: 3s, args: {rate: "
      "12mbit, to: {cidr: [" +
      net_.net + "3/32]}}}\n");
  const int code = waitRun(15s);
  EXPECT_NE(code, 0) << log();
  EXPECT_NE(log().find("only that process can restore it"), std::string::npos) << log();
  EXPECT_EQ(qdiscs(), held) << "the refused run changed nothing";
  ASSERT_TRUE(mine.revert("run1-b", a->undo).ok());
  EXPECT_EQ(qdiscs(), before);
}

}  // namespace
}  // namespace chaosd
