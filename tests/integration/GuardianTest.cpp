// The guardian against real processes and real files: owners (the helper program, or this
// test process itself) journal and apply test.file faults, then die in every way we can make
// them die. Nothing here sleeps to synchronise: it waits on pidfds, waitid, SIGCHLD, inotify
// and the owner's progress lines, each with a deadline.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): without it, C++ links fail.
extern "C" {
#include <sys/pidfd.h>
}

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/testing/FileFaultInjector.h"

extern char** environ;

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kKillToRevertLimit = 200ms;

double msSince(SteadyClock::time_point t0, SteadyClock::time_point t1 = SteadyClock::now()) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

int msLeft(SteadyClock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// True when fd reported an event before the deadline.
bool waitReadable(int fd, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, msLeft(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

std::vector<std::string> leftoverTestFiles(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-test-", 0) == 0) out.push_back(e.path());
  }
  return out;
}

// Waits (on inotify) until none of the files exists; the time it happened, or nullopt.
std::optional<SteadyClock::time_point> waitFilesGone(int inotifyFd,
                                                     const std::vector<std::string>& files,
                                                     SteadyClock::time_point deadline) {
  for (;;) {
    bool any = std::any_of(files.begin(), files.end(), [](auto& f) { return fs::exists(f); });
    if (!any) return SteadyClock::now();
    if (!waitReadable(inotifyFd, deadline)) return std::nullopt;
    char buf[4096];
    while (::read(inotifyFd, buf, sizeof buf) > 0) {
    }
  }
}

// Polls a condition until it holds or the deadline passes (for state with no event to wait
// on, such as a journal row another process writes).
template <typename Pred>
bool eventually(Pred pred, SteadyClock::time_point deadline) {
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return false;
    timespec nap{0, 1'000'000};
    ::nanosleep(&nap, nullptr);
  }
}

// A process this test spawned, with its stdout on a pipe.
class Child {
 public:
  Child() = default;
  Child(Child&&) = default;
  Child& operator=(Child&&) = default;
  ~Child() { killAndReap(); }

  static Child spawn(const std::vector<std::string>& args, bool ownProcessGroup = false) {
    Child c;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return c;
    c.out_ = Fd(out[0]);
    Fd writeEnd(out[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), STDOUT_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);  // this test blocks SIGCHLD; children must not
    short flags = POSIX_SPAWN_SETSIGMASK;
    if (ownProcessGroup) {
      flags |= POSIX_SPAWN_SETPGROUP;
      posix_spawnattr_setpgroup(&attr, 0);
    }
    posix_spawnattr_setflags(&attr, flags);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return c;
    c.pid_ = pid;
    c.pidfd_ = Fd(::pidfd_open(pid, 0));
    return c;
  }

  bool valid() const { return pidfd_.valid(); }
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }

  // The next line starting with prefix (earlier lines are consumed), or nullopt at the
  // deadline or at end of file.
  std::optional<std::string> waitLine(std::string_view prefix, std::chrono::milliseconds timeout) {
    auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      for (size_t nl; (nl = buffer_.find('\n')) != std::string::npos;) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        lines_.push_back(line);
        if (line.rfind(prefix, 0) == 0) return line;
      }
      if (!waitReadable(out_.get(), deadline)) return std::nullopt;
      char buf[512];
      ssize_t n = ::read(out_.get(), buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  // Every line printed so far (after its death: what it got to say).
  const std::vector<std::string>& drain() {
    while (waitLine("\x01", 0ms)) {
    }
    return lines_;
  }

  void kill(int sig = SIGKILL) const { ::pidfd_send_signal(pidfd_.get(), sig, nullptr, 0); }

  // Reaps it; its wait status, or nullopt when it did not exit by the deadline.
  std::optional<siginfo_t> wait(std::chrono::milliseconds timeout = 10s) {
    if (!pidfd_) return std::nullopt;
    if (!waitReadable(pidfd_.get(), SteadyClock::now() + timeout)) return std::nullopt;
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) !=
        0) {
      return std::nullopt;
    }
    pidfd_.reset();
    return info;
  }

  void killAndReap() {
    if (!pidfd_) return;
    kill();
    (void)wait();
  }

 private:
  pid_t pid_ = 0;
  Fd pidfd_;
  Fd out_;
  std::string buffer_;
  std::vector<std::string> lines_;
};

