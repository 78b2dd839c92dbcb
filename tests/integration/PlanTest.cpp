// `chaosctl plan` on every example: it prints the timeline and the targets, and the machine's
// state (namespaces, links, qdiscs, nftables, stopped processes, chaosd's state dir) is the
// same before and after.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/Shell.h"

namespace {

using chaosd::testing::runCommand;

std::string stoppedProcesses() {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() &&
        (line[close + 2] == 'T' || line[close + 2] == 't')) {
      out += line.substr(0, close + 1) + "\n";
    }
  }
  return out;
}

std::string machineState() {
  struct stat st {};
  return "netns:\n" + runCommand("ip netns list 2>&1") + "links:\n" +
         runCommand("ip -o link show 2>&1 | sed 's/ state [A-Z]*//'") + "qdiscs:\n" +
         runCommand("tc qdisc show 2>&1") + "nft:\n" + runCommand("nft list ruleset 2>&1") +
         "stopped:\n" + stoppedProcesses() +
         "statedir: " + (::stat("/var/lib/chaosd", &st) == 0 ? "present" : "absent") + "\n";
}

TEST(PlanTest, EveryExamplePrintsTheTimelineAndChangesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to read every namespace";
  const std::string before = machineState();
  int examples = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(CHAOSD_SOURCE_DIR) +
                                                           "/experiments/examples")) {
    if (e.path().extension() != ".yaml") continue;
    ++examples;
    int status = -1;
    std::string out =
        runCommand(std::string(CHAOSCTL_PATH) + " plan " + e.path().string() + " 2>&1", &status);
    EXPECT_EQ(status, 0) << e.path() << "\n" << out;
    EXPECT_NE(out.find("Timeline ("), std::string::npos) << out;
    EXPECT_NE(out.find("baseline:"), std::string::npos) << out;
    EXPECT_NE(out.find("Targets, as they resolve on this machine now:"), std::string::npos) << out;
    EXPECT_NE(out.find("Nothing was applied"), std::string::npos) << out;
    std::string json = runCommand(
        std::string(CHAOSCTL_PATH) + " plan --output json " + e.path().string() + " 2>&1", &status);
    EXPECT_EQ(status, 0) << json;
    EXPECT_NE(json.find("\"applied\": false"), std::string::npos) << json;
  }
  EXPECT_GE(examples, 5);
  EXPECT_EQ(machineState(), before);
}

TEST(PlanTest, ResolvesARealProcessTarget) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "987.654", nullptr);
    ::_exit(127);
  }
  // Wait until the child has exec'd (its cmdline shows the argument).
  std::string cmdline;
  for (int i = 0; i < 2000 && cmdline.find("987.654") == std::string::npos; ++i) {
    std::ifstream f("/proc/" + std::to_string(child) + "/cmdline");
    std::getline(f, cmdline, '\0');
    std::getline(f, cmdline, '\0');
    if (cmdline.find("987.654") == std::string::npos) ::usleep(1000);
  }
  char dir[] = "/tmp/chaosd-plan-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string file = std::string(dir) + "/exp.yaml";
  std::ofstream(file)
      << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: p}\n"
         "targets: {sleeper: {process: {cmdline: 'sleep 987\\.654'}, mode: one, seed: 3}}\n"
         "steadyState: {probes: []}\n"
         "method: [{name: k, fault: process.kill, target: sleeper}]\n";
  int status = -1;
  std::string out = runCommand(std::string(CHAOSCTL_PATH) + " plan " + file + " 2>&1", &status);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("* " + std::to_string(child) + " (sleep)"), std::string::npos) << out;
  EXPECT_NE(out.find("1 eligible process(es) match; mode one would hit 1"), std::string::npos)
      << out;
}

// The plan applies the run's rules: a chaosd guardian (any run's) matched by a selector is
// refused, as prepare() would refuse it.
TEST(PlanTest, AGuardianIsShownRefusedNotAsAVictim) {
  char dir[] = "/tmp/chaosd-plan-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  // A copy of sleep named like the guardian: its comm is "chaosd-guardian".
  const std::string fake = std::string(dir) + "/chaosd-guardian";
  std::filesystem::copy_file("/bin/sleep", fake);
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl(fake.c_str(), "chaosd-guardian", "987.321", nullptr);
    ::_exit(127);
  }
  std::string comm;
  for (int i = 0; i < 2000 && comm != "chaosd-guardian"; ++i) {
    std::ifstream f("/proc/" + std::to_string(child) + "/comm");
    std::getline(f, comm);
    if (comm != "chaosd-guardian") ::usleep(1000);
  }
  std::string file = std::string(dir) + "/exp.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: p}\n"
                         "targets: {g: {process: {cmdline: 'guardian 987\\.321'}}}\n"
                         "steadyState: {probes: []}\n"
                         "method: [{name: k, fault: process.kill, target: g}]\n";
  std::string out = runCommand(std::string(CHAOSCTL_PATH) + " plan " + file + " 2>&1");
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::filesystem::remove_all(dir);
  EXPECT_NE(out.find("refused: pid " + std::to_string(child) +
                     " (chaosd-guardian) is protected: it is a helper of chaosd (its guardian)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("* " + std::to_string(child)), std::string::npos) << out;
}

}  // namespace

