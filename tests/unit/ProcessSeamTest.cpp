// process.kill through the ProcessKernel seam, against a process table in memory
// (tests/support/FakeProcesses.h): no root, no real victim. The root tier
// (tests/integration/ProcessFaultTest.cpp) proves the same against the real kernel.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "chaosd/base/GuardianName.h"
#include "injectors/process/KillInjector.h"
#include "injectors/process/ProcessInjector.h"
#include "tests/support/ProcessSeamFixture.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using Call = FakeProcesses::Call;

class KillSeamTest : public ProcessSeamTest {
 protected:
  KillInjector::Options fast() {
    KillInjector::Options o;
    o.deathWait = 2s;  // the fake's victims die at once; a wait this long means a bug
    o.instantRestartWatch = 10s;
    o.restartPoll = 1ms;
    return o;
  }
  // prepare and apply; the applied fault's observation.
  nlohmann::json prepareAndApply(KillInjector& kill, const FaultRequest& r) {
    auto prepared = kill.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    if (!prepared) return {};
    undo_ = prepared->undo;
    auto applied = kill.apply(r.faultId, undo_);
    EXPECT_TRUE(applied.ok()) << applied.error().describe();
    return applied ? applied->observed : nlohmann::json();
  }
  // The second revert and the audit every kill ends with: nothing left, nothing sent.
  void expectSecondRevertAndAuditChangeNothing(KillInjector& kill) {
    const size_t sent = fake_->signals().size();
    auto again = kill.revert("run-1-f1", undo_);
    ASSERT_TRUE(again.ok()) << again.error().describe();
    EXPECT_TRUE(again->contains("note")) << again->dump();
    EXPECT_EQ(fake_->signals().size(), sent);
    auto audit = kill.audit(undo_);
    ASSERT_TRUE(audit.ok());
    EXPECT_TRUE(audit->empty());
  }

  nlohmann::json undo_;
};