bool exitedWith(const std::optional<siginfo_t>& info, int code) {
  return info && info->si_code == CLD_EXITED && info->si_status == code;
}
bool killedBy(const std::optional<siginfo_t>& info, int sig) {
  return info && info->si_code == CLD_KILLED && info->si_status == sig;
}

std::vector<pid_t> myChildren() {
  std::vector<pid_t> out;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "children");
    for (pid_t pid; in >> pid;) out.push_back(pid);
  }
  return out;
}

// This test process is a child subreaper with SIGCHLD blocked: a guardian orphaned by its
// owner's death becomes our child, so we can wait for it (sigtimedwait on SIGCHLD) and reap it.
class GuardianTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ASSERT_EQ(::sigprocmask(SIG_BLOCK, &chld, &oldMask_), 0);
    std::string tmpl = (fs::temp_directory_path() / "chaosd-guardian-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "faults";
    fs::create_directories(dir_);
    journalPath_ = (root_ / "journal.db").string();
    registerTestFaults(registry_);
    auto j = openJournal(journalPath_);
    ASSERT_TRUE(j.ok()) << j.error().describe();
    journal_.emplace(std::move(*j));
    inotify_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    ASSERT_TRUE(inotify_.valid());
    ASSERT_GE(::inotify_add_watch(inotify_.get(), dir_.c_str(), IN_DELETE), 0);
  }

  void TearDown() override {
    if (root_.empty()) return;
    // Whatever is still running (a failed test): kill it, then reap everything.
    for (pid_t pid : myChildren()) ::kill(pid, SIGKILL);
    EXPECT_TRUE(reapChildren(SteadyClock::now() + 10s)) << "children left: " << myChildren().size();
    ::sigprocmask(SIG_SETMASK, &oldMask_, nullptr);
    ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    journal_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Reaps every child until none is left or the deadline passes; false at the deadline.
  bool reapChildren(SteadyClock::time_point deadline, std::vector<siginfo_t>* reaped = nullptr) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0) return errno == ECHILD;
      if (info.si_pid != 0) {
        if (reaped != nullptr) reaped->push_back(info);
        continue;
      }
      auto left = std::max<SteadyClock::duration>(deadline - SteadyClock::now(), {});
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      if (::sigtimedwait(&chld, nullptr, &ts) < 0 && errno == EAGAIN) {
        return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0 && errno == ECHILD;
      }
    }
  }

  Child spawnOwner(const std::string& runId, const std::string& mode, int faults = 3,
                   std::vector<std::string> extra = {}, bool ownProcessGroup = false) {
    std::vector<std::string> args{CHAOSD_GUARDIAN_HELPER,
                                  "own",
                                  "--journal",
                                  journalPath_,
                                  "--run",
                                  runId,
                                  "--dir",
                                  dir_.string(),
                                  "--faults",
                                  std::to_string(faults),
                                  "--mode",
                                  mode};
    args.insert(args.end(), extra.begin(), extra.end());
    return Child::spawn(args, ownProcessGroup);
  }

  // Waits for "guardian PID" and returns a pidfd of the guardian.
  Fd guardianOf(Child& owner, pid_t* pidOut = nullptr) {
    auto line = owner.waitLine("guardian ", 10s);
    if (!line) return Fd();
    pid_t pid = std::stoi(line->substr(9));
    if (pidOut != nullptr) *pidOut = pid;
    return Fd(::pidfd_open(pid, 0));
  }

  // By value: a range-for over `*journal_->faultsOfRun(id)` would dangle (the Result dies
  // before the loop body runs, until C++23).
  std::vector<FaultRecord> faultsOf(const std::string& runId) {
    auto faults = journal_->faultsOfRun(runId);
    EXPECT_TRUE(faults.ok());
    return faults.ok() ? std::move(faults).value() : std::vector<FaultRecord>{};
  }

  std::vector<std::string> filesOf(const std::string& runId) {
    std::vector<std::string> files;
    for (const auto& f : faultsOf(runId)) files.push_back(f.undo["file"]);
    return files;
  }

  GuardianConfig inProcessConfig(const std::string& runId) {
    GuardianConfig config;
    config.journalPath = journalPath_;
    config.runId = runId;
    config.executable = CHAOSD_GUARDIAN_HELPER;
    config.leadingArgs = {"chaosd_guardian_helper", std::string(kGuardianSubcommand)};
    return config;
  }

  // Journals and applies one test.file fault owned by this process.
  std::string applyHere(const std::string& runId, const std::string& faultId,
                        std::optional<WallTime> deadline) {
    FaultRequest request;
    request.runId = runId;
    request.faultId = faultId;
    request.faultType = std::string(kTestFileFault);
    request.args = {{"path", dir_.string()}};
    auto prepared = injector_.prepare(request);
    EXPECT_TRUE(prepared.ok());
    EXPECT_TRUE(
        journal_->recordIntent(runId, makeIntent(request, *prepared, deadline, false)).ok());
    EXPECT_TRUE(injector_.apply(faultId, prepared->undo).ok());
    EXPECT_TRUE(journal_->markApplied(faultId).ok());
    return prepared->undo["file"];
  }

  RunRecord selfRun(const std::string& runId) {
    RunRecord run;
    run.runId = runId;
    run.experiment = "in-process";
    run.ownerPid = ::getpid();
    run.ownerStartTime = *selfStartTime();
    return run;
  }

  sigset_t oldMask_{};
  fs::path root_;
  fs::path dir_;
  std::string journalPath_;
  std::optional<FaultJournal> journal_;
  FaultRegistry registry_;
  FileFaultInjector injector_;
  Fd inotify_;
};

