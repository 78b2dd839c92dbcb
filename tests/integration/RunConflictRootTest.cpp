// Two runs on one target, for real: a `chaosctl run` holds a disk fill; a second
// `chaosctl run` on the same directory exits 5 and applies nothing, the daemon refuses a
// submission on it with 409 naming the local run; once the local run has ended, the daemon's
// run goes ahead.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "tests/support/DaemonProcess.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::DaemonProcess;
using chaosd::testing::fillExperiment;
using chaosd::testing::readWhole;
using chaosd::testing::TempDir;

size_t fillFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-fill-", 0) == 0) ++n;
  }
  return n;
}

// chaosctl run FILE, stdout and stderr to `log`; the pid.
pid_t startRun(const std::vector<std::string>& extra, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<std::string> args = {CHAOSCTL_PATH, "run"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int waitExit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

template <typename Pred>
bool waitFor(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class RunConflictRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_FALSE(tmp_.path().empty());
    data_ = tmp_.path() + "/data";
    fs::create_directories(data_);
    file_ = tmp_.path() + "/hold.yaml";
    std::ofstream(file_) << fillExperiment("local-hold", "200ms", "2m");
  }
  void TearDown() override {
    if (local_ > 0) {
      ::kill(local_, SIGINT);
      waitExit(local_);
    }
  }
  std::vector<std::string> runArgs(const std::string& stateDir) const {
    return {file_,    "--var",        "dir=" + data_,          "--state-dir",
            stateDir, "--report-dir", tmp_.path() + "/reports"};
  }

  TempDir tmp_;
  std::string data_;
  std::string file_;
  pid_t local_ = -1;
};

TEST_F(RunConflictRootTest, ASecondRunOnAHeldPathIsRefusedByChaosctlAndByTheDaemon) {
  DaemonProcess d(tmp_.path());
  ASSERT_TRUE(d.waitReady()) << d.log();
  const std::string stateDir = d.stateDir();

  // The first run holds its fill.
  const std::string firstLog = tmp_.path() + "/first.log";
  local_ = startRun(runArgs(stateDir), firstLog);
  ASSERT_TRUE(waitFor([&] { return fillFiles(data_) == 1; }, 30s)) << readWhole(firstLog);
  std::smatch m;
  const std::string firstOut = readWhole(firstLog);
  ASSERT_TRUE(std::regex_search(firstOut, m, std::regex(R"(\(run ([0-9a-f]{16})\))"))) << firstOut;
  const std::string firstId = m[1];

  // A second chaosctl run on the same directory: exit 5, the run named, nothing applied.
  const std::string secondLog = tmp_.path() + "/second.log";
  const int code = waitExit(startRun(runArgs(stateDir), secondLog));
  const std::string second = readWhole(secondLog);
  EXPECT_EQ(code, 5) << second;
  EXPECT_NE(second.find("is in use by run " + firstId), std::string::npos) << second;
  EXPECT_NE(second.find(data_), std::string::npos) << second;
  EXPECT_NE(second.find("nothing applied"), std::string::npos) << second;
  EXPECT_EQ(fillFiles(data_), 1u);
  {
    auto journal = openJournal(stateDir + "/journal.db", JournalOpen::kExisting);
    ASSERT_TRUE(journal.ok()) << journal.error().describe();
    auto open = journal->openRuns();
    ASSERT_TRUE(open.ok());
    ASSERT_EQ(open->size(), 1u);
    EXPECT_EQ(open->front().runId, firstId);
    auto held = journal->faultsHeld();
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(held->size(), 1u);
  }

  // The daemon refuses the same target with 409, naming the local run.
  const std::string yaml = fillExperiment("daemon-fill", "200ms", "300ms");
  const std::string submitPath = "/v1/runs?var=dir=" + data_;
  auto refused = d.client().request("POST", submitPath, yaml, "application/yaml");
  ASSERT_TRUE(refused.ok()) << refused.error().describe();
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->errorMessage().find(firstId), std::string::npos) << refused->body;

  // The local run ends (Ctrl-C): its fill is reverted, and the daemon's run goes ahead.
  ::kill(local_, SIGINT);
  EXPECT_EQ(waitExit(local_), 3) << readWhole(firstLog);
  local_ = -1;
  EXPECT_EQ(fillFiles(data_), 0u);
  auto accepted = d.client().request("POST", submitPath, yaml, "application/yaml");
  ASSERT_TRUE(accepted.ok()) << accepted.error().describe();
  ASSERT_EQ(accepted->status, 202) << accepted->body;
  const std::string id = accepted->json()["id"];
  nlohmann::json run;
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = d.client().request("GET", "/v1/runs/" + id, "", "application/json");
        if (!r.ok()) return false;
        run = r->json();
        return run.value("state", "") == "ended";
      },
      60s))
      << run.dump();
  EXPECT_EQ(run["outcome"], "ok") << run.dump();
  EXPECT_EQ(fillFiles(data_), 0u);
}

// A run whose owner and guardian are gone (the machine rebooted mid-fill) left its filler
// file, journalled with the run's target. The next `chaosctl run` reverts it first, says so,
// and then runs on the same directory (without it, the target would be refused as held).
TEST_F(RunConflictRootTest, TheNextRunRevertsWhatADeadRunLeftAndThenRuns) {
  const std::string stateDir = tmp_.path() + "/state";
  {
    auto journal = openJournal(stateDir + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.error().describe();
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    RunRecord earlier;
    earlier.runId = "before-reboot";
    earlier.experiment = "earlier";
    earlier.ownerPid = dead;
    earlier.ownerStartTime = 1;
    earlier.targets = {{"path:" + fs::canonical(data_).string(), "data", "path " + data_}};
    ASSERT_TRUE(journal->beginRun(earlier).ok());
    TargetSpec target;
    target.name = "data";
    target.kind = TargetKind::kPath;
    target.path = data_;
    FaultRequest req;
    req.runId = earlier.runId;
    req.faultId = "before-reboot-1";
    req.stepName = "fill";
    req.faultType = "disk.fill";
    req.target = &target;
    req.args = {{"size", 1 << 20}};
    req.duration = 1h;
    DiskFillInjector injector;
    auto prepared = injector.prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    ASSERT_TRUE(
        journal
            ->recordIntent(earlier.runId,
                           makeIntent(req, *prepared, std::chrono::system_clock::now() + 1h, true))
            .ok());
    ASSERT_TRUE(injector.apply(req.faultId, prepared->undo).ok());
    ASSERT_TRUE(journal->markApplied(req.faultId).ok());
    ASSERT_EQ(fillFiles(data_), 1u);
  }
  std::ofstream(file_) << fillExperiment("after-reboot", "200ms", "300ms");
  const std::string log = tmp_.path() + "/next.log";
  const int code = waitExit(startRun(runArgs(stateDir), log));
  const std::string out = readWhole(log);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("reverted before-reboot-1 (disk.fill"), std::string::npos) << out;
  EXPECT_NE(out.find("left by run before-reboot whose owner is gone"), std::string::npos) << out;
  EXPECT_EQ(fillFiles(data_), 0u);
  auto journal = openJournal(stateDir + "/journal.db", JournalOpen::kExisting);
  ASSERT_TRUE(journal.ok());
  auto earlier = journal->run("before-reboot");
  ASSERT_TRUE(earlier.ok());
  EXPECT_EQ(earlier->outcome, "recovered");
  EXPECT_TRUE(journal->unreverted()->empty());
}

}  // namespace
}  // namespace chaosd
