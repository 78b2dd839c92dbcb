// Exec targets: the process an experiment starts itself is journalled before it runs, faults
// reach it by pid, and it is stopped with its whole process group at the end of the run, or
// by the guardian when chaosctl is killed. Real processes, real chaosctl.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "chaosd/base/Pidfd.h"
#include "injectors/process/ExecTarget.h"
#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using chaosd::testing::readReport;
using chaosd::testing::runDirIn;
using chaosd::testing::runShell;

bool alive(pid_t pid) {
  // A zombie counts as gone: its process has exited.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  const size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

// Waits (bounded) for a file to hold a pid.
pid_t waitPidFile(const std::string& path, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    std::ifstream in(path);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(5ms);  // another process writes it: poll
  }
  return 0;
}

bool goneWithin(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (!alive(pid)) return true;
    std::this_thread::sleep_for(5ms);
  }
  return !alive(pid);
}

class ExecTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/chaosd-exec-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    if (root_.empty()) return;
    int st = 0;
    runShell(std::string(CHAOSCTL_PATH) + " recover --force --state-dir " + root_ + "/state", &st);
    for (const char* f : {"/leader.pid", "/child.pid"}) {
      std::ifstream in(root_ + f);
      pid_t pid = 0;
      if (in >> pid && pid > 1 && alive(pid)) ::kill(pid, SIGKILL);
    }
    fs::remove_all(root_);
  }

  // The service: a shell that starts a second process in its group, records both pids, and
  // waits. Paused for `pause` by the method.
  std::string experiment(const std::string& pause) {
    const std::string file = root_ + "/exp.yaml";
    std::ofstream(file)
        << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: exec-test}\n"
           "targets:\n  svc:\n    exec:\n      argv: [/bin/sh, -c, 'sleep 300 & echo $! > "
        << root_ << "/child.pid; echo $$ > " << root_
        << "/leader.pid; echo started; wait']\n"
           "      env: {GREETING: hello}\n"
           "steadyState:\n  baseline: {duration: 300ms}\n  recovery: {duration: 200ms}\n"
           "  probes:\n    - {name: up, command: {argv: [/bin/true]}, every: 100ms}\n"
           "method:\n  - {name: freeze, fault: process.pause, target: svc, duration: "
        << pause << "}\nreport: {dir: " << root_ << "/reports}\n";
    return file;
  }

  std::string root_;
};

TEST_F(ExecTargetTest, StartedForTheRunPausedByPidAndStoppedWithItsGroupAtTheEnd) {
  int st = -1;
  const std::string out = runShell(
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state " + experiment("300ms"),
      &st);
  ASSERT_EQ(st, 0) << out;
  const pid_t leader = waitPidFile(root_ + "/leader.pid", 1s);
  const pid_t child = waitPidFile(root_ + "/child.pid", 1s);
  ASSERT_GT(leader, 0);
  ASSERT_GT(child, 0);
  EXPECT_FALSE(alive(leader)) << "the exec target outlived its run";
  EXPECT_FALSE(alive(child)) << "a process of the target's group outlived the run";

  const fs::path runDir = runDirIn(root_ + "/reports");
  const auto report = readReport(runDir);
  ASSERT_FALSE(report.is_discarded()) << out;
  ASSERT_EQ(report["execs"].size(), 1u) << report["execs"].dump();
  const auto& exec = report["execs"][0];
  EXPECT_EQ(exec["target"], "svc");
  EXPECT_EQ(exec["pid"], leader);
  EXPECT_EQ(exec["state"], "stopped");
  EXPECT_EQ(exec["observed"]["exited"], "term");
  // The fault reached the started process by pid and start time.
  EXPECT_EQ(report["faults"][0]["state"], "reverted");
  EXPECT_EQ(report["faults"][0]["observed"]["victims"][0]["pid"], leader);
  std::ifstream log(runDir / "svc.log");
  std::string logText((std::istreambuf_iterator<char>(log)), {});
  EXPECT_EQ(logText, "started\n");
  const std::string held = runShell(
      std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + root_ + "/state", &st);
  EXPECT_EQ(held, "[]\n");
}