TEST_F(KillSeamTest, OnceSignalsEveryVictimAndRevertReturnsWhatItSaw) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api"), db = fake_->spawn("db");
  KillInjector kill(fake_, fast());
  auto prepared = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_FALSE(prepared->revertible);
  EXPECT_EQ(prepared->resources.size(), 2u);
  EXPECT_TRUE(fake_->signals().empty()) << "prepare only reads";

  undo_ = prepared->undo;
  auto applied = kill.apply("run-1-f1", undo_);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "pidfd");
  EXPECT_EQ(applied->observed["signalled"], 2);
  EXPECT_EQ(applied->observed["died"], 2);
  EXPECT_EQ(fake_->signals(), (std::vector<std::pair<pid_t, int>>{{a1, SIGKILL}, {a2, SIGKILL}}));
  EXPECT_FALSE(fake_->alive(a1));
  EXPECT_FALSE(fake_->alive(a2));
  EXPECT_TRUE(fake_->alive(db));

  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(victimPids(*reverted), (std::vector<pid_t>{a1, a2}));
  for (const auto& v : (*reverted)["victims"]) {
    EXPECT_EQ(v["outcome"], "signalled");
    EXPECT_TRUE(v["diedMs"].is_number()) << v.dump();
  }
  EXPECT_TRUE((*reverted)["restarts"].empty());
  EXPECT_TRUE(reverted->contains("watchedMs"));
  EXPECT_EQ((*reverted)["seed"], 7);
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, AVictimThatHandlesTheSignalIsNotWaitedForPastDeathWait) {
  const pid_t stubborn = fake_->spawn({.comm = "api", .handles = {SIGTERM}});
  const pid_t plain = fake_->spawn("api");
  auto options = fast();
  options.deathWait = 20ms;
  KillInjector kill(fake_, options);
  auto observed = prepareAndApply(kill, request("process.kill", {{"signal", SIGTERM}}));
  EXPECT_EQ(observed["signalled"], 2);
  EXPECT_EQ(observed["died"], 1);
  EXPECT_TRUE(fake_->alive(stubborn));
  EXPECT_FALSE(fake_->alive(plain));
  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE((*reverted)["victims"][0]["diedMs"].is_null()) << reverted->dump();
  EXPECT_TRUE((*reverted)["victims"][1]["diedMs"].is_number()) << reverted->dump();
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, IntervalRoundsKillOneEligibleProcessEachUntilNoneIsLeft) {
  for (int i = 0; i < 3; ++i) fake_->spawn("api");
  KillInjector kill(fake_, fast());
  // Rounds at 0, 20, 40, 60 and 80 ms of a 100 ms step: three kill, two find no one.
  auto r = request("process.kill", {{"signal", SIGKILL}, {"interval", 20'000'000}}, 100ms);
  auto observed = prepareAndApply(kill, r);
  EXPECT_EQ(observed["signalled"], 1) << "round 0 in apply, the rest in the watch";
  // One scan at prepare, one for the baseline, one per later round.
  ASSERT_TRUE(waitFor([&] { return fake_->calls(Call::kScan) >= 6; }));
  auto reverted = kill.revert(r.faultId, undo_);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  const auto& victims = (*reverted)["victims"];
  ASSERT_EQ(victims.size(), 5u) << reverted->dump();
  std::set<pid_t> killed;
  for (uint64_t round = 0; round < 5; ++round) {
    EXPECT_EQ(victims[round]["round"], round);
    if (round < 3) {
      EXPECT_EQ(victims[round]["outcome"], "signalled");
      killed.insert(victims[round]["pid"].get<pid_t>());
    } else {
      EXPECT_EQ(victims[round]["outcome"], "no eligible process");
      EXPECT_TRUE(victims[round].contains("atMs"));
    }
  }
  EXPECT_EQ(killed.size(), 3u) << "a dead process is never chosen again";
  EXPECT_EQ(fake_->signals().size(), 3u);
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, ARestartByTheSupervisorIsSeenAndTimed) {
  const pid_t supervisor = fake_->spawn("supervisord");
  const pid_t api = fake_->spawn({.comm = "api", .ppid = supervisor});
  fake_->supervise("api", 300ms, supervisor);
  KillInjector kill(fake_, fast());
  auto observed = prepareAndApply(kill, request("process.kill", {{"signal", SIGKILL}}));
  EXPECT_EQ(observed["died"], 1);
  EXPECT_TRUE(observed["restarts"].empty());

  const int scans = fake_->calls(Call::kScan);
  fake_->advance(300ms);  // the supervisor's replacement starts 300 ms after the kill
  ASSERT_EQ(fake_->restarted().size(), 1u);
  const pid_t replacement = fake_->restarted()[0];
  // The watch lists the pids, sees a young one and scans: wait for that scan.
  ASSERT_TRUE(waitFor([&] { return fake_->calls(Call::kScan) > scans; }));

  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  const auto& restarts = (*reverted)["restarts"];
  ASSERT_EQ(restarts.size(), 1u) << reverted->dump();
  EXPECT_EQ(restarts[0]["pid"], replacement);
  EXPECT_EQ(restarts[0]["replaces"], api);
  // Started 300 ms after the signal on the boot clock; seen no later than that.
  EXPECT_DOUBLE_EQ(restarts[0]["restartMs"].get<double>(), 300.0);
  EXPECT_DOUBLE_EQ((*reverted)["timeToRestartMs"].get<double>(), 300.0);
  EXPECT_TRUE(fake_->alive(replacement)) << "a restart is watched, never signalled";
  EXPECT_EQ(fake_->signals().size(), 1u);
  expectSecondRevertAndAuditChangeNothing(kill);
}

