// `refresh` of host names against the real kernel: `chaosctl run` holds a partition by name in a
// namespace pair of the test's own while the name's address changes (the run sees a private
// /etc/hosts, a bind mount of a file the test rewrites): the run's nftables set follows (nft
// list shows the new address and not the old), traffic to the new address is dropped and to the
// old one flows again; then kill -9 of the run, and the guardian leaves no rule, no set, no
// table. Also the NFQUEUE delay's rules replaced in one batch on the real kernel.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueDelay.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/NetnsPair.h"
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

// Rewrites the file in place (same inode), so a bind mount of it shows the new text.
void rewrite(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

class HostRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    root_ = ::testing::TempDir() + "/chaosd-hr-" + std::to_string(::getpid());
    fs::create_directories(root_);
    net_ = "10.78." + std::to_string(::getpid() % 250) + ".";
    const std::string err = pair_.create("hr", "vhr" + std::to_string(::getpid() % 10000),
                                         {net_ + "1/24"}, {net_ + "2/24", net_ + "3/24"});
    ASSERT_EQ(err, "");
    ASSERT_EQ(pair_.waitUp(5s), "");
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(root_);
  }
  // Whether a ping from a to b's address gets an answer within a second.
  bool reaches(const std::string& last) {
    return shellStatus("ip netns exec " + pair_.a() + " ping -c 1 -W 1 " + net_ + last +
                       " >/dev/null 2>&1") == 0;
  }
  std::string ruleset() { return runShell("ip netns exec " + pair_.a() + " nft list ruleset"); }

  // Writes an experiment holding `step` (one method line) on the pair's link and starts
  // `chaosctl run` of it in a mount namespace of its own where /etc/hosts is `hosts` (the run
  // and its guardian see the test's file; the machine's stays as it is); its output in log_.
  void startRun(const std::string& hosts, const std::string& step) {
    const std::string file = root_ + "/exp.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: follow}\n"
                           "targets: {link: {interface: {name: "
                        << pair_.vethA() << ", netns: " << pair_.a()
                        << "}}}\n"
                           "steadyState: {baseline: {duration: 1s}, probes: []}\n"
                           "method:\n"
                        << step;
    log_ = root_ + "/run.log";
    const std::string cmd = "exec unshare --mount --propagation private sh -c 'mount --bind " +
                            hosts + " /etc/hosts && exec " + CHAOSCTL_PATH + " run --state-dir " +
                            root_ + "/state --report-dir " + root_ + "/reports " + file + "' >" +
                            log_ + " 2>&1";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    ASSERT_EQ(::posix_spawn(&pid_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ),
              0);
  }

  testing::NetnsPair pair_;
  std::string root_, net_, log_;
  pid_t pid_ = 0;
};

TEST_F(HostRefreshTest, APartitionFollowsItsNameAndKillNineLeavesNothing) {
  ASSERT_TRUE(reaches("2"));
  ASSERT_TRUE(reaches("3"));
  const std::string hosts = root_ + "/hosts";
  rewrite(hosts, net_ + "2 db.chaosd-test\n127.0.0.1 localhost\n");
  ASSERT_NO_FATAL_FAILURE(
      startRun(hosts,
               "  - {name: cut, fault: network.partition, target: link, duration: 60s,\n"
               "     args: {hosts: [db.chaosd-test], direction: to, refresh: 200ms}}\n"));
  auto setHolds = [&](const std::string& last) {
    const std::string r = ruleset();
    const auto set = r.find("set hosts_");
    return set != std::string::npos && r.find(net_ + last, set) != std::string::npos;
  };
  ASSERT_TRUE(waitUntil([&] { return setHolds("2"); }, 20s)) << ruleset() << readFile(log_);
  EXPECT_NE(ruleset().find("ip daddr @hosts_"), std::string::npos) << ruleset();
  EXPECT_FALSE(reaches("2")) << "the name's address is cut off";
  EXPECT_TRUE(reaches("3")) << "another address is not";

  const auto changedAt = std::chrono::steady_clock::now();
  rewrite(hosts, net_ + "3 db.chaosd-test\n127.0.0.1 localhost\n");
  ASSERT_TRUE(waitUntil([&] { return setHolds("3") && !setHolds("2"); }, 10s))
      << ruleset() << readFile(log_);
  std::printf(
      "[ measure  ] /etc/hosts rewritten to the set holding the new address: %.0f ms "
      "(refresh 200ms)\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - changedAt)
          .count());
  const std::string listed = ruleset();
  EXPECT_EQ(listed.find(net_ + "2"), std::string::npos) << "the old address is gone:\n" << listed;
  EXPECT_FALSE(reaches("3")) << "the new address is cut off";
  EXPECT_TRUE(reaches("2")) << "the old one flows again";

  // A name that stops resolving keeps its address: the filter is never emptied.
  rewrite(hosts, "127.0.0.1 localhost\n");
  std::this_thread::sleep_for(600ms);  // three refreshes; nothing to wait for: nothing changes
  EXPECT_TRUE(setHolds("3")) << ruleset();
  EXPECT_FALSE(reaches("3"));

  const auto killedAt = std::chrono::steady_clock::now();
  ::kill(pid_, SIGKILL);
  ASSERT_EQ(::waitpid(pid_, nullptr, 0), pid_);
  pid_ = 0;
  ASSERT_TRUE(waitUntil([&] { return ruleset().empty(); }, 10s)) << "the guardian left:\n"
                                                                 << ruleset() << readFile(log_);
  std::printf("[ measure  ] kill -9 of chaosctl run to the rules, sets and table gone: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killedAt)
                  .count());
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(root_ + "/state"); }, 10s));
  EXPECT_TRUE(reaches("3"));
}

