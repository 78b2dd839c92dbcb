// `chaosctl run` as users run it, with a real fault (disk.fill: a real file): SIGKILL of the
// owner at random points, Ctrl-C, a failing baseline, and the guardian killed too. After
// each, nothing of ours may be left and the journal must say so.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/Shell.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using chaosd::testing::runCommand;

struct Child {
  pid_t pid = -1;
  int stdoutFd = -1;
};

Child spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return {};
  }
  return {pid, out[0]};
}

std::string readAll(int fd) {
  std::string s;
  std::array<char, 4096> buf{};
  ssize_t n = 0;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) s.append(buf.data(), static_cast<size_t>(n));
  ::close(fd);
  return s;
}

int waitExit(pid_t pid, int* signal = nullptr) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (signal) *signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class RunCrashSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/chaosd-crash-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/data");
    fs::create_directories(root_ + "/state");
    fs::create_directories(root_ + "/reports");
  }
  void TearDown() override {
    if (root_.empty()) return;
    for (pid_t p : spawned_) ::kill(p, SIGKILL);
    for (pid_t p : spawned_) ::waitpid(p, nullptr, WNOHANG);
    // Whatever a failed test left: revert through the journal, then remove the tree.
    int st = 0;
    runCommand(std::string(CHAOSCTL_PATH) + " recover --force --state-dir " + root_ + "/state 2>&1",
               &st);
    fs::remove_all(root_);
  }

  std::string experiment(const std::string& probeArgv, const std::string& method,
                         const std::string& extra = "") {
    std::string file = root_ + "/exp.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: crash}\n"
                           "targets: {data: {path: "
                        << root_
                        << "/data}}\n"
                           "steadyState:\n  baseline: {duration: 200ms}\n"
                           "  recovery: {duration: 200ms}\n  probes:\n"
                           "    - {name: alive, command: {argv: "
                        << probeArgv
                        << "}, every: 100ms}\n"
                           "method:\n"
                        << method << extra << "report: {dir: " << root_ << "/reports}\n";
    return file;
  }

  std::vector<std::string> ourFiles() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(root_ + "/data")) {
      if (e.path().filename().string().rfind(".chaosd-", 0) == 0) out.push_back(e.path());
    }
    return out;
  }

  nlohmann::json held() const {
    int st = 0;
    std::string out = runCommand(std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " +
                                     root_ + "/state 2>/dev/null",
                                 &st);
    return st == 0 ? nlohmann::json::parse(out, nullptr, false) : nlohmann::json();
  }

  // Waits (bounded) until no file of ours is left and the journal holds nothing.
  bool cleanWithin(std::chrono::milliseconds limit) const {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto h = held();
      if (ourFiles().empty() && h.is_array() && h.empty()) return true;
      std::this_thread::sleep_for(5ms);  // polling a condition across processes
    }
    return false;
  }

  Child start(const std::string& file) {
    Child c = spawn({CHAOSCTL_PATH, "run", "--state-dir", root_ + "/state", file});
    spawned_.push_back(c.pid);
    return c;
  }

  std::string root_;
  std::vector<pid_t> spawned_;
};

const char* kThreeFills =
    "  - {name: f1, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 300ms}\n"
    "  - {name: f2, fault: disk.fill, target: data, args: {size: 2MiB}, duration: 300ms}\n"
    "  - {name: f3, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 300ms,"
    " at: 100ms}\n";

TEST_F(RunCrashSafetyTest, Sigkill50RandomPointsLeavesNothing) {
  std::string file = experiment("[/bin/true]", kThreeFills);
  std::mt19937 rng(20261126);
  std::uniform_int_distribution<int> delayMs(0, 1300);
  for (int i = 0; i < 50; ++i) {
    int delay = delayMs(rng);
    Child c = start(file);
    ASSERT_GT(c.pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));  // the random kill point
    ::kill(c.pid, SIGKILL);
    waitExit(c.pid);
    ::close(c.stdoutFd);
    ASSERT_TRUE(cleanWithin(5s)) << "iteration " << i << ", kill after " << delay << "ms: left "
                                 << ourFiles().size() << " file(s), journal " << held().dump();
  }
}