// The quickstart's replica was reported as `restarted: 19557 (ip)`: seen between `ip netns
// exec`'s fork and its exec of python3. The revert reads the restart again.
TEST_F(KillSeamTest, ARestartIsNamedByWhatItRunsAtTheRevert) {
  const pid_t supervisor = fake_->spawn("supervisord");
  fake_->spawn({.comm = "api", .ppid = supervisor});
  fake_->spawn({.comm = "api", .ppid = supervisor});
  fake_->supervise("api", 300ms, supervisor);
  KillInjector kill(fake_, fast());
  auto observed = prepareAndApply(kill, request("process.kill", {{"signal", SIGKILL}}));
  EXPECT_EQ(observed["died"], 2);
  const int scans = fake_->calls(Call::kScan);
  fake_->advance(300ms);
  ASSERT_EQ(fake_->restarted().size(), 2u);
  const pid_t execs = fake_->restarted()[0];
  const pid_t dies = fake_->restarted()[1];
  ASSERT_TRUE(waitFor([&] { return fake_->calls(Call::kScan) > scans; }));
  fake_->exec(execs, "python3");   // after the watch saw it as api
  fake_->killBySomeoneElse(dies);  // gone before the revert: what it became is unknown

  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  const auto& restarts = (*reverted)["restarts"];
  ASSERT_EQ(restarts.size(), 2u) << reverted->dump();
  EXPECT_EQ(restarts[0]["pid"], execs);
  EXPECT_EQ(restarts[0]["comm"], "python3");
  EXPECT_EQ(restarts[0]["startedAs"], "api");
  EXPECT_EQ(restarts[1]["pid"], dies);
  EXPECT_EQ(restarts[1]["comm"], "api");
  EXPECT_EQ(restarts[1]["startedAs"], "api");
}

TEST_F(KillSeamTest, AGoneVictimIsRecordedAndAReusedPidIsNeverSignalled) {
  const pid_t gone = fake_->spawn("api");
  const pid_t reused = fake_->spawn("api");
  const pid_t zombie = fake_->spawn({.comm = "api", .leavesZombie = true});
  const pid_t live = fake_->spawn("api");
  KillInjector kill(fake_, fast());
  auto prepared = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  undo_ = prepared->undo;
  // Between prepare and apply: one dies, one's pid goes to a newcomer, one is a zombie.
  fake_->killBySomeoneElse(gone);
  fake_->killBySomeoneElse(reused);
  fake_->reusePid(reused, "api");
  fake_->killBySomeoneElse(zombie);

  auto applied = kill.apply("run-1-f1", undo_);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(fake_->signals(), (std::vector<std::pair<pid_t, int>>{{live, SIGKILL}}));
  EXPECT_TRUE(fake_->alive(reused)) << "the newcomer holding the pid is left alone";
  const auto& victims = applied->observed["victims"];
  ASSERT_EQ(victims.size(), 4u);
  EXPECT_EQ(victims[0]["outcome"], "exited before the signal");
  EXPECT_EQ(victims[1]["outcome"], "pid reused by another process: not signalled");
  EXPECT_EQ(victims[2]["outcome"], "exited before the signal");
  EXPECT_EQ(victims[3]["outcome"], "signalled");
  EXPECT_EQ(applied->observed["signalled"], 1);

  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE((*reverted)["restarts"].empty()) << "the newcomer was there before the signals";
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, ASignalFailingHalfWayFailsApplyAndLeavesNothingToUndo) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api"), a3 = fake_->spawn("api");
  KillInjector kill(fake_, fast());
  auto prepared = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_TRUE(prepared.ok());
  undo_ = prepared->undo;
  fake_->failNth(Call::kSignal, 2, EPERM);
  auto applied = kill.apply("run-1-f1", undo_);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kPermission);
  EXPECT_NE(applied.error().describe().find("pidfd_send_signal 9 to pid " + std::to_string(a2)),
            std::string::npos)
      << applied.error().describe();
  EXPECT_FALSE(fake_->alive(a1));
  EXPECT_TRUE(fake_->alive(a2));
  EXPECT_TRUE(fake_->alive(a3)) << "apply stops at the first error";
  // A kill cannot be taken back: revert is a note, and sends nothing.
  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE(reverted->contains("note"));
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, PidfdErrorsFailApplyButAVictimThatExitsMeanwhileDoesNot) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api");
  KillInjector kill(fake_, fast());
  auto prepared = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_TRUE(prepared.ok());
  undo_ = prepared->undo;

  fake_->failNth(Call::kOpenPidfd, 1, EPERM);
  auto refused = kill.apply("run-1-f1", undo_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().describe().find("pidfd_open of pid " + std::to_string(a1)),
            std::string::npos);
  EXPECT_TRUE(fake_->signals().empty());

  // ESRCH from the open or the signal: the victim exited between our look and the signal.
  fake_->clearFailures();
  fake_->failNth(Call::kOpenPidfd, 1, ESRCH);
  fake_->failNth(Call::kSignal, 1, ESRCH);
  auto applied = kill.apply("run-1-f1", undo_);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["victims"][0]["outcome"], "exited before the signal");
  EXPECT_EQ(applied->observed["victims"][1]["outcome"], "exited before the signal");
  EXPECT_EQ(applied->observed["signalled"], 0);
  EXPECT_TRUE(fake_->alive(a2));
  ASSERT_TRUE(kill.revert("run-1-f1", undo_).ok());
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, APidSelectorIsNeverWatchedForRestarts) {
  const pid_t api = fake_->spawn("api");
  fake_->supervise("api", 10ms);
  target_.process = ProcessSelector{};
  target_.process.pid = api;
  KillInjector kill(fake_, fast());
  auto observed = prepareAndApply(kill, request("process.kill", {{"signal", SIGKILL}}));
  EXPECT_EQ(observed["died"], 1);
  fake_->advance(10ms);
  ASSERT_EQ(fake_->restarted().size(), 1u);
  auto reverted = kill.revert("run-1-f1", undo_);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE((*reverted)["restarts"].empty()) << "a new process has a new pid";
  expectSecondRevertAndAuditChangeNothing(kill);
}

