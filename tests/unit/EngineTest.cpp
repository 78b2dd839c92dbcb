// The engine with fake injectors, fake probes and a fake clock: ordering, deadlines, aborts,
// rollbacks, outcomes. Deterministic and instantaneous: no sleeps, no threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "chaosd/engine/Engine.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/parser/ExperimentParser.h"
#include "injectors/FilterRefresh.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

// What the fake faults did, in order, with the fake time of each call.
struct World {
  FakeClock clock;
  std::vector<std::string> calls;  // "apply step@12s", "revert step@42s"
  std::map<std::string, bool> held;
  std::set<std::string> failApply;    // steps whose apply fails
  std::set<std::string> failPrepare;  // steps whose prepare fails
  std::set<std::string> failRevert;   // steps whose revert fails
  std::set<std::string> leaveBehind;  // steps the audit finds left
  std::vector<std::string> rollbacks;
  std::function<bool(const std::string& probe, Phase phase)> probeOk = [](auto&, Phase) {
    return true;
  };
  // How long a sample takes (the fake probe's latency).
  std::function<Duration(const std::string& probe, Phase phase)> probeLatency =
      [](auto&, Phase) -> Duration { return 2ms; };
  std::function<void()> onApply;
  std::map<std::string, nlohmann::json> preparedArgs;  // by step: the args prepare was given
  std::string sharedKey;             // when set, every fake.fault needs the shared "table:<key>"
  std::set<std::string> failUpdate;  // steps whose update (refresh) fails
  std::function<void(const nlohmann::json& next)> onUpdate;  // before the update's "kernel"

  std::string at() const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch());
    return std::to_string(ms.count()) + "ms";
  }
  bool anyHeld() const {
    for (const auto& [k, v] : held) {
      if (v) return true;
    }
    return false;
  }
};

class FakeInjector final : public Injector, public FilterRefresh {
 public:
  explicit FakeInjector(World& w) : w_(w) {}
  Result<PreparedFault> prepare(const FaultRequest& r) override {
    if (w_.failPrepare.contains(r.stepName)) {
      return Error(ErrorCode::kConflict, "nothing to take");
    }
    w_.preparedArgs[r.stepName] = r.args;
    PreparedFault p;
    p.undo = {{"step", r.stepName}};
    p.description = "fake on " + r.stepName;
    if (!w_.sharedKey.empty()) {
      p.shared.push_back(SharedNeed{w_.sharedKey,
                                    "fake.table",
                                    {{"step", "table:" + w_.sharedKey}},
                                    "fake table " + w_.sharedKey});
    }
    return p;
  }
  Result<AppliedFault> apply(const std::string&, const nlohmann::json& undo) override {
    std::string step = undo["step"];
    w_.calls.push_back("apply " + step + "@" + w_.at());
    if (w_.failApply.contains(step)) {
      return Error(ErrorCode::kKernel, "the kernel said no");
    }
    w_.held[step] = true;
    if (w_.onApply) w_.onApply();
    return AppliedFault{"fake", {}};
  }
  Result<nlohmann::json> revert(const std::string&, const nlohmann::json& undo) override {
    std::string step = undo["step"];
    w_.calls.push_back("revert " + step + "@" + w_.at());
    if (w_.failRevert.contains(step)) return Error(ErrorCode::kKernel, "revert refused");
    w_.held[step] = false;
    return nlohmann::json::object();
  }
  // A refresh: the record gets the new args; update is logged with what it moved to.
  Result<nlohmann::json> reprepare(const std::string&, const nlohmann::json& undo,
                                   const nlohmann::json& args) override {
    nlohmann::json next = undo;
    next["args"] = args;
    return next;
  }
  Result<void> update(const std::string&, const nlohmann::json& undo,
                      const nlohmann::json& next) override {
    std::string step = undo["step"];
    if (w_.onUpdate) w_.onUpdate(next);
    w_.calls.push_back("update " + step + " to " + next["args"].dump() + "@" + w_.at());
    if (w_.failUpdate.contains(step)) return Error(ErrorCode::kKernel, "update refused");
    return success();
  }
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override {
    std::string step = undo["step"];
    if (w_.leaveBehind.contains(step) || w_.held[step]) {
      return std::vector<std::string>{"fake thing of " + step};
    }
    return std::vector<std::string>{};
  }

 private:
  World& w_;
};

class FakeProbe final : public Probe {
 public:
  FakeProbe(ProbeSpec spec, World& w) : spec_(std::move(spec)), w_(w) {}
  ProbeSample sample(Phase phase) override {
    ProbeSample s;
    s.probe = spec_.name;
    s.phase = phase;
    s.start = w_.clock.now();
    s.wallStart = w_.clock.wallNow();
    s.duration = w_.probeLatency(spec_.name, phase);
    s.ok = w_.probeOk(spec_.name, phase);
    s.detail = s.ok ? "ok" : "fake failure";
    return s;
  }
  const ProbeSpec& spec() const override { return spec_; }

