// network.reset as users run it: the tcp-reset-demo example for real (its front moves on from
// the replica whose connections are reset), and kill -9 of `chaosctl run` while a reset is
// held in a namespace of the test's own: the guardian deletes the rules and the run's table.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/FreePort.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere in C++

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::runShell;
using chaosd::testing::shellStatus;
using chaosd::testing::waitUntil;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class TcpResetExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    root_ = ::testing::TempDir() + "/chaosd-rst-" + std::to_string(::getpid());
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!netns_.empty()) shellStatus("ip netns del " + netns_);
    fs::remove_all(root_);
  }
  std::string run(const std::string& file, const std::string& vars = "") {
    return std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state --report-dir " +
           root_ + "/reports " + vars + " " + file;
  }
  nlohmann::json report() {
    for (const auto& e : fs::directory_iterator(root_ + "/reports")) {
      return nlohmann::json::parse(readFile((e.path() / "report.json").string()), nullptr, false);
    }
    return nullptr;
  }
  std::string root_, netns_;
};

TEST_F(TcpResetExampleTest, TcpResetDemoRunsForReal) {
  // The front listens on the host's loopback; its replicas (port+1..+3) in the demo's netns.
  const uint16_t port = chaosd::testing::freeLoopbackPorts();
  ASSERT_NE(port, 0);
  int st = -1;
  const std::string out =
      runShell(run(std::string(CHAOSD_SOURCE_DIR) + "/experiments/examples/tcp-reset-demo.yaml",
                   "--var window=2s --var port=" + std::to_string(port) +
                       " --var replica=" + std::to_string(port + 1)),
               &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("verdict: ok"), std::string::npos) << out;
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << out;
  const auto& fault = r["faults"][0];
  EXPECT_EQ(fault["type"], "network.reset");
  EXPECT_EQ(fault["state"], "reverted");
  // A third of the probes go to the first replica first: each is reset, then served elsewhere.
  EXPECT_GE(fault["observed"]["resetsSent"].get<uint64_t>(), 3u) << fault.dump();
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  EXPECT_EQ(runShell("ip netns list | grep -c chaosd-rstdemo"), "0\n") << "the demo cleaned up";
}

// kill -9 of the run while the reset is held: the guardian reverts from the journal.
TEST_F(TcpResetExampleTest, KillNineWhileAResetIsHeldLeavesNoRule) {
  netns_ = "chaosd-rk-" + std::to_string(::getpid());
  ASSERT_EQ(shellStatus("ip netns add " + netns_), 0);
  const std::string file = root_ + "/exp.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: rst}\n"
                         "targets: {link: {interface: {name: lo, netns: "
                      << netns_
                      << "}}}\n"
                         "steadyState: {baseline: {duration: 1s}, probes: []}\n"
                         "method:\n"
                         "  - {name: reset, fault: network.reset, target: link, duration: 60s,\n"
                         "     args: {cidr: [127.0.0.1], ports: [8080]}}\n";
  const std::string log = root_ + "/run.log";
  const std::string cmd = "exec " + run(file) + " >" + log + " 2>&1";
  pid_t pid = 0;
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  ASSERT_EQ(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  auto ruleset = [&] { return runShell("ip netns exec " + netns_ + " nft list ruleset"); };
  ASSERT_TRUE(
      waitUntil([&] { return ruleset().find("reject with tcp reset") != std::string::npos; }, 20s))
      << readFile(log);
  const auto killedAt = std::chrono::steady_clock::now();
  ::kill(pid, SIGKILL);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  ASSERT_TRUE(waitUntil([&] { return ruleset().empty(); }, 10s)) << "the guardian left:\n"
                                                                 << ruleset() << readFile(log);
  std::printf("[ measure  ] kill -9 of chaosctl run to the reset's table gone: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killedAt)
                  .count());
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(root_ + "/state"); }, 10s));
}

}  // namespace
}  // namespace chaosd