TEST_F(KillSeamTest, ProtectedAndDeadMatchesAreNeverVictims) {
  const pid_t api = fake_->spawn("api");
  const pid_t guardian = fake_->spawn({.comm = std::string(kGuardianComm)});
  const pid_t zombie = fake_->spawn({.comm = "api", .leavesZombie = true});
  fake_->killBySomeoneElse(zombie);
  target_.process = ProcessSelector{};
  target_.process.user = "1000";  // matches all three
  KillInjector kill(fake_, fast());
  auto prepared = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto plan = ProcessPlan::fromJson(prepared->undo);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->victims.size(), 1u);
  EXPECT_EQ(plan->victims[0].pid, api);
  ASSERT_EQ(plan->refused.size(), 1u);
  EXPECT_NE(plan->refused[0].find(std::to_string(guardian)), std::string::npos);

  // Only protected processes match: refused as a whole, nothing signalled.
  target_.process = ProcessSelector{};
  target_.process.pid = guardian;
  auto refused = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermission);
  EXPECT_TRUE(fake_->signals().empty());
}

TEST_F(KillSeamTest, NothingMatchingIsAnErrorOrARecordedNoOp) {
  fake_->spawn("db");
  KillInjector kill(fake_, fast());
  auto missing = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

  target_.emptySkip = true;
  auto observed = prepareAndApply(kill, request("process.kill", {{"signal", SIGKILL}}));
  EXPECT_EQ(observed["noop"], true);
  EXPECT_TRUE(fake_->signals().empty());
  expectSecondRevertAndAuditChangeNothing(kill);

  fake_->failNth(Call::kScan, 1, EACCES);
  target_.emptySkip = false;
  auto unreadable = kill.prepare(request("process.kill", {{"signal", SIGKILL}}));
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().code(), ErrorCode::kPermission);
}

}  // namespace
}  // namespace chaosd
