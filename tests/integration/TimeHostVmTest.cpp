// time.skew of the host's clock for real: CLOCK_REALTIME stepped by clock_settime and set back
// to the true time, directly through the injector and through `chaosctl run` killed with -9
// while the skew is held (the guardian restores the clock; with the guardian killed too,
// `chaosctl recover` does). A stand-in NTP client (a child named chronyd) is paused for the
// fault and resumed after. It steps the clock of the machine it runs on, so it runs ONLY in
// the VM of scripts/vm-test (CHAOSD_VM=1) and skips everywhere else.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/NtpStandIn.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

extern char** environ;

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::NtpStandIn;
using testing::waitUntil;

constexpr int64_t kTwoHours = 7'200'000'000'000;
constexpr int64_t kTolerance = 5'000'000;  // 5 ms, the acceptance bound

int64_t ns(clockid_t id) {
  timespec t{};
  ::clock_gettime(id, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

class TimeHostVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("CHAOSD_VM") == nullptr) {
      GTEST_SKIP() << "steps the host's clock: runs only in the VM of scripts/vm-test";
    }
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_TIME)";
    ASSERT_TRUE(waitUntil([&] { return standIn_.comm() == "chronyd"; }, 5s));
    char tmpl[] = "/tmp/chaosd-timehost-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    // The true time, as the test sees it: CLOCK_REALTIME - CLOCK_MONOTONIC now.
    realMinusMono_ = 0;
    realMinusMono_ = offTrue();
  }
  void TearDown() override {
    if (owner_ > 0) {
      ::kill(owner_, SIGKILL);
      ::waitpid(owner_, nullptr, 0);
    }
    if (!root_.empty()) {
      int st = 0;
      testing::runShell(std::string(CHAOSCTL_PATH) + " recover --state-dir " + root_ + "/state",
                        &st);
      fs::remove_all(root_);
    }
    // Whatever happened, the clock leaves this test true.
    if (!root_.empty() && std::llabs(offTrue()) > kTolerance) {
      const int64_t truth = ns(CLOCK_MONOTONIC) + realMinusMono_;
      const timespec t{static_cast<time_t>(truth / 1'000'000'000),
                       static_cast<long>(truth % 1'000'000'000)};
      ::clock_settime(CLOCK_REALTIME, &t);
    }
  }

  // How far CLOCK_REALTIME is from the true time (positive: ahead): the tightest of a few
  // reads, as a preemption between them under TCG would add milliseconds.
  int64_t offTrue() const {
    int64_t best = 0, bestGap = INT64_MAX;
    for (int i = 0; i < 5; ++i) {
      const int64_t r1 = ns(CLOCK_REALTIME);
      const int64_t m = ns(CLOCK_MONOTONIC);
      const int64_t r2 = ns(CLOCK_REALTIME);
      if (r2 - r1 < bestGap) {
        bestGap = r2 - r1;
        best = r1 + (r2 - r1) / 2 - m - realMinusMono_;
      }
    }
    return best;
  }

  // `chaosctl run` of a host skew of +2h held for 60 s; returns once the clock shows it.
  void runAndWaitForTheSkew() {
    const std::string file = root_ + "/exp.yaml";
    std::ofstream(file)
        << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: host-skew-vm}\n"
           "steadyState:\n  baseline: {duration: 200ms}\n  recovery: {duration: 200ms}\n"
           "  probes:\n    - {name: alive, command: {argv: [/usr/bin/dash, -c, 'exit 0']}, "
           "every: 250ms}\n"
           "method:\n  - {name: ahead, fault: time.skew, args: {offset: +2h}, duration: 60s}\n"
           "guardrails: {allowHostClock: true}\n"
           "report: {dir: "
        << root_ << "/reports}\n";
    const std::string cmd = "exec " + std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ +
                            "/state " + file + " >" + root_ + "/run.log 2>&1";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    ASSERT_EQ(
        ::posix_spawn(&owner_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
    ASSERT_TRUE(waitUntil([&] { return std::llabs(offTrue() - kTwoHours) < 1'000'000'000; }, 60s))
        << testing::readFile(root_ + "/run.log");
    EXPECT_LT(std::llabs(offTrue() - kTwoHours), kTolerance) << offTrue();
    EXPECT_EQ(standIn_.state(), 'T') << "the NTP client is paused during the fault";
  }

  pid_t guardianOf(pid_t owner) const {
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::ifstream f(e.path() / "cmdline");
      std::string cmd((std::istreambuf_iterator<char>(f)), {});
      std::replace(cmd.begin(), cmd.end(), '\0', ' ');
      if (cmd.find("__guardian") != std::string::npos &&
          cmd.find("--owner-pid " + std::to_string(owner) + " ") != std::string::npos) {
        return std::stoi(e.path().filename());
      }
    }
    return -1;
  }

  NtpStandIn standIn_;
  std::string root_;
  int64_t realMinusMono_ = 0;
  pid_t owner_ = -1;
};

TEST_F(TimeHostVmTest, SkewAppliedByTheOffsetAndRevertedToTheTrueTime) {
  const FaultType* type = testing::builtinFaults().find("time.skew");
  ASSERT_NE(type, nullptr);
  auto injector = type->factory();
  Guardrails g;
  g.allowHostClock = true;
  FaultRequest r;
  r.runId = "vm";
  r.faultId = "host-vm";
  r.faultType = "time.skew";
  r.args = {{"offset", "+2h"}};
  r.duration = 30s;
  r.guardrails = &g;
  auto prepared = injector->prepare(r);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_EQ(prepared->undo["ntpPaused"].size(), 1U) << prepared->undo.dump();
  auto applied = injector->apply("host-vm", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  const int64_t during = offTrue();
  EXPECT_LT(std::llabs(during - kTwoHours), kTolerance) << during;
  EXPECT_EQ(standIn_.state(), 'T');
  EXPECT_EQ(injector->audit(prepared->undo)->size(), 2U) << "the clock and the paused client";
  std::this_thread::sleep_for(300ms);  // the fault is held while time passes

  auto reverted = injector->revert("host-vm", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  const int64_t after = offTrue();
  EXPECT_LT(std::llabs(after), kTolerance) << after;
  EXPECT_NE(standIn_.state(), 'T') << "resumed";
  EXPECT_EQ((*reverted)["ntp"]["resumed"].size(), 1U) << reverted->dump();
  EXPECT_TRUE(injector->audit(prepared->undo)->empty());
  ASSERT_TRUE(injector->revert("host-vm", prepared->undo).ok()) << "twice";
  EXPECT_LT(std::llabs(offTrue()), kTolerance);
  std::printf("[ measured ] host skew +2h: off by %+.3f ms during, %+.3f ms after revert\n",
              static_cast<double>(during - kTwoHours) / 1e6, static_cast<double>(after) / 1e6);
}

TEST_F(TimeHostVmTest, KillNineOfTheRunWhileSkewedTheGuardianRestoresTheTrueTime) {
  runAndWaitForTheSkew();
  // The guardian measures deadlines on a clock our step does not move: +2h does not make the
  // fault look overdue (it would be reverted at once otherwise).
  std::this_thread::sleep_for(1500ms);
  EXPECT_LT(std::llabs(offTrue() - kTwoHours), kTolerance) << "reverted early: " << offTrue();
  ::kill(owner_, SIGKILL);
  ASSERT_EQ(::waitpid(owner_, nullptr, 0), owner_);
  owner_ = -1;
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitUntil([&] { return std::llabs(offTrue()) < kTolerance; }, 20s)) << offTrue();
  const auto restoredIn = std::chrono::steady_clock::now() - killed;
  const int64_t after = offTrue();
  EXPECT_TRUE(waitUntil([&] { return standIn_.state() != 'T'; }, 10s)) << "NTP client resumed";
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(root_ + "/state"); }, 10s));
  std::printf(
      "[ measured ] kill -9 of chaosctl run: clock true again %.1f ms later, off by "
      "%+.3f ms\n",
      std::chrono::duration<double, std::milli>(restoredIn).count(),
      static_cast<double>(after) / 1e6);
}

TEST_F(TimeHostVmTest, OwnerAndGuardianKilledRecoverRestoresTheTrueTime) {
  runAndWaitForTheSkew();
  const pid_t guardian = guardianOf(owner_);
  ASSERT_GT(guardian, 0);
  ::kill(guardian, SIGKILL);
  ::kill(owner_, SIGKILL);
  ASSERT_EQ(::waitpid(owner_, nullptr, 0), owner_);
  owner_ = -1;
  ASSERT_TRUE(waitUntil([&] { return !fs::exists("/proc/" + std::to_string(guardian)); }, 5s));
  // Nobody is left: the clock stays skewed until recover.
  EXPECT_LT(std::llabs(offTrue() - kTwoHours), kTolerance);
  EXPECT_EQ(standIn_.state(), 'T');
  int st = -1;
  const std::string out = testing::runShell(
      std::string(CHAOSCTL_PATH) + " recover --state-dir " + root_ + "/state", &st);
  EXPECT_EQ(st, 0) << out;
  const int64_t after = offTrue();
  EXPECT_LT(std::llabs(after), kTolerance) << after << "\n" << out;
  EXPECT_NE(standIn_.state(), 'T');
  EXPECT_TRUE(testing::journalHoldsNothing(root_ + "/state"));
  std::printf(
      "[ measured ] chaosctl recover after kill -9 of owner and guardian: off by %+.3f "
      "ms\n",
      static_cast<double>(after) / 1e6);
}

}  // namespace
}  // namespace chaosd