// The quickstart's interface and replicas exist only once its exec target (the demo front)
// runs: plan says so instead of calling them a problem.
TEST(PlanTest, TargetsTheExecTargetsCreateAreNotHereYetRatherThanAProblem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to read every namespace";
  if (std::filesystem::exists("/run/netns/chaosd-quickstart")) GTEST_SKIP() << "quickstart running";
  int st = -1;
  const std::string out = runCommand(std::string(CHAOSCTL_PATH) + " plan " + CHAOSD_SOURCE_DIR +
                                         "/experiments/examples/quickstart.yaml 2>&1",
                                     &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("replica-link (interface qs0 in netns chaosd-quickstart): not here yet"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("demo (exec "), std::string::npos) << out;
  EXPECT_EQ(out.find("PROBLEM"), std::string::npos) << out;
}

// Host names in packet filters, through the real resolver: `chaosctl` runs in a private mount
// namespace whose /etc/hosts knows one test name and whose nsswitch.conf asks nothing else (no
// DNS query leaves the machine). plan shows what a name resolves to and fails on one that does
// not; run stops before anything is applied, even though that step comes second.
TEST(PlanTest, HostNamesResolveInPlanAndAnUnknownOneStopsPlanAndRun) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a mount namespace";
  const std::string id = std::to_string(::getpid());
  const std::string dir = ::testing::TempDir() + "/chaosd-hosts-" + id;
  const std::string netns = "chaosd-hn-" + id;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/hosts") << "10.77.0.5 db.chaosd-test\n127.0.0.1 localhost\n";
  std::ofstream(dir + "/nsswitch.conf") << "hosts: files\n";
  ASSERT_EQ(chaosd::testing::shellStatus("ip netns add " + netns), 0);
  std::ofstream(dir + "/exp.yaml")
      << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: hosts}\n"
         "targets: {link: {interface: {name: lo, netns: "
      << netns
      << "}}}\n"
         "steadyState: {baseline: {duration: 1s}, recovery: {duration: 1s}, probes: []}\n"
         "method:\n"
         "  - {name: reset-db, fault: network.reset, target: link, duration: 1s,\n"
         "     args: {hosts: [DB.chaosd-test.], ports: [5432]}}\n"
         "  - {name: slow-cache, fault: network.delay, target: link, duration: 1s,\n"
         "     after: reset-db, args: {delay: 10ms, to: {hosts: [gone.chaosd-test]}}}\n";
  auto inPrivateHosts = [&](const std::string& args, int* status) {
    return runCommand("unshare --mount --propagation private sh -c 'mount --bind " + dir +
                          "/hosts /etc/hosts && mount --bind " + dir +
                          "/nsswitch.conf /etc/nsswitch.conf && exec " + CHAOSCTL_PATH + " " +
                          args + "' 2>&1",
                      status);
  };
  int st = -1;
  const std::string plan = inPrivateHosts("plan " + dir + "/exp.yaml", &st);
  EXPECT_EQ(st, 2) << plan;
  EXPECT_NE(plan.find("reset-db: db.chaosd-test -> 10.77.0.5"), std::string::npos) << plan;
  EXPECT_NE(plan.find("slow-cache: PROBLEM"), std::string::npos) << plan;
  EXPECT_NE(plan.find("to.hosts: host name 'gone.chaosd-test' does not resolve"), std::string::npos)
      << plan;
  EXPECT_NE(plan.find("(the step at line 9)"), std::string::npos) << plan;

  const std::string run = inPrivateHosts(
      "run --state-dir " + dir + "/state --report-dir " + dir + "/reports " + dir + "/exp.yaml",
      &st);
  EXPECT_NE(st, 0) << run;
  EXPECT_NE(run.find("step slow-cache: to.hosts: host name 'gone.chaosd-test' does not resolve"),
            std::string::npos)
      << run;
  EXPECT_NE(run.find("nothing was applied"), std::string::npos) << run;
  EXPECT_EQ(runCommand("ip netns exec " + netns + " nft list ruleset 2>&1"), "")
      << "no rule was added";
  chaosd::testing::shellStatus("ip netns del " + netns);
  std::filesystem::remove_all(dir);
}
