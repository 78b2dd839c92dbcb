// process.kill / process.pause without root and without touching a process: the undo record
// (what the guardian reverts from), the interval rounds' seeded choice, and the refusals
// decided before /proc is read.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <set>

#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "injectors/process/KillInjector.h"
#include "injectors/process/PauseInjector.h"
#include "injectors/process/ProcessInjector.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

ProcessPlan samplePlan() {
  ProcessPlan p;
  p.faultId = "run-1";
  p.faultType = "process.pause";
  p.selectorText = "process name=api AND cmdline=/--worker/";
  p.selector.name = "api";
  p.selector.cmdline = "--worker";
  p.selector.pid = 77;
  p.selection.mode = SelectionMode::kPercent;
  p.selection.fraction = 0.5;
  p.seed = 0xFFFFFFFFFFFFFFF0ULL;  // above 2^63: must survive JSON as unsigned
  p.seedFromExperiment = true;
  p.signal = SIGSTOP;
  p.duration = 30s;
  p.interval = 250ms;
  p.matched = 3;
  p.eligible = 2;
  p.refused = {"pid 1 (init) is protected: it is the init process (PID 1)"};
  p.victims = {{101, 5000, "api"}, {102, 5001, "a p)i"}};
  p.stopped = {{101, 5000, "api"}};
  p.alreadyStopped = {{102, 5001, "a p)i"}};
  return p;
}

std::vector<ProcessInfo> candidates(int n) {
  std::vector<ProcessInfo> out;
  for (int i = 0; i < n; ++i) {
    ProcessInfo p;
    p.pid = 1000 + i * 7;
    p.startTime = 42 + static_cast<uint64_t>(i);
    p.comm = "w" + std::to_string(i);
    out.push_back(p);
  }
  return out;
}

TEST(ProcessFaultPlanTest, UndoRecordRoundTripsThroughJsonText) {
  ProcessPlan p = samplePlan();
  // As the journal stores it: text, parsed again in another process.
  auto back = ProcessPlan::fromJson(nlohmann::json::parse(p.toJson().dump()), "run-1");
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->faultType, p.faultType);
  EXPECT_EQ(back->selectorText, p.selectorText);
  EXPECT_EQ(back->selector.name, "api");
  EXPECT_EQ(back->selector.cmdline, "--worker");
  EXPECT_EQ(back->selector.pid, 77);
  EXPECT_EQ(back->selection.mode, SelectionMode::kPercent);
  EXPECT_DOUBLE_EQ(back->selection.fraction, 0.5);
  EXPECT_EQ(back->seed, p.seed);
  EXPECT_EQ(back->selection.seed, p.seed);
  EXPECT_TRUE(back->seedFromExperiment);
  EXPECT_EQ(back->signal, SIGSTOP);
  EXPECT_EQ(back->duration, p.duration);
  EXPECT_EQ(back->interval, p.interval);
  EXPECT_EQ(back->refused, p.refused);
  ASSERT_EQ(back->victims.size(), 2u);
  EXPECT_EQ(back->victims[1].pid, 102);
  EXPECT_EQ(back->victims[1].startTime, 5001u);
  EXPECT_EQ(back->victims[1].comm, "a p)i");
  ASSERT_EQ(back->stopped.size(), 1u);
  EXPECT_EQ(back->stopped[0].pid, 101);
  ASSERT_EQ(back->alreadyStopped.size(), 1u);
  // Any fault id is accepted by audit (""), none but its own by apply and revert.
  EXPECT_TRUE(ProcessPlan::fromJson(p.toJson(), "").ok());
}

TEST(ProcessFaultPlanTest, MalformedOrForeignUndoRecordsAreRefused) {
  nlohmann::json good = samplePlan().toJson();
  auto wrongFault = ProcessPlan::fromJson(good, "run-2");
  ASSERT_FALSE(wrongFault.ok());
  EXPECT_NE(wrongFault.error().message().find("belongs to fault run-1"), std::string::npos);

  for (auto mutate : std::vector<std::function<void(nlohmann::json&)>>{
           [](nlohmann::json& j) { j = nlohmann::json::array(); },
           [](nlohmann::json& j) { j.erase("faultId"); },
           [](nlohmann::json& j) { j["stopped"] = "101"; },
           [](nlohmann::json& j) { j["stopped"][0].erase("startTime"); },
           [](nlohmann::json& j) { j["stopped"][0]["pid"] = 0; },   // a process group
           [](nlohmann::json& j) { j["victims"][0]["pid"] = -1; },  // every process
           [](nlohmann::json& j) { j["victims"][0]["startTime"] = -5; },
           [](nlohmann::json& j) { j["victims"][0]["comm"] = 5; },  // would throw in value()
           [](nlohmann::json& j) { j["seed"] = "seven"; },
           [](nlohmann::json& j) { j["durationNs"] = nlohmann::json::array(); },
       }) {
    nlohmann::json bad = good;
    mutate(bad);
    EXPECT_FALSE(ProcessPlan::fromJson(bad, "run-1").ok()) << bad.dump();
  }
}

