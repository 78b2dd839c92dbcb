// process.pause through the ProcessKernel seam, against a process table in memory
// (tests/support/FakeProcesses.h): apply stops, revert resumes exactly what apply stopped,
// and a failure half-way leaves what revert needs to finish the job.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "injectors/process/PauseInjector.h"
#include "injectors/process/ProcessRecords.h"
#include "tests/support/ProcessSeamFixture.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using Call = FakeProcesses::Call;

class PauseSeamTest : public ProcessSeamTest {
 protected:
  PauseSeamTest() : pause_(fake_, PauseInjector::Options{.stopWait = 2s, .resumeWait = 1s}) {}

  // prepare; the undo record (empty when it failed).
  nlohmann::json prepare() {
    auto prepared = pause_.prepare(request("process.pause", nlohmann::json::object(), 30s));
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared ? prepared->undo : nlohmann::json();
  }
  std::vector<std::string> audit(const nlohmann::json& undo) {
    auto lines = pause_.audit(undo);
    EXPECT_TRUE(lines.ok()) << lines.error().describe();
    return lines ? *lines : std::vector<std::string>{};
  }

  PauseInjector pause_;
};

TEST_F(PauseSeamTest, ApplyStopsTheVictimsAndRevertResumesExactlyThose) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api"), a3 = fake_->spawn("api");
  const pid_t db = fake_->spawn("db");
  fake_->stopBySomeoneElse(a3);
  auto prepared = pause_.prepare(request("process.pause", nlohmann::json::object(), 30s));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_NE(prepared->description.find("already stopped by someone else"), std::string::npos);
  const nlohmann::json undo = prepared->undo;
  auto plan = ProcessPlan::fromJson(undo);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->stopped.size(), 2u);
  ASSERT_EQ(plan->alreadyStopped.size(), 1u);
  EXPECT_EQ(plan->alreadyStopped[0].pid, a3);

  auto applied = pause_.apply("run-1-f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(fake_->state(a1), 'T');
  EXPECT_EQ(fake_->state(a2), 'T');
  EXPECT_EQ(fake_->state(db), 'S');
  EXPECT_EQ(applied->observed["stopped"], 2);
  EXPECT_EQ(applied->observed["notConfirmed"], 0);
  EXPECT_EQ(applied->observed["victims"][0]["outcome"], "stopped");
  EXPECT_EQ(applied->observed["alreadyStopped"].size(), 1u);
  EXPECT_EQ(audit(undo).size(), 2u) << "during the fault both are still stopped";

  auto reverted = pause_.revert("run-1-f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["resumed"], (nlohmann::json{a1, a2}));
  EXPECT_EQ(fake_->state(a1), 'S');
  EXPECT_EQ(fake_->state(a2), 'S');
  EXPECT_EQ(fake_->state(a3), 'T') << "stopped by someone else: never resumed by us";
  EXPECT_EQ(fake_->signalledWith(SIGCONT), (std::vector<pid_t>{a1, a2}));

  auto again = pause_.revert("run-1-f1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(fake_->state(a1), 'S');
  EXPECT_EQ(fake_->state(a2), 'S');
  EXPECT_EQ(fake_->state(a3), 'T');
  EXPECT_TRUE(fake_->signalledWith(SIGSTOP).size() == 2u) << "a revert never stops anything";
  EXPECT_TRUE(audit(undo).empty());
}

TEST_F(PauseSeamTest, ASignalFailingHalfWayLeavesRevertToResumeTheOnesStopped) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api"), a3 = fake_->spawn("api");
  const nlohmann::json undo = prepare();
  fake_->failNth(Call::kSignal, 2, EPERM);
  auto applied = pause_.apply("run-1-f1", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kPermission);
  EXPECT_NE(applied.error().describe().find("process.pause"), std::string::npos);
  EXPECT_EQ(fake_->state(a1), 'T');
  EXPECT_EQ(fake_->state(a2), 'S');
  EXPECT_EQ(fake_->state(a3), 'S') << "apply stops at the first error";
  auto left = audit(undo);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0].find("pid " + std::to_string(a1)), std::string::npos) << left[0];

  auto reverted = pause_.revert("run-1-f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  for (pid_t pid : {a1, a2, a3}) EXPECT_EQ(fake_->state(pid), 'S') << pid;
  EXPECT_TRUE(audit(undo).empty());
  EXPECT_TRUE(pause_.revert("run-1-f1", undo).ok());
  for (pid_t pid : {a1, a2, a3}) EXPECT_EQ(fake_->state(pid), 'S') << pid;
}

