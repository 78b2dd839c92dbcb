// The time-skew demo for real through chaosctl: the token service started with libfaketime,
// its clock 5 minutes ahead for the window (seen by the service, gone before and after), the
// fault reverted; then kill -9 of `chaosctl run` while the skew is held: the guardian writes
// the true time back to the control file and stops the service.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "injectors/time/FakeTime.h"
#include "tests/support/FreePort.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

extern char** environ;

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::readFile;
using testing::readReport;
using testing::runDirIn;
using testing::runShell;
using testing::waitUntil;

class TimeSkewExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (auto lib = findFakeTimeLibrary(); !lib) GTEST_SKIP() << lib.error().describe();
    char tmpl[] = "/var/tmp/chaosd-timeskew-example-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  std::string command(const std::string& vars) {
    const auto port = std::to_string(chaosd::testing::freeLoopbackPorts());
    return std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ + "/state --report-dir " +
           root_ + "/reports --var port=" + port + " " + vars + " " + CHAOSD_SOURCE_DIR +
           "/experiments/examples/time-skew-demo.yaml";
  }

  std::string root_;
};

TEST_F(TimeSkewExampleTest, DemoRunsForRealAndHolds) {
  int st = -1;
  const std::string out = runShell(command("--var window=2s"), &st);
  EXPECT_EQ(st, 0) << out;
  const auto run = runDirIn(root_ + "/reports");
  auto report = readReport(run);
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["type"], "time.skew");
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "libfaketime");
  EXPECT_EQ(fault["observed"]["spec"], "+300") << fault.dump();
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  EXPECT_TRUE(report["execs"][0]["observed"]["faketime"].contains("library"))
      << report["execs"][0].dump();
  EXPECT_EQ(report["execs"][0]["state"], "stopped");
  // The control file went with its process.
  for (const auto& e : fs::directory_iterator(run)) {
    EXPECT_FALSE(e.path().filename().string().starts_with("chaosd-faketime-")) << e.path();
  }
}

TEST_F(TimeSkewExampleTest, DemoDeviatesWhenTheTokenIsNotYetValid) {
  int st = -1;
  const std::string out = runShell(command("--var window=2s --var offset=-2h"), &st);
  EXPECT_EQ(st, 1) << "a clock 2 h behind makes the token not yet valid: " << out;
  auto report = readReport(runDirIn(root_ + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  EXPECT_EQ(report["faults"][0]["observed"]["spec"], "-7200");
  EXPECT_EQ(report["faults"][0]["state"], "reverted");
}

TEST_F(TimeSkewExampleTest, KillNineOfTheRunWhileSkewedLeavesTheTrueTime) {
  const std::string log = root_ + "/run.log";
  const std::string cmd = "exec " + command("--var window=20s") + " >" + log + " 2>&1";
  pid_t run = 0;
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  ASSERT_EQ(::posix_spawn(&run, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  // Held: the run's control file holds the offset (after the 20 s baseline).
  std::string control;
  const bool applied = waitUntil(
      [&] {
        std::error_code ec;
        for (const auto& d : fs::recursive_directory_iterator(root_ + "/reports", ec)) {
          const std::string name = d.path().filename().string();
          if (name.starts_with("chaosd-faketime-") && name.ends_with(".rc") &&
              readFile(d.path().string()) == "+300\n") {
            control = d.path().string();
          }
        }
        return !control.empty();
      },
      90s);
  // Killed whatever happened: a run left going would write into the removed folder.
  ::kill(run, SIGKILL);
  ASSERT_EQ(::waitpid(run, nullptr, 0), run);
  ASSERT_TRUE(applied) << readFile(log);
  EXPECT_TRUE(waitUntil([&] { return readFile(control) == "+0\n"; }, 10s))
      << "the guardian did not revert the skew: " << readFile(control);
  // And nothing is held in the journal: the service was stopped too.
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(root_ + "/state"); }, 10s));
}

}  // namespace
}  // namespace chaosd