TEST(ProcessFaultPlanTest, IntervalRoundsChooseDeterministicallyFromTheCandidates) {
  Selection all;
  std::set<pid_t> picked;
  for (uint64_t round = 0; round < 40; ++round) {
    auto a = chooseForRound(candidates(6), all, 42, round);
    auto b = chooseForRound(candidates(6), all, 42, round);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->pid, b->pid) << "round " << round;
    picked.insert(a->pid);
  }
  EXPECT_GT(picked.size(), 3u) << "the rounds keep choosing the same process";
  EXPECT_FALSE(chooseForRound({}, all, 42, 0).has_value());

  // With count(1) a round picks among the one its selection keeps: still a candidate.
  Selection one;
  one.mode = SelectionMode::kCount;
  one.count = 1;
  auto c = chooseForRound(candidates(6), one, 7, 3);
  ASSERT_TRUE(c);
  auto all6 = candidates(6);
  EXPECT_TRUE(
      std::any_of(all6.begin(), all6.end(), [&](const ProcessInfo& p) { return p.pid == c->pid; }));
}

TEST(ProcessFaultPlanTest, TargetsOfTheWrongKindAreRefusedBeforeProcIsRead) {
  FaultRequest r;
  r.faultId = "run-1";
  r.faultType = "process.kill";
  r.args = {{"signal", SIGKILL}};
  auto none = planProcessFault(*systemProcessKernel(), r, SIGKILL, 0ns);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalid);

  TargetSpec exec;
  exec.name = "app";
  exec.kind = TargetKind::kExec;
  r.target = &exec;
  auto unsupported = planProcessFault(*systemProcessKernel(), r, SIGKILL, 0ns);
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(unsupported.error().message(), "exec target 'app' has no process the engine started");

  TargetSpec path;
  path.name = "data";
  path.kind = TargetKind::kPath;
  r.target = &path;
  auto wrong = planProcessFault(*systemProcessKernel(), r, SIGKILL, 0ns);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalid);
}

TEST(ProcessFaultPlanTest, KillRefusesStoppingSignalsAndAnIntervalWithoutDuration) {
  TargetSpec t;
  t.name = "x";
  t.process.name = "x";
  FaultRequest r;
  r.faultId = "run-1";
  r.faultType = "process.kill";
  r.target = &t;
  KillInjector kill;
  for (int sig : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}) {
    r.args = {{"signal", sig}};
    auto p = kill.prepare(r);
    ASSERT_FALSE(p.ok()) << sig;
    EXPECT_EQ(p.error().code(), ErrorCode::kInvalid);
  }
  r.args = {{"signal", SIGKILL}, {"interval", 1e9}};
  auto p = kill.prepare(r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("duration"), std::string::npos);
}

TEST(ProcessFaultPlanTest, RevertAndAuditWithNothingRecordedSucceed) {
  // The guardian's situation for a kill: no watch in this process, nothing to undo.
  ProcessPlan kill = samplePlan();
  kill.faultType = "process.kill";
  kill.signal = SIGKILL;
  auto reverted = KillInjector().revert("run-1", kill.toJson());
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE(reverted->contains("note"));
  auto killAudit = KillInjector().audit(kill.toJson());
  ASSERT_TRUE(killAudit.ok());
  EXPECT_TRUE(killAudit->empty());

  // A pause that stopped nothing (a no-op, or everything already stopped by someone else).
  ProcessPlan pause = samplePlan();
  pause.stopped.clear();
  PauseInjector injector;
  auto pr = injector.revert("run-1", pause.toJson());
  ASSERT_TRUE(pr.ok()) << pr.error().describe();
  EXPECT_TRUE((*pr)["resumed"].empty());
  auto pa = injector.audit(pause.toJson());
  ASSERT_TRUE(pa.ok());
  EXPECT_TRUE(pa->empty());
  EXPECT_FALSE(injector.revert("run-1", nlohmann::json::object()).ok());
}

TEST(ProcessFaultPlanTest, BothTypesAreImplementedWithTheirSchemas) {
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  for (const char* name : {"process.kill", "process.pause"}) {
    const FaultType* t = registry.find(name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_TRUE(t->factory) << name;
    EXPECT_NE(t->factory(), nullptr);
  }
  EXPECT_FALSE(registry.find("process.kill")->revertible);
  EXPECT_TRUE(registry.find("process.pause")->revertible);
}

}  // namespace
}  // namespace chaosd