TEST_F(PauseSeamTest, RevertLeavesAGoneVictimAndAReusedPidAlone) {
  const pid_t gone = fake_->spawn("api"), reused = fake_->spawn("api"), kept = fake_->spawn("api");
  const nlohmann::json undo = prepare();
  ASSERT_TRUE(pause_.apply("run-1-f1", undo).ok());
  fake_->killBySomeoneElse(gone);
  fake_->killBySomeoneElse(reused);
  fake_->reusePid(reused, "api");
  fake_->stopBySomeoneElse(reused);  // the newcomer, stopped by someone else

  auto reverted = pause_.revert("run-1-f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["resumed"], nlohmann::json{kept});
  EXPECT_EQ((*reverted)["gone"], nlohmann::json{gone});
  EXPECT_EQ((*reverted)["pidReused"], nlohmann::json{reused});
  EXPECT_EQ(fake_->state(reused), 'T') << "the newcomer holding the pid was not resumed";
  EXPECT_EQ(fake_->state(kept), 'S');
  EXPECT_TRUE(audit(undo).empty()) << "the newcomer is not ours to report";
  EXPECT_TRUE(pause_.revert("run-1-f1", undo).ok());
}

TEST_F(PauseSeamTest, RevertTriesEveryVictimAndFailsForOneItCouldNotResume) {
  const pid_t traced = fake_->spawn("api"), refused = fake_->spawn("api");
  const pid_t plain = fake_->spawn("api");
  PauseInjector pause(fake_, PauseInjector::Options{.stopWait = 2s, .resumeWait = 20ms});
  auto prepared = pause.prepare(request("process.pause", nlohmann::json::object(), 30s));
  ASSERT_TRUE(prepared.ok());
  const nlohmann::json undo = prepared->undo;
  ASSERT_TRUE(pause.apply("run-1-f1", undo).ok());
  fake_->traceStop(traced);  // a tracer holds it: SIGCONT cannot resume it
  fake_->failNth(Call::kSignal, 2, EPERM);

  auto reverted = pause.revert("run-1-f1", undo);
  ASSERT_FALSE(reverted.ok());
  const std::string why = reverted.error().describe();
  EXPECT_NE(why.find("pid " + std::to_string(traced) + " (api) is still stopped after SIGCONT"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("pid " + std::to_string(refused)), std::string::npos) << why;
  EXPECT_EQ(fake_->state(plain), 'S') << "the others are resumed all the same";
  EXPECT_EQ(fake_->state(refused), 'T');
  auto left = pause.audit(undo);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 2u);

  // The tracer lets go, the kernel lets us signal: a second revert finishes the job.
  fake_->wake(traced);
  fake_->clearFailures();
  auto again = pause.revert("run-1-f1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  for (pid_t pid : {traced, refused, plain}) EXPECT_EQ(fake_->state(pid), 'S') << pid;
  EXPECT_TRUE(pause.audit(undo)->empty());
}

TEST_F(PauseSeamTest, AStopNotSeenWithinTheWaitIsRecordedAndRevertedAllTheSame) {
  const pid_t sleeper = fake_->spawn({.comm = "api", .stopsLate = true});  // in D state
  PauseInjector pause(fake_, PauseInjector::Options{.stopWait = 20ms, .resumeWait = 1s});
  auto prepared = pause.prepare(request("process.pause", nlohmann::json::object(), 30s));
  ASSERT_TRUE(prepared.ok());
  const nlohmann::json undo = prepared->undo;
  auto applied = pause.apply("run-1-f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["victims"][0]["outcome"],
            "signalled, not seen stopped within 20ms (state D)");
  EXPECT_EQ(applied->observed["notConfirmed"], 1);
  fake_->wake(sleeper);  // its system call ends: the pending stop takes effect
  EXPECT_EQ(fake_->state(sleeper), 'T');
  EXPECT_EQ(pause.audit(undo)->size(), 1u);
  auto reverted = pause.revert("run-1-f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(fake_->state(sleeper), 'S');
  EXPECT_TRUE(pause.audit(undo)->empty());
}

TEST_F(PauseSeamTest, PidfdErrorsFailApplyAndAVanishedVictimIsRecorded) {
  const pid_t a1 = fake_->spawn("api"), a2 = fake_->spawn("api");
  const nlohmann::json undo = prepare();
  fake_->failNth(Call::kOpenPidfd, 1, EPERM);
  auto refused = pause_.apply("run-1-f1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermission);
  EXPECT_EQ(fake_->state(a1), 'S');
  EXPECT_EQ(fake_->state(a2), 'S');
  EXPECT_TRUE(pause_.revert("run-1-f1", undo).ok());

  fake_->failNth(Call::kSignal, 1, ESRCH);  // it exited between our look and the signal
  auto applied = pause_.apply("run-1-f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["victims"][0]["outcome"], "exited before the signal");
  EXPECT_EQ(applied->observed["stopped"], 1);
  EXPECT_EQ(fake_->state(a2), 'T');
  ASSERT_TRUE(pause_.revert("run-1-f1", undo).ok());
  EXPECT_EQ(fake_->state(a2), 'S');
  EXPECT_TRUE(audit(undo).empty());
}

TEST_F(PauseSeamTest, ANoOpPlanStopsNothing) {
  fake_->spawn("db");
  target_.emptySkip = true;
  const nlohmann::json undo = prepare();
  auto applied = pause_.apply("run-1-f1", undo);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->observed["noop"], true);
  EXPECT_TRUE(fake_->signals().empty());
  EXPECT_TRUE(pause_.revert("run-1-f1", undo).ok());
  EXPECT_TRUE(audit(undo).empty());
}

}  // namespace
}  // namespace chaosd