 private:
  ProbeSpec spec_;
  World& w_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultType t;
    t.name = "fake.fault";
    t.summary = "a fault of the test's own";
    t.factory = [this] { return std::make_unique<FakeInjector>(world_); };
    ASSERT_TRUE(registry_.add(t).ok());
    FaultType once = t;
    once.name = "fake.once";
    once.needsDuration = false;
    once.revertible = false;
    ASSERT_TRUE(registry_.add(once).ok());
    FaultType table = t;
    table.name = "fake.table";
    table.internal = true;
    ASSERT_TRUE(registry_.add(table).ok());
  }

  RunResult run(const std::string& body, std::function<void(Engine&)> during = nullptr) {
    std::string text = "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: t}\n" + body;
    ParseOptions opts;
    opts.registry = &registry_;
    ParseResult parsed = parseExperimentText(text, "test.yaml", opts);
    for (const auto& d : parsed.diagnostics) ADD_FAILURE() << d.str();
    if (!parsed.ok()) return {};
    experiment_ = std::move(*parsed.experiment);
    FakeWaiter waiter(world_.clock);
    EngineDeps deps;
    deps.clock = &world_.clock;
    deps.waiter = &waiter;
    deps.registry = &registry_;
    deps.makeProbe = [this](const ProbeSpec& s) -> Result<std::unique_ptr<Probe>> {
      return std::unique_ptr<Probe>(std::make_unique<FakeProbe>(s, world_));
    };
    deps.makeRunner = [](std::vector<std::unique_ptr<Probe>> p, ProbeRunner::Deliver d) {
      return std::make_unique<InlineProbeRunner>(std::move(p), std::move(d));
    };
    deps.runRollback = [this](const RollbackSpec& r) {
      world_.rollbacks.push_back(r.name + "@" + world_.at());
      RollbackRecord rec;
      rec.name = r.name;
      rec.ok = r.name != "broken";
      rec.detail = rec.ok ? "exit code 0" : "exit code 1";
      return rec;
    };
    deps.checkTarget = checkTarget_;
    deps.journal = journal_;
    deps.startAt = startAt_;
    Engine engine(experiment_, deps, "run1");
    if (during) during(engine);
    return engine.run();
  }

  static std::string probes(const std::string& extra = "") {
    return "steadyState:\n  baseline: {duration: 10s}\n  recovery: {duration: 10s}\n"
           "  probes:\n    - {name: health, command: {argv: [/bin/true]}, every: 1s" +
           extra + "}\n";
  }

  World world_;
  FaultRegistry registry_;
  std::function<std::vector<std::string>(const TargetSpec&)> checkTarget_;
  FaultJournal* journal_ = nullptr;
  Experiment experiment_;
  std::optional<WallClock> startAt_;
};

// A journal in a temporary directory with run1 begun, for the tests that look at it.
class JournalledEngineTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    std::string tmpl = (std::filesystem::temp_directory_path() / "chaosd-engine-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto j = openJournal(dir_ + "/journal.db");
    ASSERT_TRUE(j.ok()) << j.error().describe();
    journal_storage_ = std::make_unique<FaultJournal>(std::move(*j));
    RunRecord run;
    run.runId = "run1";
    run.experiment = "t";
    run.ownerPid = ::getpid();
    run.ownerStartTime = *selfStartTime();
    ASSERT_TRUE(journal_storage_->beginRun(run).ok());
    journal_ = journal_storage_.get();
  }
  void TearDown() override {
    journal_ = nullptr;
    journal_storage_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  FaultState stateOf(const std::string& step) {
    auto faults = journal_storage_->faultsOfRun("run1");
    if (!faults) {
      ADD_FAILURE() << faults.error().describe();
      return FaultState::kIntent;
    }
    const std::vector<FaultRecord> list = *faults;
    for (const auto& f : list) {
      if (f.step == step) return f.state;
    }
    ADD_FAILURE() << "step " << step << " not journalled";
    return FaultState::kIntent;
  }

  std::string dir_;
  std::unique_ptr<FaultJournal> journal_storage_;
};

constexpr const char* kParallelGroup =
    "method:\n"
    "  - {name: g, parallel: [{name: c, fault: fake.fault, duration: 4s},\n"
    "                         {name: d, fault: fake.fault, duration: 1s}]}\n";

TEST_F(JournalledEngineTest, AParallelGroupIsJournalledAtOnceBeforeAnyOfItIsApplied) {
  std::vector<size_t> journalledAtApply;
  world_.onApply = [&] { journalledAtApply.push_back(journal_->faultsOfRun("run1")->size()); };
  auto r = run(probes() + kParallelGroup);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(journalledAtApply, (std::vector<size_t>{2, 2}))
      << "both intents must be in the journal before the first apply";
  EXPECT_EQ(stateOf("c"), FaultState::kReverted);
  EXPECT_EQ(stateOf("d"), FaultState::kReverted);
}