void printLatencies(const char* what, std::vector<double> ms) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  std::printf("[ measure  ] %s over %zu runs: median %.2f ms, min %.2f ms, max %.2f ms\n", what,
              ms.size(), ms[ms.size() / 2], ms.front(), ms.back());
}

// ---- the owner dies --------------------------------------------------------------------

TEST_F(GuardianTest, RevertsEveryFaultWithinMillisecondsOfTheOwnersSigkill) {
  constexpr int kRuns = 10;
  constexpr int kFaults = 5;
  std::vector<double> toDeath, toFirstGone, toGone, toGuardianExit;
  for (int r = 0; r < kRuns; ++r) {
    std::string runId = "kill-" + std::to_string(r);
    Child owner = spawnOwner(runId, "hold", kFaults);
    ASSERT_TRUE(owner.valid());
    Fd guardian = guardianOf(owner);
    ASSERT_TRUE(guardian.valid());
    ASSERT_TRUE(owner.waitLine("applied", 10s)) << "owner did not apply its faults";
    auto files = filesOf(runId);
    ASSERT_EQ(files.size(), static_cast<size_t>(kFaults));
    for (const auto& f : files) ASSERT_TRUE(fs::exists(f)) << f;
    for (const auto& f : faultsOf(runId)) ASSERT_EQ(f.state, FaultState::kApplied);

    auto t0 = SteadyClock::now();
    owner.kill();
    auto status = owner.wait();
    auto tDeath = SteadyClock::now();
    ASSERT_TRUE(killedBy(status, SIGKILL));
    auto tFirst = waitFilesGone(inotify_.get(), {files.back()}, t0 + 5s);  // reverted first
    auto tGone = waitFilesGone(inotify_.get(), files, t0 + 5s);
    ASSERT_TRUE(tGone.has_value()) << "faults still on the machine 5 s after the owner died";
    ASSERT_TRUE(waitReadable(guardian.get(), t0 + 5s)) << "guardian did not exit";
    auto tExit = SteadyClock::now();
    std::vector<siginfo_t> reaped;
    ASSERT_TRUE(reapChildren(SteadyClock::now() + 5s, &reaped));
    ASSERT_EQ(reaped.size(), 1u);
    EXPECT_TRUE(exitedWith(reaped.front(), 0)) << "guardian status " << reaped.front().si_status;

    toDeath.push_back(msSince(t0, tDeath));
    toGone.push_back(msSince(t0, *tGone));
    if (tFirst) toFirstGone.push_back(msSince(t0, *tFirst));
    toGuardianExit.push_back(msSince(t0, tExit));
    EXPECT_LT(*tGone - t0, kKillToRevertLimit) << "run " << r;
    for (const auto& f : faultsOf(runId)) {
      EXPECT_EQ(f.state, FaultState::kReverted) << f.faultId;
      EXPECT_EQ(f.revertedBy, "guardian");
    }
    EXPECT_EQ(journal_->run(runId)->outcome, "owner-died");
  }
  printLatencies("SIGKILL -> owner reaped by the test", toDeath);
  printLatencies("SIGKILL -> first fault file gone (newest fault)", toFirstGone);
  printLatencies("SIGKILL -> all 5 fault files gone", toGone);
  printLatencies("SIGKILL -> guardian exited (journal marked, run ended)", toGuardianExit);
}