TEST_F(ExecTargetTest, ChaosctlKilledWhileTheTargetRunsTheGuardianStopsItsGroup) {
  const std::string file = experiment("30s");
  pid_t runner = ::fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(CHAOSCTL_PATH, CHAOSCTL_PATH, "run", "--state-dir", (root_ + "/state").c_str(),
            file.c_str(), nullptr);
    ::_exit(127);
  }
  const pid_t leader = waitPidFile(root_ + "/leader.pid", 10s);
  const pid_t child = waitPidFile(root_ + "/child.pid", 10s);
  ASSERT_GT(leader, 0);
  ASSERT_GT(child, 0);
  // Wait until the pause is applied (the leader is stopped), then kill chaosctl.
  const auto deadline = Clock::now() + 10s;
  int st = -1;
  while (Clock::now() < deadline) {
    const std::string held = runShell(
        std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + root_ + "/state", &st);
    auto list = nlohmann::json::parse(held, nullptr, false);
    bool paused = false;
    for (const auto& f : list)
      paused = paused || (f["type"] == "process.pause" && f["state"] == "applied");
    if (paused) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(alive(child));
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  EXPECT_TRUE(goneWithin(leader, 10s)) << "the started process outlived chaosctl";
  EXPECT_TRUE(goneWithin(child, 10s)) << "its group outlived chaosctl";
  const std::string held = runShell(
      std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + root_ + "/state", &st);
  EXPECT_EQ(held, "[]\n") << "the guardian marks the process.exec record reverted";
}