// A shared need (the run's nftables table) is journalled and applied once, before the first
// fault that names it, and reverted once, after the last fault, not with each fault.
TEST_F(JournalledEngineTest, ASharedNeedIsHeldOnceFromTheFirstFaultToTheEndOfTheMethod) {
  world_.sharedKey = "k";
  std::vector<size_t> journalledAtApply;
  world_.onApply = [&] { journalledAtApply.push_back(journal_->faultsOfRun("run1")->size()); };
  auto r = run(probes() +
               "method:\n"
               "  - {name: a, fault: fake.fault, duration: 2s}\n"
               "  - {name: b, fault: fake.fault, duration: 2s, at: 3s}\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply table:k@10000ms", "apply a@10000ms",
                                                    "revert a@12000ms", "apply b@13000ms",
                                                    "revert b@15000ms", "revert table:k@15000ms"}));
  EXPECT_EQ(journalledAtApply, (std::vector<size_t>{1, 2, 3}))
      << "the shared need is journalled before it is applied, and before the fault";
  EXPECT_EQ(stateOf("shared"), FaultState::kReverted);
  EXPECT_FALSE(world_.anyHeld());
}

TEST_F(JournalledEngineTest, WhenTheSharedNeedCannotBeHeldNoFaultIsApplied) {
  world_.sharedKey = "k";
  world_.failApply = {"table:k"};
  auto r = run(probes() + "method: [{name: a, fault: fake.fault, duration: 2s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(world_.calls,
            (std::vector<std::string>{"apply table:k@10000ms", "revert table:k@10000ms"}));
  EXPECT_EQ(faultStateName(r.faults[0].state), "skipped");
  EXPECT_EQ(stateOf("shared"), FaultState::kReverted);
}

TEST_F(JournalledEngineTest, WhenAnApplyOfAGroupFailsTheRestIsSkippedNotApplied) {
  world_.failApply = {"c"};
  auto r = run(probes() + kParallelGroup);
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply c@10000ms", "revert c@10000ms"}));
  ASSERT_EQ(r.faults.size(), 2u);
  EXPECT_EQ(faultStateName(r.faults[0].state), "apply-failed");
  EXPECT_EQ(faultStateName(r.faults[1].state), "skipped");
  EXPECT_EQ(r.faults[1].error, "not applied: step c failed first");
  EXPECT_EQ(stateOf("c"), FaultState::kReverted) << "the partial apply was cleaned up";
  EXPECT_EQ(stateOf("d"), FaultState::kSkipped);
}

// Probes never fire together: the i-th of n samples i/n of its interval after each window's
// start (at most 250 ms), so that a probe does not measure the load of another.
TEST_F(EngineTest, ProbesAreStaggeredWithinTheirInterval) {
  RunResult r =
      run("steadyState:\n  baseline: {duration: 2s}\n  recovery: {duration: 2s}\n  probes:\n"
          "    - {name: a, command: {argv: [/bin/true]}, every: 200ms}\n"
          "    - {name: b, command: {argv: [/bin/true]}, every: 200ms}\n"
          "    - {name: c, command: {argv: [/bin/true]}, every: 10s}\n"
          "method:\n  - {name: wait, pause: 2s}\n");
  ASSERT_EQ(r.probes.size(), 3u);
  for (Phase phase : {Phase::kBefore, Phase::kDuring, Phase::kAfter}) {
    std::vector<std::vector<Clock::TimePoint>> starts(3);
    for (size_t i = 0; i < 3; ++i) {
      for (const auto& s : r.probes[i].samples) {
        if (s.phase == phase) starts[i].push_back(s.start);
      }
    }
    ASSERT_EQ(starts[0].size(), 10u) << phaseName(phase);
    ASSERT_EQ(starts[1].size(), 10u) << "as many samples: the offset is under one interval";
    ASSERT_EQ(starts[2].size(), 1u);
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_EQ(starts[1][k] - starts[0][k], Duration(200ms) / 3) << "b: a third of its interval";
    }
    // c: 2/3 of 10s is more than 250ms and a quarter of the 2s window: 250ms.
    EXPECT_EQ(starts[2][0] - starts[0][0], 250ms);
  }
}

// A control probe is the reference of the same phase: a rise both see is no deviation, a rise
// of the probe alone is.
TEST_F(EngineTest, AControlProbeIsTheReferenceOfTheSamePhase) {
  const std::string body =
      "steadyState:\n  baseline: {duration: 2s}\n  recovery: {duration: 2s}\n  probes:\n"
      "    - name: web\n      command: {argv: [/bin/true]}\n      every: 20ms\n"
      "      tolerance: {baseline: {alpha: 0.05, quantile: 0.9, control: replica}}\n"
      "    - {name: replica, command: {argv: [/bin/true]}, every: 20ms}\n"
      "method:\n  - {name: wait, pause: 2s}\n";
  RunResult r = run(body);
  ASSERT_EQ(r.probes.size(), 2u);
  EXPECT_EQ(r.outcome, Outcome::kOk) << (r.reasons.empty() ? "" : r.reasons[0]);
  size_t judged = 0;
  for (const auto& v : r.probes[0].verdicts) {
    if (v.phase == Phase::kBefore) {
      EXPECT_FALSE(v.baseline.has_value()) << "the before phase is not judged statistically";
      continue;
    }
    ASSERT_TRUE(v.baseline.has_value());
    EXPECT_EQ(v.baseline->control, "replica");
    EXPECT_EQ(v.baseline->baselineCount, 100u) << "the replica's samples of the same phase";
    EXPECT_FALSE(v.baseline->deviated);
    ++judged;
  }
  EXPECT_EQ(judged, 2u);
}