// Ctrl-C reaches the owner's whole process group; the guardian is in a session of its own.
TEST_F(GuardianTest, SurvivesCtrlCToTheOwnersProcessGroup) {
  Child owner = spawnOwner("ctrl-c", "hold", 2, {}, /*ownProcessGroup=*/true);
  ASSERT_TRUE(owner.valid());
  Fd guardian = guardianOf(owner);
  ASSERT_TRUE(guardian.valid());
  ASSERT_TRUE(owner.waitLine("applied", 10s));
  auto files = filesOf("ctrl-c");
  ASSERT_EQ(::kill(-owner.pid(), SIGINT), 0);
  EXPECT_TRUE(killedBy(owner.wait(), SIGINT));
  ASSERT_TRUE(waitFilesGone(inotify_.get(), files, SteadyClock::now() + 5s).has_value());
  std::vector<siginfo_t> reaped;
  ASSERT_TRUE(reapChildren(SteadyClock::now() + 5s, &reaped));
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_TRUE(exitedWith(reaped.front(), 0));
  EXPECT_EQ(journal_->run("ctrl-c")->outcome, "owner-died");
}

// ---- the owner finishes ------------------------------------------------------------------

TEST_F(GuardianTest, OwnerThatFinishesNormallyLetsTheGuardianExitTouchingNothing) {
  // "leave": the owner ends its run and finishes the guardian with its faults still applied,
  // so a guardian that reverted anything would show.
  Child owner = spawnOwner("leave", "leave", 3);
  ASSERT_TRUE(owner.valid());
  Fd guardian = guardianOf(owner);
  ASSERT_TRUE(guardian.valid());
  ASSERT_TRUE(owner.waitLine("finished", 10s));
  EXPECT_TRUE(exitedWith(owner.wait(), 0));
  EXPECT_TRUE(waitReadable(guardian.get(), SteadyClock::now() + 1s));  // reaped by its owner
  EXPECT_TRUE(myChildren().empty());
  auto files = filesOf("leave");
  ASSERT_EQ(files.size(), 3u);
  for (const auto& f : files) EXPECT_TRUE(fs::exists(f)) << f;
  for (const auto& f : faultsOf("leave")) EXPECT_EQ(f.state, FaultState::kApplied);
  EXPECT_EQ(journal_->run("leave")->outcome, "ok");

  // Its owner is gone now: recovery cleans up what it left.
  auto report = recoverAll(*journal_, registry_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->reverted(), 3u);
  EXPECT_TRUE(leftoverTestFiles(dir_).empty());
}

TEST_F(GuardianTest, OwnerThatRevertsAndFinishesLeavesNothing) {
  Child owner = spawnOwner("finish", "finish", 4);
  ASSERT_TRUE(owner.valid());
  ASSERT_TRUE(owner.waitLine("finished", 10s));
  EXPECT_TRUE(exitedWith(owner.wait(), 0));
  EXPECT_TRUE(leftoverTestFiles(dir_).empty());
  for (const auto& f : faultsOf("finish")) {
    EXPECT_EQ(f.state, FaultState::kReverted);
    EXPECT_EQ(f.revertedBy, "owner");
  }
  EXPECT_EQ(journal_->run("finish")->outcome, "ok");
}

// ---- the guardian dies ---------------------------------------------------------------------

