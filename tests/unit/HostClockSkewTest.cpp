// time.skew of the host's clock without root: a clock in memory (FakeClockKernel) and a process
// table in memory (FakeProcesses) stand in for clock_adjtime and the NTP clients. Apply steps
// the clock by the offset from the recorded pair; revert sets the true time now (recorded
// realtime + monotonic elapsed), from the record alone, after time has passed, twice; audit;
// NTP clients paused before the step and resumed after the clock; the guardrail.
#include <gtest/gtest.h>

#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "injectors/time/NtpClients.h"
#include "injectors/time/TimeRecords.h"
#include "injectors/time/TimeSkewInjector.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/FakeClockKernel.h"
#include "tests/support/FakeProcesses.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using chaosd::testing::FakeClockKernel;

constexpr int64_t kHour = 3'600'000'000'000;

class HostClockSkewTest : public ::testing::Test {
 protected:
  FaultRequest request(std::string offset, std::string id = "host-1") const {
    FaultRequest r;
    r.runId = "run";
    r.faultId = std::move(id);
    r.faultType = "time.skew";
    r.target = nullptr;  // the host
    r.args = {{"offset", std::move(offset)}};
    r.duration = 30s;
    r.guardrails = &guardrails_;
    return r;
  }
  TimeSkewInjector make() {
    return TimeSkewInjector(std::make_shared<FakeTimeTargets>(), clock_, procs_,
                            TimeSkewInjector::Options{50ms});
  }
  // How far the fake clock is from the true time.
  int64_t off() const { return clock_->stepNs; }

  Guardrails guardrails_ = [] {
    Guardrails g;
    g.allowHostClock = true;
    return g;
  }();
  std::shared_ptr<FakeClockKernel> clock_ = std::make_shared<FakeClockKernel>();
  std::shared_ptr<FakeProcesses> procs_ = std::make_shared<FakeProcesses>();
  TimeSkewInjector injector_ = make();
};

TEST_F(HostClockSkewTest, ApplyStepsByTheOffsetAndRevertSetsTheTrueTime) {
  auto prepared = injector_.prepare(request("+2h"));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_TRUE(clock_->steps.empty()) << "prepare reads, never steps";
  EXPECT_EQ(prepared->resources, std::vector<std::string>{"clock:host"});
  EXPECT_NE(prepared->description.find("host clock (CLOCK_REALTIME) +2h"), std::string::npos)
      << prepared->description;
  EXPECT_EQ(prepared->undo["mode"], "host");
  EXPECT_EQ(prepared->undo["realtimeNs"], clock_->trueRealtimeNs);
  EXPECT_EQ(prepared->undo["monotonicNs"], clock_->monotonicNs);
  EXPECT_EQ(prepared->undo["bootId"], clock_->boot);

  clock_->advance(3'000'000);  // the journal write
  auto applied = injector_.apply("host-1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "clock_adjtime");
  EXPECT_EQ(off(), 2 * kHour);
  ASSERT_EQ(clock_->steps.size(), 1U);
  EXPECT_EQ(clock_->steps[0], 2 * kHour);
  auto left = injector_.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1U);
  EXPECT_NE(left->front().find("host clock still off the true time by +7200000.000 ms"),
            std::string::npos)
      << left->front();

  clock_->advance(30'000'000'000);  // the fault is held
  auto reverted = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(off(), 0);
  EXPECT_EQ(clock_->steps.back(), -2 * kHour) << "the true time now, exactly";
  EXPECT_EQ((*reverted)["stepped"], true);
  EXPECT_EQ((*reverted)["offTrueFound"], "+7200000.000 ms");
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());
}