TEST_F(EngineTest, SequentialStepsApplyAndRevertAtTheirPlannedTimes) {
  auto r = run(probes() +
               "method:\n"
               "  - {name: a, fault: fake.fault, duration: 5s}\n"
               "  - {name: b, fault: fake.fault, duration: 3s}\n"
               "rollbacks: [{name: rb, command: [/bin/true]}]\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.exitCode(), 0);
  // Baseline 10s, then a at +0 for 5s, b at +5s for 3s: ends before starts at the same time.
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply a@10000ms", "revert a@15000ms",
                                                    "apply b@15000ms", "revert b@18000ms"}));
  EXPECT_EQ(world_.rollbacks, (std::vector<std::string>{"rb@18000ms"}));
  ASSERT_EQ(r.faults.size(), 2u);
  EXPECT_EQ(faultStateName(r.faults[0].state), "reverted");
  EXPECT_EQ(faultStateName(r.faults[1].state), "reverted");
  // The probe ran through all three phases, every second.
  size_t before = 0, during = 0, after = 0;
  for (const auto& s : r.probes[0].samples) {
    (s.phase == Phase::kBefore ? before : s.phase == Phase::kDuring ? during : after)++;
  }
  EXPECT_EQ(before, 10u);
  EXPECT_EQ(during, 8u);
  EXPECT_EQ(after, 10u);
}