TEST_F(GuardianTest, OwnerSeesItsGuardianDie) {
  ASSERT_TRUE(journal_->beginRun(selfRun("self-watch")).ok());
  auto handle = startGuardian(inProcessConfig("self-watch"));
  ASSERT_TRUE(handle.ok()) << handle.error().describe();
  EXPECT_TRUE(handle->alive());
  Fd pidfd(::pidfd_open(handle->pid(), 0));
  ASSERT_EQ(::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0), 0);
  ASSERT_TRUE(waitReadable(pidfd.get(), SteadyClock::now() + 5s));
  EXPECT_FALSE(handle->alive());  // the owner must not apply anything more
  auto finished = handle->finish();
  ASSERT_FALSE(finished.ok());
  EXPECT_NE(finished.error().describe().find("signal 9"), std::string::npos)
      << finished.error().describe();
  EXPECT_TRUE(myChildren().empty());
}

TEST_F(GuardianTest, GuardianThenOwnerKilledLeavesFaultsForRecoverAll) {
  Child owner = spawnOwner("both", "hold", 3);
  ASSERT_TRUE(owner.valid());
  Fd guardian = guardianOf(owner);
  ASSERT_TRUE(guardian.valid());
  ASSERT_TRUE(owner.waitLine("applied", 10s));
  ASSERT_EQ(::pidfd_send_signal(guardian.get(), SIGKILL, nullptr, 0), 0);
  ASSERT_TRUE(waitReadable(guardian.get(), SteadyClock::now() + 5s));
  owner.kill();
  ASSERT_TRUE(killedBy(owner.wait(), SIGKILL));
  ASSERT_TRUE(reapChildren(SteadyClock::now() + 5s));  // the orphaned guardian's zombie

  auto files = filesOf("both");
  ASSERT_EQ(files.size(), 3u);
  for (const auto& f : files) EXPECT_TRUE(fs::exists(f)) << "nobody reverted " << f;
  EXPECT_EQ(journal_->faultsHeld()->size(), 3u);

  auto report = recoverAll(*journal_, registry_);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_EQ(report->reverted(), 3u);
  EXPECT_TRUE(report->clean());
  EXPECT_TRUE(leftoverTestFiles(dir_).empty());
  EXPECT_TRUE(journal_->faultsHeld()->empty());
  EXPECT_EQ(journal_->fault("both-f0")->revertedBy, "recovery");
  EXPECT_EQ(journal_->run("both")->outcome, "recovered");
}

// ---- deadlines ---------------------------------------------------------------------------

TEST_F(GuardianTest, RevertsAFaultPastItsDeadlineWhileTheOwnerHangs) {
  ASSERT_TRUE(journal_->beginRun(selfRun("hung")).ok());
  auto config = inProcessConfig("hung");
  config.deadlineGrace = 100ms;
  auto handle = startGuardian(config);
  ASSERT_TRUE(handle.ok()) << handle.error().describe();
  WallTime deadline = std::chrono::system_clock::now() + 300ms;
  std::string shortFile = applyHere("hung", "hung-short", deadline);
  std::string longFile = applyHere("hung", "hung-long", std::chrono::system_clock::now() + 1h);

  // This process now "hangs": it only waits for the file to disappear.
  auto gone = waitFilesGone(inotify_.get(), {shortFile}, SteadyClock::now() + 5s);
  ASSERT_TRUE(gone.has_value()) << "the guardian did not revert an overdue fault";
  auto late = std::chrono::system_clock::now() - deadline;
  std::printf("[ measure  ] overdue fault reverted %.0f ms after its deadline (grace 100 ms)\n",
              std::chrono::duration<double, std::milli>(late).count());
  EXPECT_GE(late, 100ms);
  // The file goes first, the journal row right after it.
  ASSERT_TRUE(
      eventually([&] { return journal_->fault("hung-short")->state != FaultState::kApplied; },
                 SteadyClock::now() + 5s));
  auto f = journal_->fault("hung-short");
  EXPECT_EQ(f->state, FaultState::kReverted);
  EXPECT_EQ(f->revertedBy, "guardian");
  EXPECT_TRUE(fs::exists(longFile));  // not due: untouched
  EXPECT_EQ(journal_->fault("hung-long")->state, FaultState::kApplied);
  EXPECT_TRUE(handle->alive());

  // The owner wakes up and reverts everything: the guardian's revert makes its own a no-op.
  ASSERT_TRUE(injector_.revert("hung-short", f->undo).ok());
  EXPECT_EQ(*journal_->markReverted("hung-short"), false);
  ASSERT_TRUE(injector_.revert("hung-long", journal_->fault("hung-long")->undo).ok());
  EXPECT_EQ(*journal_->markReverted("hung-long"), true);
  EXPECT_EQ(*journal_->endRun("hung", "ok"), true);
  auto finished = handle->finish();
  EXPECT_TRUE(finished.ok()) << finished.error().describe();
  EXPECT_EQ(journal_->run("hung")->outcome, "ok");
}