TEST_F(HostClockSkewTest, RevertFromTheRecordAloneAfterTimePassedIsTheTrueTimeNotMinusTheOffset) {
  auto prepared = injector_.prepare(request("-90m"));
  ASSERT_TRUE(injector_.apply("host-1", prepared->undo).ok());
  EXPECT_EQ(off(), -90 * 60'000'000'000LL);
  // Someone else moves the skewed clock meanwhile (an admin's date, a stray NTP step): "minus
  // the offset" would leave that error behind; the recorded pair does not.
  ASSERT_TRUE(clock_->stepRealtime(17'000'000'000).ok());
  clock_->advance(3 * kHour);  // the owner died, the guardian or the next start comes much later
  const auto journalled = nlohmann::json::parse(prepared->undo.dump());
  TimeSkewInjector guardian(std::make_shared<FakeTimeTargets>(), clock_, procs_,
                            TimeSkewInjector::Options{50ms});
  auto reverted = guardian.revert("host-1", journalled);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(off(), 0);
  EXPECT_EQ(clock_->steps.back(), 90 * 60'000'000'000LL - 17'000'000'000) << "not minus the offset";
}

TEST_F(HostClockSkewTest, RevertIsIdempotentAndSafeForAnIntentNeverApplied) {
  auto prepared = injector_.prepare(request("+30s"));
  // Never applied: the clock is true, nothing is stepped.
  auto never = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(never.ok()) << never.error().describe();
  EXPECT_EQ((*never)["stepped"], false);
  EXPECT_TRUE(clock_->steps.empty());

  ASSERT_TRUE(injector_.apply("host-1", prepared->undo).ok());
  ASSERT_TRUE(injector_.revert("host-1", prepared->undo).ok());
  const size_t sets = clock_->steps.size();
  clock_->advance(5'000'000'000);
  auto again = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["stepped"], false) << "at the true time already";
  EXPECT_EQ(clock_->steps.size(), sets);
  EXPECT_EQ(off(), 0);
}

TEST_F(HostClockSkewTest, AnotherBootLeavesTheClockAlone) {
  auto prepared = injector_.prepare(request("+2h"));
  ASSERT_TRUE(injector_.apply("host-1", prepared->undo).ok());
  clock_->boot = "another-boot";
  clock_->monotonicNs = 1'000'000'000;  // a monotonic clock started over
  const size_t sets = clock_->steps.size();
  auto reverted = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE(reverted->contains("note"));
  EXPECT_EQ(clock_->steps.size(), sets);
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());
  EXPECT_FALSE(injector_.apply("host-1", prepared->undo).ok()) << "nor applied on another boot";
}

TEST_F(HostClockSkewTest, ApplyFailureIsAnErrorAndRevertCleansUp) {
  const pid_t chronyd = procs_->spawn("chronyd");
  auto prepared = injector_.prepare(request("+1h"));
  clock_->failSet = true;  // no CAP_SYS_TIME
  auto applied = injector_.apply("host-1", prepared->undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().sysErrno(), EPERM);
  EXPECT_EQ(procs_->state(chronyd), 'T') << "NTP was paused before the step";
  auto reverted = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(procs_->state(chronyd), 'S');
  EXPECT_EQ(off(), 0);
}

TEST_F(HostClockSkewTest, RevertFailureStillResumesNtpAndSaysWhy) {
  const pid_t chronyd = procs_->spawn("chronyd");
  auto prepared = injector_.prepare(request("+1h"));
  ASSERT_TRUE(injector_.apply("host-1", prepared->undo).ok());
  clock_->failSet = true;
  auto reverted = injector_.revert("host-1", prepared->undo);
  ASSERT_FALSE(reverted.ok());
  EXPECT_NE(reverted.error().describe().find("ADJ_SETOFFSET"), std::string::npos);
  EXPECT_EQ(procs_->state(chronyd), 'S') << "NTP is not left stopped for good";
  auto left = injector_.audit(prepared->undo);
  ASSERT_EQ(left->size(), 1U);
  clock_->failSet = false;
  ASSERT_TRUE(injector_.revert("host-1", prepared->undo).ok());
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());
}

TEST_F(HostClockSkewTest, NtpClientsArePausedBeforeTheStepAndResumedAfterTheClock) {
  const pid_t chronyd = procs_->spawn("chronyd");
  const pid_t timesyncd = procs_->spawn("systemd-timesyn");
  const pid_t ntpd = procs_->spawn("ntpd");
  const pid_t other = procs_->spawn("nginx");
  const pid_t held = procs_->spawn("openntpd");
  procs_->stopBySomeoneElse(held);
  auto prepared = injector_.prepare(request("+2h"));
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(prepared->undo["ntpPaused"].size(), 3U) << prepared->undo.dump();
  ASSERT_EQ(prepared->undo["ntpAlreadyStopped"].size(), 1U);
  EXPECT_EQ(prepared->undo["ntpAlreadyStopped"][0]["pid"], held);
  EXPECT_NE(prepared->description.find("chronyd"), std::string::npos) << prepared->description;

  auto applied = injector_.apply("host-1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  for (pid_t p : {chronyd, timesyncd, ntpd}) EXPECT_EQ(procs_->state(p), 'T') << p;
  EXPECT_EQ(procs_->state(other), 'S');
  EXPECT_EQ(applied->observed["ntp"]["paused"].size(), 3U) << applied->observed.dump();
  EXPECT_EQ(applied->observed["ntp"]["alreadyStopped"][0]["comm"], "openntpd");
  // Audit during the fault: the clock, and the three clients.
  EXPECT_EQ(injector_.audit(prepared->undo)->size(), 4U);

  // The guardian: another injector, the record only.
  TimeSkewInjector guardian(std::make_shared<FakeTimeTargets>(), clock_, procs_,
                            TimeSkewInjector::Options{50ms});
  auto reverted = guardian.revert("host-1", nlohmann::json::parse(prepared->undo.dump()));
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  for (pid_t p : {chronyd, timesyncd, ntpd}) EXPECT_EQ(procs_->state(p), 'S') << p;
  EXPECT_EQ(procs_->state(held), 'T') << "stopped by someone else: left stopped";
  EXPECT_EQ((*reverted)["ntp"]["resumed"].size(), 3U) << reverted->dump();
  EXPECT_EQ(off(), 0);
  EXPECT_TRUE(guardian.audit(prepared->undo)->empty());
  EXPECT_TRUE(guardian.revert("host-1", prepared->undo).ok()) << "twice";
}

TEST_F(HostClockSkewTest, AnNtpClientGoneOrItsPidReusedIsNeverSignalled) {
  const pid_t chronyd = procs_->spawn("chronyd");
  const pid_t ntpd = procs_->spawn("ntpd");
  auto prepared = injector_.prepare(request("+5m"));
  ASSERT_TRUE(injector_.apply("host-1", prepared->undo).ok());
  procs_->killBySomeoneElse(chronyd);
  procs_->killBySomeoneElse(ntpd);
  const pid_t reuse = procs_->reusePid(ntpd, "ntpd");
  procs_->stopBySomeoneElse(reuse);
  auto reverted = injector_.revert("host-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["ntp"]["gone"].size(), 1U) << reverted->dump();
  EXPECT_EQ((*reverted)["ntp"]["pidReused"].size(), 1U) << reverted->dump();
  EXPECT_EQ(procs_->state(reuse), 'T') << "another process on the pid: not resumed";
}

TEST_F(HostClockSkewTest, RefusedWithoutTheGuardrail) {
  guardrails_.allowHostClock = false;
  auto refused = injector_.prepare(request("+2h"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermission);
  EXPECT_NE(refused.error().message().find("allowHostClock"), std::string::npos);
  auto r = request("+2h");
  r.guardrails = nullptr;
  EXPECT_FALSE(injector_.prepare(r).ok());
  EXPECT_TRUE(clock_->steps.empty());
}

TEST_F(HostClockSkewTest, TheSchemaRefusesTheHostWithoutTheGuardrail) {
  const FaultType* type = chaosd::testing::builtinFaults().find("time.skew");
  ASSERT_NE(type, nullptr);
  EXPECT_TRUE(type->targetOptional);
  const nlohmann::json args{{"offset", "+2h"}};
  auto problem = [&](bool onHost, bool allow) {
    std::optional<ArgProblem> p;
    for (const auto& c : type->schema.constraints) {
      if (!p) p = c(ArgContext{args, 10s, false, false, onHost, allow});
    }
    return p;
  };
  ASSERT_TRUE(problem(true, false).has_value());
  EXPECT_NE(problem(true, false)->message.find("guardrails.allowHostClock: true"),
            std::string::npos);
  EXPECT_FALSE(problem(true, true).has_value());
  EXPECT_FALSE(problem(false, false).has_value()) << "an exec target needs no guardrail";
}

TEST(HostClockRecordsTest, RecordRoundTripsAndDamagedOnesAreRefused) {
  HostClockUndo u;
  u.faultId = "f";
  u.offset = -2h;
  u.before = {1'700'000'000'000'000'000, 50'000'000'000};
  u.bootId = "b";
  u.ntpPaused = {Victim{812, 4242, "chronyd"}};
  const auto j = u.toJson();
  auto back = HostClockUndo::fromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->toJson(), j);
  EXPECT_EQ(back->trueRealtimeAt(51'000'000'000), 1'700'000'001'000'000'000);
  EXPECT_EQ(*timeRecordMode(j), "host");
  for (const char* key : {"faultId", "offsetNs", "realtimeNs", "monotonicNs", "bootId"}) {
    auto damaged = j;
    damaged.erase(key);
    EXPECT_FALSE(HostClockUndo::fromJson(damaged).ok()) << key;
  }
  auto bad = j;
  bad["ntpPaused"] = {{{"pid", 0}, {"startTime", 1}}};
  EXPECT_FALSE(HostClockUndo::fromJson(bad).ok());
  bad = j;
  bad["ntpPaused"] = "chronyd";
  EXPECT_FALSE(HostClockUndo::fromJson(bad).ok());
  bad = j;
  bad["realtimeNs"] = 0;
  EXPECT_FALSE(HostClockUndo::fromJson(bad).ok());
  bad = j;
  bad["mode"] = "exec";
  EXPECT_FALSE(HostClockUndo::fromJson(bad).ok());
}

TEST(NtpClientNamesTest, TheClientsByTheirProcName) {
  for (const char* n : {"chronyd", "systemd-timesyn", "ntpd", "openntpd"}) {
    EXPECT_TRUE(isNtpClientName(n)) << n;
  }
  for (const char* n : {"chrony", "ntpdate", "systemd", "sntp", "chronyc", ""}) {
    EXPECT_FALSE(isNtpClientName(n)) << n;
  }
}

}  // namespace
}  // namespace chaosd