// A fault whose prepare failed was never applied: the run fails on the prepare's error, and
// the audit does not ask the injector about a record that does not exist.
TEST_F(EngineTest, AFaultThatFailedToPrepareIsNotAudited) {
  world_.failPrepare = {"a"};
  auto r = run(probes() + "method:\n  - {name: a, fault: fake.fault, duration: 5s}\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty()) << "nothing applied";
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_TRUE(r.faults[0].leftovers.empty());
  EXPECT_TRUE(r.auditClean);
  bool named = false;
  for (const auto& reason : r.reasons)
    named = named || reason.find("nothing to take") != std::string::npos;
  EXPECT_TRUE(named) << r.reasons.size();
}

TEST_F(EngineTest, AtAfterAndParallelGroupsFollowTheTimeline) {
  auto r = run(probes() +
               "method:\n"
               "  - {name: a, fault: fake.fault, duration: 10s}\n"
               "  - {name: b, fault: fake.fault, duration: 2s, at: 3s}\n"
               "  - {name: g, parallel: [{name: c, fault: fake.fault, duration: 4s},\n"
               "                         {name: d, fault: fake.fault, duration: 1s}], after: b}\n"
               "  - {name: e, fault: fake.fault, duration: 1s, after: a}\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(world_.calls,
            (std::vector<std::string>{"apply a@10000ms", "apply b@13000ms", "revert b@15000ms",
                                      "apply c@15000ms", "apply d@15000ms", "revert d@16000ms",
                                      "revert c@19000ms", "revert a@20000ms", "apply e@20000ms",
                                      "revert e@21000ms"}));
}

TEST_F(EngineTest, BaselineDeviationAppliesNothingAndNamesTheProbe) {
  world_.probeOk = [](const std::string&, Phase p) { return p != Phase::kBefore; };
  auto r = run(probes() +
               "method: [{name: a, fault: fake.fault, duration: 5s}]\n"
               "rollbacks: [{name: rb, command: [/bin/true]}]\n");
  EXPECT_EQ(r.outcome, Outcome::kDeviated);
  EXPECT_EQ(r.exitCode(), 1);
  EXPECT_TRUE(world_.calls.empty());
  EXPECT_EQ(faultStateName(r.faults[0].state), "not-started");
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_NE(r.reasons[0].find("probe health failed in the before phase"), std::string::npos)
      << r.reasons[0];
  EXPECT_EQ(world_.rollbacks.size(), 1u) << "rollbacks run on deviation too";
}

TEST_F(EngineTest, DeviationDuringTheFaultIsExitOne) {
  world_.probeOk = [this](const std::string&, Phase) { return !world_.anyHeld(); };
  auto r = run(probes() + "method: [{name: a, fault: fake.fault, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kDeviated);
  EXPECT_EQ(r.exitCode(), 1);
  EXPECT_EQ(faultStateName(r.faults[0].state), "reverted");
  ASSERT_EQ(r.probes[0].verdicts.size(), 3u);
  EXPECT_TRUE(r.probes[0].verdicts[0].held);
  EXPECT_FALSE(r.probes[0].verdicts[1].held);
  EXPECT_TRUE(r.probes[0].verdicts[2].held) << "recovered after the revert";
}

TEST_F(EngineTest, TimeToDetectAndTimeToRecoverAreMeasuredPerFault) {
  // The fault is applied at 10 s and reverted at 15 s. The service breaks 2.5 s into it and
  // comes back 1.5 s after the revert; the probe samples every second on the second.
  world_.probeOk = [this](const std::string&, Phase) {
    const auto t = world_.clock.now().time_since_epoch();
    return t < std::chrono::milliseconds(12500) || t >= std::chrono::milliseconds(16500);
  };
  auto r = run(probes() + "method: [{name: a, fault: fake.fault, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kDeviated);
  ASSERT_EQ(r.faults.size(), 1u);
  ASSERT_EQ(r.faults[0].impact.size(), 1u);
  const ProbeImpact& i = r.faults[0].impact[0];
  EXPECT_EQ(i.probe, "health");
  EXPECT_TRUE(i.detected);
  // The fake probe takes 2 ms per sample.
  EXPECT_EQ(i.detectedAfter, 3002ms)
      << "first failing sample at 13 s (seen 2 ms later), applied at 10 s";
  EXPECT_EQ(i.detail, "fake failure");
  EXPECT_TRUE(i.recovered);
  EXPECT_EQ(i.recoveredAfter, 2s) << "passing again from 17 s, reverted at 15 s";
}

TEST_F(EngineTest, ALatencyBoundBrokenWithEverySamplePassingIsDetected) {
  // Every sample passes its own checks; from 12.5 s (the fault held 10 s .. 15 s) they take
  // 150 ms against p95 < 100ms. The during phase deviates on its p95 alone; the impact is the
  // first sample over the bound, taken at 13 s and known 150 ms later.
  world_.probeLatency = [this](const std::string&, Phase) -> Duration {
    const auto t = world_.clock.now().time_since_epoch();
    return t >= 12500ms && t < 15500ms ? 150ms : 2ms;
  };
  auto r = run(probes(", tolerance: {latency: {p95: \"< 100ms\"}}") +
               "method: [{name: a, fault: fake.fault, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kDeviated);
  ASSERT_EQ(r.faults.size(), 1u);
  ASSERT_EQ(r.faults[0].impact.size(), 1u);
  const ProbeImpact& i = r.faults[0].impact[0];
  EXPECT_TRUE(i.detected) << "the phase deviated on its p95: a time to detect is owed";
  EXPECT_EQ(i.by, "latency");
  EXPECT_EQ(i.detectedAfter, 3150ms) << "the sample of 13 s, 150 ms long, applied at 10 s";
  EXPECT_EQ(i.detail, "latency 150ms breaks p95 < 100ms (ok)");
  EXPECT_TRUE(i.recovered);
  EXPECT_EQ(i.recoveredAfter, 1s) << "within the bound again from 16 s, reverted at 15 s";
}

TEST_F(EngineTest, StopConditionRevertsWithinOneProbeInterval) {
  // The service breaks 4.5s into the method; the abort probe samples every second.
  world_.probeOk = [this](const std::string& name, Phase p) {
    if (name != "guard" || p != Phase::kDuring) return true;
    return world_.clock.now() < Clock::TimePoint(14500ms);
  };
  auto r =
      run("steadyState:\n  baseline: {duration: 10s}\n  probes:\n"
          "    - {name: guard, command: {argv: [/bin/true]}, every: 1s, abort: true}\n"
          "method:\n"
          "  - {name: a, fault: fake.fault, duration: 60s}\n"
          "  - {name: b, fault: fake.fault, duration: 60s, at: 1s}\n"
          "  - {name: c, fault: fake.fault, duration: 60s, at: 30s}\n"
          "rollbacks: [{name: rb, command: [/bin/true]}]\n");
  EXPECT_EQ(r.outcome, Outcome::kAborted);
  EXPECT_EQ(r.exitCode(), 3);
  // Failing sample at 15s (the first at or after 14.5s); both held faults reverted at once,
  // newest first; c never started.
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply a@10000ms", "apply b@11000ms",
                                                    "revert b@15000ms", "revert a@15000ms"}));
  EXPECT_EQ(faultStateName(r.faults[2].state), "not-started");
  EXPECT_EQ(world_.rollbacks, (std::vector<std::string>{"rb@15000ms"}));
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_NE(r.reasons.back().find("stop condition: probe guard failed"), std::string::npos);
}

TEST_F(EngineTest, SignalAbortRevertsEverythingAndRunsRollbacks) {
  world_.onApply = nullptr;
  Engine* enginePtr = nullptr;
  world_.onApply = [&] { enginePtr->requestAbort("interrupted by SIGINT"); };
  auto r = run(probes() +
                   "method: [{name: a, fault: fake.fault, duration: 5m}]\n"
                   "rollbacks: [{name: rb, command: [/bin/true]}]\n",
               [&](Engine& e) { enginePtr = &e; });
  EXPECT_EQ(r.outcome, Outcome::kAborted);
  EXPECT_EQ(r.exitCode(), 3);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply a@10000ms", "revert a@10000ms"}));
  EXPECT_EQ(world_.rollbacks.size(), 1u);
  EXPECT_FALSE(world_.anyHeld());
}

TEST_F(EngineTest, ApplyFailureIsARuntimeErrorAndRevertsWhatWasHeld) {
  world_.failApply = {"b"};
  auto r = run(probes() +
               "method:\n"
               "  - {name: a, fault: fake.fault, duration: 60s}\n"
               "  - {name: b, fault: fake.fault, duration: 5s, at: 2s}\n"
               "rollbacks: [{name: rb, command: [/bin/true]}]\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(r.exitCode(), 5);
  // b's failed apply is cleaned up by its own revert; a is reverted at once.
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply a@10000ms", "apply b@12000ms",
                                                    "revert b@12000ms", "revert a@12000ms"}));
  EXPECT_EQ(faultStateName(r.faults[1].state), "apply-failed");
  EXPECT_EQ(world_.rollbacks.size(), 1u);
}