// ---- start-up edges ----------------------------------------------------------------------

// An owner that died before the guardian watched it, or a pid reused by another process:
// the guardian acts at once.
TEST_F(GuardianTest, ActsAtOnceWhenTheOwnerIsAlreadyGoneOrThePidWasReused) {
  for (bool reused : {false, true}) {
    std::string runId = reused ? "reused" : "gone";
    pid_t pid = ::getpid();
    uint64_t start = *selfStartTime() + 1;  // our pid, another start time: a reused pid
    if (!reused) {
      Child gone = Child::spawn({"/bin/true"});
      ASSERT_TRUE(gone.valid());
      pid = gone.pid();
      start = *readStartTime(pid);  // a zombie until reaped
      ASSERT_TRUE(exitedWith(gone.wait(), 0));
    }
    RunRecord run = selfRun(runId);
    run.ownerPid = pid;
    run.ownerStartTime = start;
    ASSERT_TRUE(journal_->beginRun(run).ok());
    std::string file = applyHere(runId, runId + "-f", std::nullopt);
    Child guardian = Child::spawn({CHAOSD_GUARDIAN_HELPER, "__guardian", "--journal", journalPath_,
                                   "--run", runId, "--owner-pid", std::to_string(pid),
                                   "--owner-start", std::to_string(start)});
    ASSERT_TRUE(guardian.valid());
    EXPECT_TRUE(exitedWith(guardian.wait(5s), 0)) << runId;
    EXPECT_FALSE(fs::exists(file)) << runId;
    EXPECT_EQ(journal_->run(runId)->outcome, "owner-died");
  }
}

TEST_F(GuardianTest, StartFailsCleanlyForARunTheJournalDoesNotKnow) {
  auto handle = startGuardian(inProcessConfig("no-such-run"));
  ASSERT_FALSE(handle.ok());
  EXPECT_NE(handle.error().describe().find("status 3"), std::string::npos)
      << handle.error().describe();
  EXPECT_TRUE(myChildren().empty());
  auto bad = Child::spawn({CHAOSD_GUARDIAN_HELPER, "__guardian", "--journal", journalPath_});
  EXPECT_TRUE(exitedWith(bad.wait(5s), 2));
}

// ---- crash safety at 50 random points ----------------------------------------------------