// The game-day example, for real: the demo front and its three replicas, one replica killed,
// the front routing around it, the replica restarted, everything stopped at the end.
TEST_F(ExecTargetTest, GameDayDemoExampleRunsForReal) {
  // A free port for the front; the replicas take the three above it.
  const uint16_t port = chaosd::testing::freeLoopbackPorts(4);
  ASSERT_NE(port, 0);
  int st = -1;
  const std::string out =
      runShell(std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state --report-dir " +
                   root_ + "/reports --var window=2s --var port=" + std::to_string(port) + " " +
                   CHAOSD_SOURCE_DIR + "/experiments/examples/gameday-demo.yaml",
               &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("target demo is ready: 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << out;
  const auto report = readReport(runDirIn(root_ + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  EXPECT_EQ(report["outcome"], "ok");
  const auto& observed = report["faults"][0]["observed"];
  ASSERT_EQ(observed["victims"].size(), 1u) << observed.dump();
  EXPECT_EQ(observed["died"], 1);
  ASSERT_EQ(observed["restarts"].size(), 1u)
      << "the front restarts its replica: " << observed.dump();
  EXPECT_EQ(observed["restarts"][0]["replaces"], observed["victims"][0]["pid"]);
  // The demo restarts after 0.5 s; the watch polls every 25 ms. restartMs comes from the new
  // process's start time, which /proc gives in clock ticks (10 ms): CI saw 499.5 ms.
  EXPECT_GE(observed["timeToRestartMs"].get<double>(), 490.0);
  EXPECT_LT(observed["timeToRestartMs"].get<double>(), 2000.0);
  EXPECT_EQ(report["execs"][0]["state"], "stopped");
  // Nothing of the demo is left: no process whose command line names our port.
  const std::string left =
      runShell("pgrep -af '[r]r-demo.py .*--port " + std::to_string(port) + "' || true", &st);
  EXPECT_EQ(left, "");
}

// An exec that fails after the child was journalled (not an executable format) is an error
// of the run, nothing is applied, and the journal holds nothing afterwards.
TEST_F(ExecTargetTest, AnExecFailingAfterItsJournalEntryLeavesNothingHeld) {
  const std::string bad = root_ + "/not-a-program";
  std::ofstream(bad) << "\x01\x02 not an executable format";
  fs::permissions(bad, fs::perms::owner_all);
  const std::string file = root_ + "/bad.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: bad}\n"
                         "targets: {svc: {exec: {argv: ["
                      << bad
                      << "]}}}\nsteadyState: {probes: []}\n"
                         "method: [{name: p, fault: process.pause, target: svc, duration: 1s}]\n"
                         "report: {dir: "
                      << root_ << "/reports}\n";
  int st = -1;
  const std::string out =
      runShell(std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state " + file, &st);
  EXPECT_EQ(st, 5) << out;
  EXPECT_NE(out.find("cannot start it: exec " + bad + ": Exec format error"), std::string::npos)
      << out;
  const std::string held = runShell(
      std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + root_ + "/state", &st);
  EXPECT_EQ(held, "[]\n");
}

// A service that dies before it is ready is an error of the run whose message quotes the
// last line it wrote (the reason: "address in use", a bad config line), not only its exit code.
TEST_F(ExecTargetTest, AServiceDyingBeforeReadyIsAnErrorQuotingItsLastLine) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts();
  ASSERT_NE(port, 0);
  const std::string file = root_ + "/dies.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: dies}\n"
                         "targets: {svc: {exec: {argv: [/bin/sh, -c, 'echo starting; echo "
                         "\"bind: Address already in use\" >&2; exit 3'], ready: {tcp: {host: "
                         "127.0.0.1, port: "
                      << port
                      << "}, within: 10s}}}}\nsteadyState: {probes: []}\n"
                         "method: [{name: p, fault: process.pause, target: svc, duration: 1s}]\n"
                         "report: {dir: "
                      << root_ << "/reports}\n";
  int st = -1;
  const std::string out =
      runShell(std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state " + file, &st);
  EXPECT_EQ(st, 5) << out;
  EXPECT_NE(out.find("target svc exited (exit code 3) before it was ready, its last line: "
                     "'bind: Address already in use'; see "),
            std::string::npos)
      << out;
  const std::string held = runShell(
      std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + root_ + "/state", &st);
  EXPECT_EQ(held, "[]\n");
}

TEST(ExecTargetUnitTest, TheLastLogLineIsTheLastNonEmptyLineOfTheLogsTail) {
  char tmpl[] = "/tmp/chaosd-exec-log-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string log = std::string(tmpl) + "/service.log";
  EXPECT_EQ(lastLogLine(log), "") << "no log yet";
  EXPECT_EQ(lastLogLine(""), "");
  std::ofstream(log) << std::string(10000, 'x') << "\nfirst\nTraceback (most recent call last):\n"
                     << "OSError: [Errno 98] Address already in use\n\n";
  EXPECT_EQ(lastLogLine(log), "OSError: [Errno 98] Address already in use");
  std::ofstream(log) << "only line, no end";
  EXPECT_EQ(lastLogLine(log), "only line, no end");
  fs::remove_all(tmpl);
}

TEST(ExecTargetUnitTest, AMissingProgramFailsAtStartAndAFailedJournalNeverRunsIt) {
  ExecSpec spec;
  spec.argv = {"/nonexistent/program"};
  auto missing = startExec(spec, "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

  char tmpl[] = "/tmp/chaosd-exec-unit-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string marker = std::string(tmpl) + "/ran";
  spec.argv = {"/bin/sh", "-c", "touch " + marker};
  pid_t seen = 0;
  auto refused = startExec(spec, "", [&](const StartedExec& s) -> Result<void> {
    seen = s.pid;
    return Error(ErrorCode::kIo, "journal is full");
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), "journal is full");
  EXPECT_GT(seen, 0);
  EXPECT_FALSE(alive(seen));
  EXPECT_FALSE(fs::exists(marker)) << "the program ran although its journal entry failed";
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace chaosd
