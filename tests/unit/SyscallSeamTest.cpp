// syscall.error and syscall.delay through the RuleSupervisor seam: the injector hands its rule
// to a fake supervisor (tests/support/FakeSyscallSupervisor.h) found in a SupervisorRegistry,
// and the decision for one call (SyscallRuleSet::judge, SyscallSupervisor::judge) is tested
// directly. The root tier (SyscallFaultTest) proves the seccomp path on a real process.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "experiments/model/Experiment.h"
#include "injectors/syscall/SupervisorRegistry.h"
#include "injectors/syscall/SyscallInjector.h"
#include "injectors/syscall/SyscallRules.h"
#include "injectors/syscall/SyscallSupervisor.h"
#include "tests/support/FakeSyscallSupervisor.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

constexpr pid_t kPid = 4242;
constexpr uint64_t kStartTime = 777;

const int kWrite = seccomp_syscall_resolve_name("write");
const int kFsync = seccomp_syscall_resolve_name("fsync");
const int kRead = seccomp_syscall_resolve_name("read");

class SyscallSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.name = "app";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = kPid;
    supervisors_->add(kPid, supervisor_);
  }

  FaultRequest request(const std::string& id, const std::string& type, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }

  nlohmann::json prepare(const std::string& id, const std::string& type, nlohmann::json args) {
    auto prepared = injector_.prepare(request(id, type, std::move(args)));
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared.ok() ? prepared->undo : nlohmann::json{};
  }

  FakeSyscallSupervisor supervisor_{kStartTime, {kWrite, kFsync}};
  std::shared_ptr<SupervisorRegistry> supervisors_ = std::make_shared<SupervisorRegistry>();
  SyscallInjector injector_{supervisors_};
  TargetSpec target_;
};