TEST_F(EngineTest, RevertFailureAndLeftoversAreExitFour) {
  world_.failRevert = {"a"};
  auto r = run(probes() + "method: [{name: a, fault: fake.fault, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kLeftovers);
  EXPECT_EQ(r.exitCode(), 4);
  EXPECT_EQ(faultStateName(r.faults[0].state), "revert-failed");
  EXPECT_FALSE(r.auditClean);
  EXPECT_FALSE(r.faults[0].leftovers.empty());
}

TEST_F(EngineTest, AuditFindingSomethingLeftIsExitFour) {
  world_.leaveBehind = {"a"};
  auto r = run(probes() + "method: [{name: a, fault: fake.fault, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kLeftovers);
  EXPECT_EQ(r.faults[0].leftovers, (std::vector<std::string>{"fake thing of a"}));
}

TEST_F(EngineTest, FailedRollbackIsExitFour) {
  auto r = run(probes() +
               "method: [{name: a, fault: fake.fault, duration: 5s}]\n"
               "rollbacks: [{name: broken, command: [/bin/false]}]\n");
  EXPECT_EQ(r.outcome, Outcome::kLeftovers);
  ASSERT_EQ(r.rollbacks.size(), 1u);
  EXPECT_FALSE(r.rollbacks[0].ok);
}

TEST_F(EngineTest, InstantFaultIsAppliedAndClosedAtOnce) {
  auto r = run(probes() +
               "method: [{name: k, fault: fake.once, at: 2s}, "
               "{name: p, pause: 3s, at: 0s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply k@12000ms", "revert k@12000ms"}));
}

TEST_F(EngineTest, UnimplementedFaultTypeAppliesNothing) {
  FaultType t;
  t.name = "fake.missing";
  ASSERT_TRUE(registry_.add(t).ok());
  auto r = run(probes() +
               "method: [{name: a, fault: fake.fault, duration: 5s},"
               " {name: m, fault: fake.missing, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty());
  EXPECT_NE(r.reasons[0].find("not implemented"), std::string::npos);
}

}  // namespace
}  // namespace chaosd

