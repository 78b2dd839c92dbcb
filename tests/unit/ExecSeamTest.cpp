// The exec target's stop (process.exec's revert) and leftovers audit through the
// ProcessKernel seam: against a process table in memory, and against a real unprivileged child
// (starting one needs no root).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "injectors/process/ExecTarget.h"
#include "tests/support/ProcessSeamFixture.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using Call = FakeProcesses::Call;

class ExecSeamTest : public ::testing::Test {
 protected:
  // A process group as an exec target leaves it: the leader (our child, a zombie until we
  // reap it), a worker it forked, and an older process that joined the group's number
  // before the leader existed (not ours: it started first).
  void startGroup(std::set<int> leaderHandles = {}) {
    older_ = fake_->spawn({.comm = "older", .pid = 4100, .pgid = 4000});
    fake_->advance(1s);
    leader_ = fake_->spawn({.comm = "server",
                            .pid = 4000,
                            .ppid = ::getpid(),
                            .handles = std::move(leaderHandles),
                            .leavesZombie = true});
    worker_ = fake_->spawn({.comm = "worker", .pid = 4001, .ppid = 4000, .pgid = 4000});
    undo_ = ExecUndo{leader_, fake_->process(leader_)->startTime, "/usr/bin/server", 20ms}.toJson();
  }
  std::vector<std::string> audit() {
    auto lines = injector_.audit(undo_);
    EXPECT_TRUE(lines.ok()) << lines.error().describe();
    return lines ? *lines : std::vector<std::string>{};
  }

  std::shared_ptr<FakeProcesses> fake_ = std::make_shared<FakeProcesses>();
  ExecTargetInjector injector_{fake_};
  pid_t older_ = 0, leader_ = 0, worker_ = 0;
  nlohmann::json undo_;
};

TEST_F(ExecSeamTest, RevertStopsTheGroupWithTermAndASecondRevertFindsItGone) {
  startGroup();
  auto left = audit();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0], "pid 4000 (server) of exec group 4000 still runs");
  EXPECT_EQ(left[1], "pid 4001 (worker) of exec group 4000 still runs");

  auto stopped = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ((*stopped)["exited"], "term");
  EXPECT_EQ(fake_->signalledWith(SIGTERM), (std::vector<pid_t>{leader_, worker_}));
  EXPECT_TRUE(fake_->signalledWith(SIGKILL).empty());
  EXPECT_EQ(fake_->state(leader_), '-') << "our child, reaped";
  EXPECT_EQ(fake_->reaped(), std::vector<pid_t>{leader_});
  EXPECT_EQ(fake_->state(worker_), '-');
  EXPECT_TRUE(fake_->alive(older_)) << "older than the leader: not of the group we started";
  EXPECT_TRUE(audit().empty());

  const size_t sent = fake_->signals().size();
  auto again = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["exited"], "gone");
  EXPECT_EQ(fake_->signals().size(), sent);
  EXPECT_TRUE(audit().empty());
}

TEST_F(ExecSeamTest, ALeaderThatHandlesTermGetsKillAfterTheGrace) {
  startGroup({SIGTERM});
  auto stopped = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ((*stopped)["exited"], "kill");
  EXPECT_EQ(fake_->signalledWith(SIGKILL), std::vector<pid_t>{leader_})
      << "the worker died of the TERM; only the leader is left for the KILL";
  EXPECT_EQ(fake_->state(leader_), '-');
  EXPECT_TRUE(audit().empty());
  EXPECT_EQ((*injector_.revert("exec-1", undo_))["exited"], "gone");
}

TEST_F(ExecSeamTest, AMemberThatCannotBeReachedIsLeftForTheAuditAndASecondRevert) {
  startGroup();
  fake_->failNth(Call::kOpenPidfd, 2, EPERM);  // the worker's pidfd
  auto stopped = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(fake_->state(leader_), '-');
  EXPECT_TRUE(fake_->alive(worker_));
  auto left = audit();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], "pid 4001 (worker) of exec group 4000 still runs");

  auto again = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["exited"], "term");
  EXPECT_FALSE(fake_->alive(worker_));
  EXPECT_TRUE(audit().empty());
}

TEST_F(ExecSeamTest, AnUnreadableProcessTableLeavesTheGroupForTheNextRevert) {
  startGroup();
  fake_->failNth(Call::kScan, 1, EACCES);
  auto blind = injector_.revert("exec-1", undo_);
  ASSERT_TRUE(blind.ok());
  EXPECT_TRUE(fake_->alive(leader_)) << "nothing seen, nothing signalled";
  EXPECT_EQ(audit().size(), 2u);
  ASSERT_TRUE(injector_.revert("exec-1", undo_).ok());
  EXPECT_TRUE(audit().empty());
}

TEST_F(ExecSeamTest, OnlyTheEngineStartsATargetAndABadRecordIsRefused) {
  EXPECT_EQ(injector_.prepare(FaultRequest{}).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.apply("exec-1", nlohmann::json::object()).error().code(),
            ErrorCode::kInvalid);
  EXPECT_FALSE(injector_.revert("exec-1", nlohmann::json::array()).ok());
  EXPECT_FALSE(injector_.audit(nlohmann::json{{"pid", 1}, {"startTime", 1u}}).ok());
  EXPECT_TRUE(fake_->signals().empty());
}

// The real kernel, no root: our own child in a group of its own, stopped and reaped.
TEST(ExecSeamRealTest, AStartedChildIsStoppedWithItsGroupAtRevert) {
  ExecSpec spec;
  spec.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30; wait"};
  auto started = startExec(spec, "");
  ASSERT_TRUE(started.ok()) << started.error().describe();
  const pid_t pid = started->pid;
  EXPECT_EQ(::getpgid(pid), pid);
  const nlohmann::json undo = execUndo(*started, 2s);
  ExecTargetInjector injector;  // the real kernel
  // The shell forks both sleeps after it starts: wait until the group has its three.
  ASSERT_TRUE(waitFor([&] { return injector.audit(undo)->size() == 3u; }));

  auto stopped = injector.revert("exec-1", undo);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ((*stopped)["exited"], "term");
  EXPECT_TRUE(injector.audit(undo)->empty());
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1) << "reaped: no zombie left";
  EXPECT_EQ(errno, ESRCH);
  auto again = injector.revert("exec-1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["exited"], "gone");
}

}  // namespace
}  // namespace chaosd