TEST_F(SyscallSeamTest, AnErrorRuleFailsMatchingCallsUntilRevert) {
  nlohmann::json undo =
      prepare("eio", "syscall.error", {{"syscalls", {"write"}}, {"errno", "EIO"}});
  EXPECT_EQ(undo["startTime"], kStartTime);
  EXPECT_TRUE(supervisor_.empty()) << "prepare only reads";
  EXPECT_FALSE(supervisor_.call(kWrite).hit);

  auto applied = injector_.apply("eio", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "seccomp-notify");
  EXPECT_EQ(applied->observed["syncWakeUp"], true);
  EXPECT_EQ(applied->observed["seed"], undo["seed"]);
  SyscallVerdict v = supervisor_.call(kWrite);
  EXPECT_TRUE(v.hit);
  EXPECT_EQ(v.err, EIO);
  EXPECT_FALSE(supervisor_.call(kFsync).hit) << "another syscall";
  auto during = injector_.audit(undo);
  ASSERT_TRUE(during.ok());
  ASSERT_EQ(during->size(), 1u);
  EXPECT_NE((*during)[0].find("still applied"), std::string::npos);

  auto reverted = injector_.revert("eio", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(*reverted, (nlohmann::json{{"matched", 1}, {"hit", 1}, {"passed", 0}}));
  EXPECT_TRUE(supervisor_.empty());
  EXPECT_FALSE(supervisor_.call(kWrite).hit) << "calls run normally again";

  auto again = injector_.revert("eio", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(*again, nlohmann::json::object());
  EXPECT_TRUE(supervisor_.empty());
  EXPECT_TRUE(injector_.audit(undo)->empty());
}

TEST_F(SyscallSeamTest, ADelayRuleHoldsMatchingCallsOnPathsItNames) {
  nlohmann::json undo = prepare("slow", "syscall.delay",
                                {{"syscalls", {"fsync", "write"}},
                                 {"delay", 50'000'000},
                                 {"path", "/var/lib/*"},
                                 {"after", 1}});
  ASSERT_TRUE(injector_.apply("slow", undo).ok());
  EXPECT_FALSE(supervisor_.call(kFsync, "/var/lib/db").hit) << "after: the first goes through";
  SyscallVerdict v = supervisor_.call(kFsync, "/var/lib/db");
  EXPECT_TRUE(v.hit);
  EXPECT_EQ(v.err, 0);
  EXPECT_EQ(v.delay, 50ms);
  EXPECT_FALSE(supervisor_.call(kWrite, "/tmp/x").hit) << "another path";
  EXPECT_FALSE(supervisor_.call(kWrite).hit) << "no path";
  auto reverted = injector_.revert("slow", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ(*reverted, (nlohmann::json{{"matched", 2}, {"hit", 1}, {"passed", 1}}));
  EXPECT_FALSE(supervisor_.call(kFsync, "/var/lib/db").hit);
  EXPECT_TRUE(injector_.revert("slow", undo).ok());
}

TEST_F(SyscallSeamTest, ARuleTheSupervisorRefusesIsNotAppliedAndRevertIsNothing) {
  nlohmann::json undo = prepare("eio", "syscall.error", {{"syscalls", {"write"}}});
  supervisor_.failAddRule(1, Error(ErrorCode::kInternal, "the supervisor thread is gone"));
  auto applied = injector_.apply("eio", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kInternal);
  EXPECT_FALSE(supervisor_.call(kWrite).hit);
  auto reverted = injector_.revert("eio", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ(*reverted, nlohmann::json::object());
  EXPECT_TRUE(injector_.audit(undo)->empty());
  // Applied twice: the second is refused and the first stays until revert.
  ASSERT_TRUE(injector_.apply("eio", undo).ok());
  EXPECT_EQ(injector_.apply("eio", undo).error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(supervisor_.call(kWrite).hit);
  ASSERT_TRUE(injector_.revert("eio", undo).ok());
  EXPECT_TRUE(supervisor_.empty());
}

TEST_F(SyscallSeamTest, WithoutItsSupervisorRevertIsANoteAndApplyIsRefused) {
  nlohmann::json undo = prepare("eio", "syscall.error", {{"syscalls", {"write"}}});
  // Another start of the same pid: not the process the record names.
  nlohmann::json reused = undo;
  reused["startTime"] = kStartTime + 1;
  EXPECT_EQ(injector_.apply("eio", reused).error().code(), ErrorCode::kNotFound);
  auto noted = injector_.revert("eio", reused);
  ASSERT_TRUE(noted.ok());
  EXPECT_TRUE(noted->contains("note"));
  EXPECT_TRUE(supervisor_.empty());
  // The process stopped: its supervisor left the registry.
  supervisors_->remove(kPid, supervisor_);
  EXPECT_EQ(injector_.apply("eio", undo).error().code(), ErrorCode::kNotFound);
  auto reverted = injector_.revert("eio", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE(reverted->contains("note"));
  EXPECT_TRUE(injector_.audit(undo)->empty());
  auto unfiltered = injector_.prepare(request("x", "syscall.error", {{"syscalls", {"write"}}}));
  ASSERT_FALSE(unfiltered.ok());
  EXPECT_EQ(unfiltered.error().code(), ErrorCode::kUnsupported);
}

TEST_F(SyscallSeamTest, PrepareRefusesWhatTheSupervisorCannotApply) {
  auto notSent = injector_.prepare(request("x", "syscall.error", {{"syscalls", {"read"}}}));
  ASSERT_FALSE(notSent.ok());
  EXPECT_EQ(notSent.error().code(), ErrorCode::kInternal);
  auto noSuchCall = injector_.prepare(request("x", "syscall.error", {{"syscalls", {"nosuch"}}}));
  EXPECT_EQ(noSuchCall.error().code(), ErrorCode::kInvalid);
  auto badErrno =
      injector_.prepare(request("x", "syscall.error", {{"syscalls", {"write"}}, {"errno", "EX"}}));
  EXPECT_EQ(badErrno.error().code(), ErrorCode::kInvalid);
  target_.kind = TargetKind::kPath;
  EXPECT_EQ(
      injector_.prepare(request("x", "syscall.error", {{"syscalls", {"write"}}})).error().code(),
      ErrorCode::kInvalid);
  EXPECT_TRUE(supervisor_.empty());
}

TEST_F(SyscallSeamTest, RecordsOfAnotherFaultAreRefused) {
  nlohmann::json undo = prepare("eio", "syscall.error", {{"syscalls", {"write"}}});
  EXPECT_FALSE(injector_.apply("other", undo).ok());
  EXPECT_FALSE(injector_.revert("other", undo).ok());
  EXPECT_FALSE(injector_.audit(nlohmann::json{{"faultId", "eio"}}).ok());
  EXPECT_TRUE(supervisor_.empty());
}

// ---- the decision for one call ----

SyscallRule ruleOf(const std::string& id, std::set<int> calls) {
  SyscallRule r;
  r.faultId = id;
  r.syscalls = std::move(calls);
  r.errnoValue = EIO;
  return r;
}

TEST(SyscallRuleSetTest, TheFirstRuleThatHitsDecidesAndEveryMatchingRuleCounts) {
  SyscallRuleSet rules;
  SyscallRule a = ruleOf("a", {kWrite});
  a.first = 1;
  SyscallRule b = ruleOf("b", {kWrite});
  b.errnoValue = ENOSPC;
  ASSERT_TRUE(rules.add(a).ok());
  ASSERT_TRUE(rules.add(b).ok());
  EXPECT_EQ(rules.add(a).error().code(), ErrorCode::kConflict);
  int pathReads = 0;
  auto noPath = [&] {
    ++pathReads;
    return std::string();
  };
  EXPECT_EQ(rules.judge(kWrite, noPath).err, EIO);     // a, its one hit
  EXPECT_EQ(rules.judge(kWrite, noPath).err, ENOSPC);  // a passes (first), b hits
  EXPECT_FALSE(rules.judge(kRead, noPath).hit);
  EXPECT_EQ(pathReads, 0) << "no rule needs the path";
  auto sa = rules.remove("a");
  ASSERT_TRUE(sa.has_value());
  EXPECT_EQ(sa->matched, 2u);
  EXPECT_EQ(sa->hit, 1u);
  EXPECT_EQ(sa->passed, 1u);
  EXPECT_EQ(rules.remove("b")->hit, 1u);
  EXPECT_FALSE(rules.remove("b").has_value());
  EXPECT_TRUE(rules.empty());
}

TEST(SyscallRuleSetTest, ThePathIsReadOnceAndOnlyWhenARuleHasAGlob) {
  SyscallRuleSet rules;
  SyscallRule a = ruleOf("a", {kWrite});
  a.pathGlob = "/data/*";
  SyscallRule b = ruleOf("b", {kWrite});
  b.pathGlob = "*.log";
  ASSERT_TRUE(rules.add(a).ok());
  ASSERT_TRUE(rules.add(b).ok());
  int reads = 0;
  auto path = [&] {
    ++reads;
    return std::string("/var/app.log");
  };
  EXPECT_TRUE(rules.judge(kWrite, path).hit);
  EXPECT_EQ(reads, 1);
  EXPECT_FALSE(rules.judge(kFsync, path).hit);
  EXPECT_EQ(reads, 1) << "no rule of fsync";
  EXPECT_EQ(rules.remove("a")->matched, 0u);
}

TEST(SyscallRuleSetTest, TheProbabilityDrawsReplayFromTheSeed) {
  auto hits = [](uint64_t seed) {
    SyscallRuleSet rules;
    SyscallRule r = ruleOf("p", {kWrite});
    r.probability = 0.3;
    r.seed = seed;
    EXPECT_TRUE(rules.add(r).ok());
    std::string pattern;
    for (int i = 0; i < 200; ++i) pattern += rules.judge(kWrite, [] { return ""; }).hit ? 'x' : '.';
    return pattern;
  };
  const std::string first = hits(42);
  EXPECT_EQ(first, hits(42));
  EXPECT_NE(first, hits(43));
  const auto n = std::count(first.begin(), first.end(), 'x');
  EXPECT_GT(n, 30);
  EXPECT_LT(n, 90);
}

TEST(SyscallSupervisorJudgeTest, AppliedRulesDecideAndRemovedOnesNoLonger) {
  // A listener that never speaks: the supervisor's thread waits while judge() is called here.
  Fd listener(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_TRUE(listener);
  SyscallSupervisor supervisor(kPid, kStartTime, std::move(listener));
  supervisor.setFiltered({kWrite});
  EXPECT_EQ(supervisor.addRule(ruleOf("r", {kFsync})).error().code(), ErrorCode::kInvalid);
  SyscallRule delay = ruleOf("r", {kWrite});
  delay.errnoValue = 0;
  delay.delay = 5ms;
  delay.pathGlob = "/srv/*";
  ASSERT_TRUE(supervisor.addRule(delay).ok());
  EXPECT_TRUE(supervisor.hasRule("r"));
  SyscallVerdict v = supervisor.judge(kWrite, [] { return std::string("/srv/x"); });
  EXPECT_TRUE(v.hit);
  EXPECT_EQ(v.delay, 5ms);
  EXPECT_FALSE(supervisor.judge(kWrite, [] { return std::string("/etc/x"); }).hit);
  auto stats = supervisor.removeRule("r");
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->matched, 1u);
  EXPECT_FALSE(supervisor.judge(kWrite, [] { return std::string("/srv/x"); }).hit);
  EXPECT_FALSE(supervisor.removeRule("r").has_value());
  EXPECT_EQ(supervisor.answered(), 0u);
}

TEST(SupervisorRegistryTest, RemoveTakesOnlyTheSupervisorItWasGiven) {
  SupervisorRegistry registry;
  FakeSyscallSupervisor first(1, {});
  FakeSyscallSupervisor second(2, {});
  EXPECT_EQ(registry.find(kPid), nullptr);
  registry.add(kPid, first);
  registry.add(kPid, second);  // the pid was reused by a new start
  registry.remove(kPid, first);
  EXPECT_EQ(registry.find(kPid), &second);
  registry.remove(kPid, second);
  EXPECT_EQ(registry.find(kPid), nullptr);
}

}  // namespace
}  // namespace chaosd