TEST_F(GuardianTest, CrashSafetyAtFiftyRandomKillPoints) {
  constexpr int kIterations = 50;
  constexpr uint64_t kSeed = 0xC4A05D;
  // The kill window is the owner's start-up (measured here: ~15 ms, ~150 ms under ASan) plus
  // 150 ms of churn (a cycle is ~10-50 ms of fsyncs), so kills land before the guardian exists,
  // while it starts, and in every phase of journal, apply and revert.
  int startupUs = 0;
  {
    auto t0 = SteadyClock::now();
    Child probe = spawnOwner("crash-calibration", "churn");
    ASSERT_TRUE(probe.valid());
    ASSERT_TRUE(probe.waitLine("churning", 30s));
    startupUs = static_cast<int>(msSince(t0) * 1000);
    probe.kill();
    ASSERT_TRUE(killedBy(probe.wait(), SIGKILL));
    ASSERT_TRUE(reapChildren(SteadyClock::now() + 10s));
  }
  const int maxDelayUs = startupUs + 150'000;
  std::printf(
      "[ crash    ] seed 0x%llx, start-up %d us, delay uniform in [0, %d] us from the "
      "owner's spawn\n",
      static_cast<unsigned long long>(kSeed), startupUs, maxDelayUs);
  std::mt19937_64 rng(kSeed);
  std::uniform_int_distribution<int> delayUs(0, maxDelayUs);
  std::vector<double> guardianLatency;
  int beforeGuardian = 0, starting = 0, churning = 0;
  size_t totalFaults = 0, totalByGuardian = 0, totalWasApplied = 0;

  for (int i = 0; i < kIterations; ++i) {
    SCOPED_TRACE("iteration " + std::to_string(i));
    std::string runId = "crash-" + std::to_string(i);
    int delay = delayUs(rng);
    timespec at{};
    ::clock_gettime(CLOCK_MONOTONIC, &at);
    Child owner = spawnOwner(runId, "churn");
    ASSERT_TRUE(owner.valid());
    at.tv_nsec += static_cast<long>(delay) * 1000;
    at.tv_sec += at.tv_nsec / 1'000'000'000;
    at.tv_nsec %= 1'000'000'000;
    // The kill point itself, not a synchronisation: the owner runs freely until then.
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
    auto t0 = SteadyClock::now();
    owner.kill();
    ASSERT_TRUE(killedBy(owner.wait(), SIGKILL));

    const auto& lines = owner.drain();
    bool hadGuardian = std::any_of(lines.begin(), lines.end(),
                                   [](auto& l) { return l.rfind("guardian ", 0) == 0; });
    bool wasChurning = std::find(lines.begin(), lines.end(), "churning") != lines.end();
    // A guardian, announced or not (killed between fork and the announcement), is our child
    // now: wait for it to finish its work.
    std::vector<siginfo_t> reaped;
    ASSERT_TRUE(reapChildren(SteadyClock::now() + 10s, &reaped)) << "guardian still running";
    for (const auto& r : reaped) {
      EXPECT_TRUE(exitedWith(r, 0))
          << "guardian " << r.si_pid << " code " << r.si_code << " status " << r.si_status;
    }
    if (!reaped.empty()) guardianLatency.push_back(msSince(t0));

    auto left = leftoverTestFiles(dir_);
    EXPECT_TRUE(left.empty()) << "left: " << left.front();
    auto faults = journal_->faultsOfRun(runId);
    ASSERT_TRUE(faults.ok());
    for (const auto& f : *faults) {
      EXPECT_TRUE(f.state == FaultState::kReverted)
          << f.faultId << " is " << faultStateName(f.state);
    }
    totalFaults += faults->size();
    size_t byGuardian = 0, wasApplied = 0;
    for (const auto& f : *faults) {
      if (f.revertedBy != "guardian") continue;
      ++byGuardian;
      if (f.appliedAt) ++wasApplied;
    }
    totalByGuardian += byGuardian;
    totalWasApplied += wasApplied;
    if (hadGuardian) {
      EXPECT_EQ(journal_->run(runId)->outcome, "owner-died");
    }
    (wasChurning ? churning : hadGuardian || !reaped.empty() ? starting : beforeGuardian)++;
    std::printf(
        "[ crash    ] %2d delay %6d us: %-15s journalled %zu, reverted by the guardian %zu "
        "(%zu applied, %zu in intent)%s\n",
        i, delay,
        wasChurning       ? "churning"
        : !reaped.empty() ? "guardian start"
                          : "before guardian",
        faults->size(), byGuardian, wasApplied, byGuardian - wasApplied,
        left.empty() ? "" : "  LEFTOVER");
    if (HasFailure()) break;
  }
  std::printf(
      "[ crash    ] kills: %d before a guardian existed, %d while it started, %d while "
      "churning; %zu faults journalled, %zu reverted by a guardian (%zu applied, %zu "
      "in intent)\n",
      beforeGuardian, starting, churning, totalFaults, totalByGuardian, totalWasApplied,
      totalByGuardian - totalWasApplied);
  printLatencies("SIGKILL -> guardian exited (crash loop, guardian present)", guardianLatency);
  EXPECT_TRUE(journal_->faultsHeld()->empty());
}

}  // namespace
}  // namespace chaosd