TEST_F(RunCrashSafetyTest, KillMinusNineWhileHeldRevertsWithin200ms) {
  std::string file = experiment(
      "[/bin/true]",
      "  - {name: f, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 30s}\n");
  std::vector<double> latencies;
  for (int i = 0; i < 10; ++i) {
    int in = ::inotify_init1(IN_CLOEXEC);
    ASSERT_GE(in, 0);
    ASSERT_GE(::inotify_add_watch(in, (root_ + "/data").c_str(), IN_CLOSE_WRITE | IN_DELETE), 0);
    Child c = start(file);
    // Wait until the filler exists and the journal says applied.
    auto deadline = Clock::now() + 10s;
    bool applied = false;
    while (!applied && Clock::now() < deadline) {
      auto h = held();
      applied = h.is_array() && !h.empty() && h[0]["state"] == "applied";
      if (!applied) std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(applied);
    ASSERT_EQ(ourFiles().size(), 1u);
    // Drain events so far, kill, and time the deletion.
    std::array<char, 8192> buf{};
    ::fcntl(in, F_SETFL, O_NONBLOCK);
    while (::read(in, buf.data(), buf.size()) > 0) {
    }
    auto killedAt = Clock::now();
    ::kill(c.pid, SIGKILL);
    bool gone = false;
    while (!gone) {
      pollfd p{in, POLLIN, 0};
      ASSERT_GT(::poll(&p, 1, 2000), 0) << "no deletion within 2s";
      ssize_t n = ::read(in, buf.data(), buf.size());
      for (ssize_t off = 0; off < n;) {
        auto* ev = reinterpret_cast<inotify_event*>(buf.data() + off);
        if ((ev->mask & IN_DELETE) && std::string(ev->name).rfind(".chaosd-fill-", 0) == 0) {
          gone = true;
        }
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killedAt).count());
    ::close(in);
    waitExit(c.pid);
    ::close(c.stdoutFd);
    ASSERT_TRUE(cleanWithin(5s));
  }
  std::sort(latencies.begin(), latencies.end());
  std::printf("kill -9 to filler deleted by the guardian: median %.2f ms, max %.2f ms (n=%zu)\n",
              latencies[latencies.size() / 2], latencies.back(), latencies.size());
  EXPECT_LT(latencies.back(), 200.0);
}

TEST_F(RunCrashSafetyTest, CtrlCRevertsRunsRollbacksWritesReportAndExits3) {
  std::string marker = root_ + "/rolled-back";
  std::string file = experiment(
      "[/bin/true]",
      "  - {name: f, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 30s}\n",
      "rollbacks: [{name: mark, command: [/usr/bin/touch, " + marker + "]}]\n");
  Child c = start(file);
  auto deadline = Clock::now() + 10s;
  while (ourFiles().empty() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(ourFiles().size(), 1u);
  ::kill(c.pid, SIGINT);
  int sig = 0;
  int code = waitExit(c.pid, &sig);
  std::string out = readAll(c.stdoutFd);
  EXPECT_EQ(sig, 0);
  EXPECT_EQ(code, 3) << out;
  EXPECT_TRUE(ourFiles().empty());
  EXPECT_TRUE(fs::exists(marker)) << "the rollback ran";
  auto h = held();
  EXPECT_TRUE(h.is_array() && h.empty()) << h.dump();
  // report.json says aborted and reverted.
  std::string reportPath;
  for (const auto& e : fs::recursive_directory_iterator(root_ + "/reports")) {
    if (e.path().filename() == "report.json") reportPath = e.path();
  }
  ASSERT_FALSE(reportPath.empty()) << out;
  std::ifstream in(reportPath);
  auto report = nlohmann::json::parse(in);
  EXPECT_EQ(report["outcome"], "aborted");
  EXPECT_EQ(report["exitCode"], 3);
  EXPECT_EQ(report["faults"][0]["state"], "reverted");
  EXPECT_EQ(report["rollbacks"][0]["ok"], true);
}

TEST_F(RunCrashSafetyTest, FailingBaselineAppliesNothingAndExits1NamingTheProbe) {
  std::string file = experiment(
      "[/bin/false]",
      "  - {name: f, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 1s}\n");
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ASSERT_GE(::inotify_add_watch(in, (root_ + "/data").c_str(), IN_CREATE), 0);
  Child c = start(file);
  int code = waitExit(c.pid);
  std::string out = readAll(c.stdoutFd);
  std::array<char, 4096> buf{};
  EXPECT_LT(::read(in, buf.data(), buf.size()), 0) << "a file was created: a fault was applied";
  ::close(in);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("probe alive failed in the before phase"), std::string::npos) << out;
}

TEST_F(RunCrashSafetyTest, GuardianKilledTooThenRecoverCleansUp) {
  std::string file = experiment(
      "[/bin/true]",
      "  - {name: f, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 30s}\n");
  Child c = start(file);
  auto deadline = Clock::now() + 10s;
  while (ourFiles().empty() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(ourFiles().size(), 1u);
  // The guardian: the process whose command line names the guardian subcommand and whose
  // owner pid is ours.
  pid_t guardian = -1;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), {});
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("__guardian") != std::string::npos &&
        cmd.find("--owner-pid " + std::to_string(c.pid) + " ") != std::string::npos) {
      guardian = std::stoi(e.path().filename());
    }
  }
  ASSERT_GT(guardian, 0);
  ::kill(guardian, SIGKILL);
  ::kill(c.pid, SIGKILL);
  waitExit(c.pid);
  ::close(c.stdoutFd);
  // Nobody is left to revert: the filler stays until recover.
  EXPECT_EQ(ourFiles().size(), 1u);
  int st = 0;
  std::string out =
      runCommand(std::string(CHAOSCTL_PATH) + " recover --state-dir " + root_ + "/state 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("reverted"), std::string::npos) << out;
  EXPECT_TRUE(ourFiles().empty());
  auto h = held();
  EXPECT_TRUE(h.is_array() && h.empty()) << h.dump();
}

}  // namespace