namespace chaosd {
namespace {

TEST_F(EngineTest, MissingTargetAppliesNothing) {
  FaultType t;
  t.name = "fake.onpath";
  t.targetKinds = {TargetKind::kPath};
  t.factory = [this] { return std::make_unique<FakeInjector>(world_); };
  ASSERT_TRUE(registry_.add(t).ok());
  checkTarget_ = [](const TargetSpec& spec) {
    return std::vector<std::string>{"'" + spec.path + "' does not exist"};
  };
  auto r = run("targets: {data: {path: /nowhere}}\n" + probes() +
               "method: [{name: a, fault: fake.onpath, target: data, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty());
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_EQ(r.reasons[0], "target data: '/nowhere' does not exist; nothing was applied");
}

}  // namespace
}  // namespace chaosd

namespace chaosd {
namespace {

// A type whose args name things of the machine (FaultType::resolveArgs): "gone" never
// resolves, anything else becomes an address; counts its calls.
FaultType resolvingType(World& world, int& resolves) {
  FaultType t;
  t.name = "fake.byname";
  t.schema.args = {arg::make("host", ArgType::kString, "a name")};
  t.factory = [&world] { return std::make_unique<FakeInjector>(world); };
  t.resolveArgs = [&resolves](const nlohmann::json& args) -> Result<ResolvedArgs> {
    ++resolves;
    const std::string host = args.value("host", std::string());
    if (host == "gone") {
      return Error(ErrorCode::kNotFound, "hosts: host name 'gone' does not resolve");
    }
    return ResolvedArgs{{{"cidr", {"10.0.0." + std::to_string(resolves) + "/32"}}},
                        {{"hosts", {{host, {"10.0.0." + std::to_string(resolves)}}}}}};
  };
  return t;
}

// A host name that does not resolve stops the run before anything starts, even when the step
// that names it comes last.
TEST_F(EngineTest, AHostNameThatDoesNotResolveAppliesNothing) {
  int resolves = 0;
  ASSERT_TRUE(registry_.add(resolvingType(world_, resolves)).ok());
  auto r = run(probes() +
               "method: [{name: a, fault: fake.fault, duration: 5s},"
               " {name: b, fault: fake.byname, args: {host: gone}, duration: 5s, after: a}]\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty()) << "nothing applied";
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_EQ(r.reasons[0], "step b: hosts: host name 'gone' does not resolve; nothing was applied")
      << r.reasons[0];
}

// Names resolve at the start (the check) and again when the step is prepared: the injector gets
// the addresses of that moment, and the report says what each name resolved to.
TEST_F(EngineTest, HostNamesResolveAgainWhenTheStepIsPreparedAndAreReported) {
  int resolves = 0;
  ASSERT_TRUE(registry_.add(resolvingType(world_, resolves)).ok());
  auto r =
      run(probes() + "method: [{name: b, fault: fake.byname, args: {host: db}, duration: 5s}]\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(resolves, 2);
  EXPECT_EQ(world_.preparedArgs["b"], nlohmann::json({{"cidr", {"10.0.0.2/32"}}}));
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_EQ(r.faults[0].observed["hosts"], nlohmann::json({{"db", {"10.0.0.2"}}}));
  // The journal's description of the fault keeps the name next to the addresses.
  EXPECT_EQ(r.faults[0].description, "fake on b [hosts: db = 10.0.0.2]");
}

}  // namespace
}  // namespace chaosd

namespace chaosd {
namespace {

// A type that follows its host name while held (FaultType::refreshArgs, the `refresh` arg):
// names resolve through `names`, which the test changes mid-fault.
FaultType refreshingType(World& world, std::map<std::string, std::string>& names) {
  FaultType t;
  t.name = "fake.follow";
  t.schema.args = {arg::make("host", ArgType::kString, "a name"),
                   arg::make("refresh", ArgType::kDuration, "how often")};
  t.factory = [&world] { return std::make_unique<FakeInjector>(world); };
  auto resolve = [&names](const nlohmann::json& args,
                          const nlohmann::json& last) -> Result<RefreshedArgs> {
    const std::string host = args.value("host", std::string());
    RefreshedArgs out;
    auto it = names.find(host);
    nlohmann::json addresses;
    if (it != names.end()) {
      addresses = {it->second};
    } else if (last.is_object() && last.contains(host)) {
      addresses = last[host];
      out.kept[host] = "unknown name";
    } else {
      return Error(ErrorCode::kNotFound, "host name '" + host + "' does not resolve");
    }
    out.resolved = ResolvedArgs{{{"hostAddresses", addresses}}, {{"hosts", {{host, addresses}}}}};
    return out;
  };
  t.resolveArgs = [resolve](const nlohmann::json& args) -> Result<ResolvedArgs> {
    auto r = resolve(args, nlohmann::json::object());
    if (!r) return std::move(r).error();
    return r->resolved;
  };
  t.refreshArgs = resolve;
  return t;
}

constexpr const char* kFollowStep =
    "method: [{name: f, fault: fake.follow, args: {host: db, refresh: 2s}, duration: 7s}]\n";

// Every `refresh` the name resolves again; when its address changes, the new record is in the
// journal before the injector's update touches the kernel, and the report has the change.
TEST_F(JournalledEngineTest, ARefreshedNameIsJournalledBeforeTheKernelAndReported) {
  std::map<std::string, std::string> names{{"db", "10.0.0.1"}};
  ASSERT_TRUE(registry_.add(refreshingType(world_, names)).ok());
  world_.onApply = [&] { names["db"] = "10.0.0.2"; };  // changes right after the apply
  nlohmann::json journalledAtUpdate;
  world_.onUpdate = [&](const nlohmann::json&) {
    auto faults = journal_->faultsOfRun("run1");
    ASSERT_TRUE(faults.ok());
    journalledAtUpdate = faults->front().undo;
  };
  auto r = run(probes() + kFollowStep);
  EXPECT_EQ(r.outcome, Outcome::kOk) << (r.reasons.empty() ? "" : r.reasons[0]);
  EXPECT_EQ(world_.calls,
            (std::vector<std::string>{"apply f@10000ms",
                                      "update f to {\"hostAddresses\":[\"10.0.0.2\"]}@12000ms",
                                      "revert f@17000ms"}))
      << "one update, at the first refresh; none at 14 s and 16 s (no change)";
  EXPECT_EQ(journalledAtUpdate["args"], nlohmann::json({{"hostAddresses", {"10.0.0.2"}}}))
      << "the journal holds the new record before the kernel changes";
  ASSERT_EQ(r.faults.size(), 1u);
  const auto& o = r.faults[0].observed;
  EXPECT_EQ(o["hosts"], nlohmann::json({{"db", {"10.0.0.1"}}})) << "as applied";
  EXPECT_EQ(o["hostChanges"], nlohmann::json::parse(R"([{"atMs": 2000, "name": "db",
      "from": ["10.0.0.1"], "to": ["10.0.0.2"]}])"));
  EXPECT_EQ(stateOf("f"), FaultState::kReverted);
}

// A name that stops resolving keeps its addresses: no update, and the report says so once.
TEST_F(JournalledEngineTest, ANameThatStopsResolvingKeepsItsAddressesAndIsReportedOnce) {
  std::map<std::string, std::string> names{{"db", "10.0.0.1"}};
  ASSERT_TRUE(registry_.add(refreshingType(world_, names)).ok());
  world_.onApply = [&] { names.clear(); };
  auto r = run(probes() + kFollowStep);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply f@10000ms", "revert f@17000ms"}));
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_EQ(r.faults[0].observed["hostsUnresolved"],
            nlohmann::json::parse(R"([{"atMs": 2000, "name": "db", "error": "unknown name",
                "kept": ["10.0.0.1"]}])"));
  EXPECT_FALSE(r.faults[0].observed.contains("hostChanges"));
}

// An update the kernel refuses changes nothing there; the report says so, the journal already
// holds the new record (which reverts the same objects), and the next refresh tries again.
TEST_F(JournalledEngineTest, AFailedUpdateIsReportedAndTriedAgain) {
  std::map<std::string, std::string> names{{"db", "10.0.0.1"}};
  ASSERT_TRUE(registry_.add(refreshingType(world_, names)).ok());
  world_.onApply = [&] { names["db"] = "10.0.0.2"; };
  world_.failUpdate = {"f"};
  auto r = run(probes() + kFollowStep);
  EXPECT_EQ(world_.calls.size(), 5u) << "apply, three refused updates (12, 14, 16 s), revert";
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_EQ(r.faults[0].observed["hostRefreshErrors"].size(), 3u);
  EXPECT_NE(r.faults[0].observed["hostRefreshErrors"][0]["error"].get<std::string>().find(
                "updating the filter"),
            std::string::npos);
  EXPECT_EQ(stateOf("f"), FaultState::kReverted);
}

// A synchronised start: the method's clock starts at the instant asked for, whatever the
// baseline's own length; the before phase ends a probe timeout (and 50ms) before it, so its
// last sample cannot make the faults late.
TEST_F(EngineTest, ASynchronisedStartAppliesTheFirstFaultAtTheInstant) {
  startAt_ = world_.clock.wallNow() + 30s;
  RunResult r = run(probes() +
                    "method:\n  - {name: f, fault: fake.fault, duration: 5s}\n"
                    "  - {name: g, fault: fake.fault, at: 2s, duration: 1s}\n");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(world_.calls, (std::vector<std::string>{"apply f@30000ms", "apply g@32000ms",
                                                    "revert g@33000ms", "revert f@35000ms"}));
  ASSERT_EQ(r.phases.size(), 3u);
  EXPECT_EQ(r.phases[0].endedAt - r.phases[0].startedAt, 30s - 1050ms) << "baseline extended";
  EXPECT_EQ(r.phases[1].startedAt, *startAt_);
  ASSERT_TRUE(r.startAt);
  EXPECT_EQ(*r.startAt, *startAt_);
  EXPECT_EQ(r.faults[0].appliedAt, *startAt_);
}

TEST_F(EngineTest, AStartTooSoonForTheBaselineAppliesNothing) {
  startAt_ = world_.clock.wallNow() + 10s;  // the baseline (10s) and a 1s timeout need 11.05s
  RunResult r = run(probes() + "method:\n  - {name: f, fault: fake.fault, duration: 5s}\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty());
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_NE(r.reasons[0].find("is 10s away, too soon for the baseline (10s)"), std::string::npos)
      << r.reasons[0];
  EXPECT_NE(r.reasons[0].find("nothing was applied"), std::string::npos);
}

TEST_F(EngineTest, AStartThatHasPassedAppliesNothing) {
  startAt_ = world_.clock.wallNow() - 1s;
  RunResult r = run(probes() + "method:\n  - {name: f, fault: fake.fault, duration: 5s}\n");
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_TRUE(world_.calls.empty());
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_NE(r.reasons[0].find("has passed"), std::string::npos) << r.reasons[0];
}

// An abort while the run waits for its start stops it there: nothing is applied.
TEST_F(EngineTest, AnAbortBeforeTheStartAppliesNothing) {
  startAt_ = world_.clock.wallNow() + 60s;
  Engine* engine = nullptr;
  world_.probeOk = [&](const std::string&, Phase) {
    if (engine != nullptr && world_.clock.now().time_since_epoch() > 20s) {
      engine->requestAbort("stopped by the operator");
    }
    return true;
  };
  RunResult r = run(probes() + "method:\n  - {name: f, fault: fake.fault, duration: 5s}\n",
                    [&](Engine& e) { engine = &e; });
  EXPECT_EQ(r.outcome, Outcome::kAborted);
  EXPECT_TRUE(world_.calls.empty());
  EXPECT_LT(world_.clock.now().time_since_epoch(), 30s);
}

}  // namespace
}  // namespace chaosd