// The report of a run that ends by itself: each change of the name, and the revert (rules,
// then sets) leaves nothing.
TEST_F(HostRefreshTest, TheReportRecordsEachChange) {
  const std::string hosts = root_ + "/hosts";
  rewrite(hosts, net_ + "2 db.chaosd-test\n127.0.0.1 localhost\n");
  ASSERT_NO_FATAL_FAILURE(
      startRun(hosts,
               "  - {name: cut, fault: network.reset, target: link, duration: 3s,\n"
               "     args: {hosts: [db.chaosd-test], refresh: 100ms}}\n"));
  ASSERT_TRUE(waitUntil([&] { return ruleset().find(net_ + "2") != std::string::npos; }, 20s))
      << readFile(log_);
  rewrite(hosts, net_ + "3 db.chaosd-test\n127.0.0.1 localhost\n");
  int status = -1;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  pid_ = 0;
  EXPECT_EQ(WEXITSTATUS(status), 0) << readFile(log_);
  EXPECT_EQ(ruleset(), "");
  nlohmann::json report;
  for (const auto& e : fs::directory_iterator(root_ + "/reports")) {
    report = nlohmann::json::parse(readFile((e.path() / "report.json").string()), nullptr, false);
  }
  ASSERT_TRUE(report.is_object()) << readFile(log_);
  const auto& o = report["faults"][0]["observed"];
  EXPECT_EQ(o["hosts"]["db.chaosd-test"], nlohmann::json({net_ + "2"})) << o.dump();
  ASSERT_EQ(o["hostChanges"].size(), 1u) << o.dump();
  EXPECT_EQ(o["hostChanges"][0]["from"], nlohmann::json({net_ + "2"}));
  EXPECT_EQ(o["hostChanges"][0]["to"], nlohmann::json({net_ + "3"}));
  EXPECT_TRUE(report["faults"][0]["leftovers"].empty());
}

// The NFQUEUE delay's rules replaced on the real kernel: one batch, the table and queue kept.
TEST_F(HostRefreshTest, TheNfqueueDelaysRulesAreReplacedInOneBatch) {
  TargetSpec target;
  target.name = "link";
  target.kind = TargetKind::kInterface;
  target.interface.name = pair_.vethA();
  target.interface.netns.name = pair_.a();
  FaultRequest r;
  r.runId = "t";
  r.faultId = "nq-r";
  r.stepName = "slow";
  r.faultType = "network.delay";
  r.target = &target;
  r.args = {
      {"delay", 1'000'000}, {"refresh", 100'000'000}, {"to", {{"hostAddresses", {net_ + "2"}}}}};
  NfqueueDelayInjector injector;
  auto p = injector.prepare(r);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  ASSERT_TRUE(injector.apply("nq-r", p->undo).ok());
  auto tableText = [&] {
    return runShell("ip netns exec " + pair_.a() + " nft list table inet chaosd_nq_r 2>&1");
  };
  EXPECT_NE(tableText().find(net_ + "2"), std::string::npos) << tableText();
  nlohmann::json args = r.args;
  args["to"]["hostAddresses"] = {net_ + "3"};
  auto next = injector.reprepare("nq-r", p->undo, args);
  ASSERT_TRUE(next.ok()) << next.error().describe();
  auto updated = injector.update("nq-r", p->undo, *next);
  ASSERT_TRUE(updated.ok()) << updated.error().describe();
  const std::string after = tableText();
  EXPECT_NE(after.find(net_ + "3"), std::string::npos) << after;
  EXPECT_EQ(after.find(net_ + "2"), std::string::npos) << after;
  EXPECT_TRUE(reaches("3")) << "delayed 1 ms, not dropped: the consumer still serves the queue";
  ASSERT_TRUE(injector.revert("nq-r", *next).ok());
  EXPECT_EQ(ruleset(), "");
}

}  // namespace
}  // namespace chaosd
