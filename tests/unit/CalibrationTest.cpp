// The pure parts of `chaosctl calibrate` and `chaosctl run --calibration`: the experiment
// without faults, the Clopper-Pearson interval and the binomial allowance, the tally of run
// results, the calibration file's round trip and every reason it is refused, and the digest
// the file records of the experiment.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include "chaosd/base/Sha256.h"
#include "chaosd/engine/CalibrationFile.h"
#include "chaosd/engine/CalibrationRuns.h"
#include "chaosd/engine/probes/Calibration.h"
#include "experiments/model/Timeline.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

StepSpec fault(const std::string& name, const std::string& type, std::optional<Duration> d) {
  StepSpec s;
  s.name = name;
  s.kind = StepKind::kFault;
  s.fault = type;
  s.target = "svc";
  s.args = Json{{"size", "1MiB"}};
  s.duration = d;
  return s;
}

Experiment methodExperiment() {
  Experiment e;
  e.metadata.name = "exp";
  StepSpec fill = fault("fill", "disk.fill", Duration(2s));
  fill.at = Duration(1s);
  StepSpec kill = fault("kill", "process.kill", std::nullopt);
  kill.after = "fill";
  StepSpec wait;
  wait.name = "wait";
  wait.kind = StepKind::kPause;
  wait.duration = Duration(500ms);
  StepSpec group;
  group.name = "group";
  group.kind = StepKind::kParallel;
  group.after = "wait";
  group.parallel = {fault("delay", "network.delay", Duration(3s)),
                    fault("pause", "process.pause", Duration(1s))};
  e.method = {fill, kill, wait, group};
  e.rollbacks.push_back(RollbackSpec{"restart", {}, {"/bin/true"}, {}, Duration(1s)});
  return e;
}

void expectNoFault(const std::vector<StepSpec>& steps) {
  for (const auto& s : steps) {
    EXPECT_NE(s.kind, StepKind::kFault) << s.name;
    EXPECT_TRUE(s.fault.empty()) << s.name;
    EXPECT_TRUE(s.target.empty()) << s.name;
    EXPECT_TRUE(s.args.empty()) << s.name;
    expectNoFault(s.parallel);
  }
}

TEST(CalibrationWithoutFaults, EveryFaultBecomesAPauseOfItsLengthAtTheSameTime) {
  const Experiment e = methodExperiment();
  const Experiment aa = withoutFaults(e);
  ASSERT_EQ(aa.method.size(), 4u);
  expectNoFault(aa.method);
  EXPECT_TRUE(aa.rollbacks.empty());
  EXPECT_EQ(aa.method[0].name, "fill");
  EXPECT_EQ(aa.method[0].kind, StepKind::kPause);
  EXPECT_EQ(aa.method[0].duration, Duration(2s));
  EXPECT_EQ(aa.method[0].at, Duration(1s));
  EXPECT_EQ(aa.method[1].name, "kill");
  EXPECT_EQ(aa.method[1].duration, Duration(0));  // a fault without a duration: 0s
  EXPECT_EQ(aa.method[1].after, "fill");
  EXPECT_EQ(aa.method[2].duration, Duration(500ms));
  EXPECT_EQ(aa.method[3].kind, StepKind::kParallel);
  ASSERT_EQ(aa.method[3].parallel.size(), 2u);
  EXPECT_EQ(aa.method[3].parallel[0].name, "delay");
  EXPECT_EQ(aa.method[3].parallel[0].kind, StepKind::kPause);
  EXPECT_EQ(aa.method[3].parallel[1].duration, Duration(1s));
  EXPECT_EQ(aa.method[3].after, "wait");

  // The method's timing is unchanged, step by step.
  const Timeline before = computeTimeline(e.method);
  const Timeline after = computeTimeline(aa.method);
  EXPECT_EQ(before.total, after.total);
  ASSERT_EQ(before.entries.size(), after.entries.size());
  for (size_t i = 0; i < before.entries.size(); ++i) {
    EXPECT_EQ(before.entries[i].step, after.entries[i].step);
    EXPECT_EQ(before.entries[i].start, after.entries[i].start) << before.entries[i].step;
    EXPECT_EQ(before.entries[i].end, after.entries[i].end) << before.entries[i].step;
  }
  // The original is left alone.
  EXPECT_EQ(e.method[0].kind, StepKind::kFault);
  EXPECT_EQ(e.rollbacks.size(), 1u);
}

TEST(CalibrationStatistics, ClopperPearsonMatchesPublishedValues) {
  auto zero = clopperPearson(0, 20);
  EXPECT_DOUBLE_EQ(zero.low, 0);
  EXPECT_NEAR(zero.high, 0.1684, 1e-4);
  auto three = clopperPearson(3, 20);
  EXPECT_NEAR(three.low, 0.0321, 1e-4);
  EXPECT_NEAR(three.high, 0.3789, 1e-4);
  auto all = clopperPearson(20, 20);
  EXPECT_NEAR(all.low, 0.8316, 1e-4);
  EXPECT_DOUBLE_EQ(all.high, 1);
  auto half = clopperPearson(5, 10);
  EXPECT_NEAR(half.low, 0.1871, 1e-4);
  EXPECT_NEAR(half.high, 0.8129, 1e-4);
  auto none = clopperPearson(0, 0);
  EXPECT_DOUBLE_EQ(none.low, 0);
  EXPECT_DOUBLE_EQ(none.high, 1);
}

TEST(CalibrationStatistics, BinomialTailAndTheFalseAlarmsAlphaAllows) {
  EXPECT_DOUBLE_EQ(binomialTail(20, 0.05, 0), 1);
  EXPECT_NEAR(binomialTail(20, 0.05, 1), 1 - std::pow(0.95, 20), 1e-12);
  EXPECT_NEAR(binomialTail(20, 0.05, 3), 0.0754836, 1e-6);
  EXPECT_NEAR(binomialTail(20, 0.05, 4), 0.0159015, 1e-6);
  EXPECT_DOUBLE_EQ(binomialTail(3, 0.05, 4), 0);
  // 20 runs at 5%: 3 alarms (p 0.075) are within, 4 (p 0.016) are significantly above.
  EXPECT_EQ(allowedFalseAlarms(20, 0.05), 3u);
  EXPECT_EQ(allowedFalseAlarms(20, 0.01), 1u);  // P(X >= 2) = 0.0169
  EXPECT_EQ(allowedFalseAlarms(3, 0.05), 1u);   // P(X >= 1) = 0.143, P(X >= 2) = 0.0073
  EXPECT_EQ(allowedFalseAlarms(0, 0.05), 0u);
  EXPECT_EQ(allowedFalseAlarms(5, 0.5), 4u);  // P(X >= 5) = 1/32 < 0.05
}

// ---- the tally -------------------------------------------------------------------------

ProbeSpec statisticalProbe(const std::string& name) {
  ProbeSpec p;
  p.name = name;
  BaselineTolerance b;
  b.alpha = 0.05;
  b.quantile = 0.9;
  b.test = BaselineTest::kExceedance;
  b.minRelative = 0.1;
  p.tolerance.baseline = b;
  return p;
}

PhaseVerdict verdict(const std::string& probe, Phase phase, bool deviated, double effect,
                     bool held) {
  PhaseVerdict v;
  v.probe = probe;
  v.phase = phase;
  v.held = held;
  if (phase == Phase::kBefore) return v;
  BaselineCheck b;
  b.test = BaselineTest::kExceedance;
  b.alpha = 0.05;
  b.quantile = 0.9;
  b.minRelative = 0.1;
  b.deviated = deviated;
  b.effect = effect;
  v.baseline = b;
  return v;
}

// One run: the probe "api" deviated during/after as given; "plain" has no statistical mode.
RunResult run(bool during, bool after, double effectDuring, double effectAfter,
              bool heldAfter = true) {
  RunResult r;
  ProbeRecord api{"api", {}, {}};
  api.verdicts = {verdict("api", Phase::kBefore, false, 0, true),
                  verdict("api", Phase::kDuring, during, effectDuring, !during),
                  verdict("api", Phase::kAfter, after, effectAfter, !after && heldAfter)};
  ProbeRecord plain{"plain", {}, {}};
  PhaseVerdict pv;
  pv.probe = "plain";
  pv.phase = Phase::kDuring;
  pv.held = false;
  plain.verdicts = {pv};
  r.probes = {api, plain};
  return r;
}

Experiment tallyExperiment() {
  Experiment e;
  e.metadata.name = "exp";
  ProbeSpec plain;
  plain.name = "plain";
  e.steadyState.probes = {statisticalProbe("api"), plain};
  return e;
}

const PhaseCalibration& find(const std::vector<PhaseCalibration>& v, const std::string& phase) {
  for (const auto& c : v) {
    if (c.phase == phase) return c;
  }
  throw std::runtime_error("no phase " + phase);
}

TEST(CalibrationTally, CountsFalseAlarmsPerPhaseAndBothWithRateIntervalAndDrift) {
  std::vector<RunResult> runs = {run(true, false, 0.30, 0.01), run(false, false, 0.02, -0.05),
                                 run(false, true, 0.04, 0.20),
                                 run(false, false, 0.06, 0.00, false)};
  // A run whose during and after phases were never judged (the baseline deviated) counts
  // for nothing.
  RunResult skipped;
  skipped.probes = {ProbeRecord{"api", {}, {verdict("api", Phase::kBefore, false, 0, false)}}};
  runs.push_back(skipped);
  const auto cal = aggregateCalibration(tallyExperiment(), runs);
  ASSERT_EQ(cal.size(), 3u);  // api during, after, both; nothing for "plain"

  const auto& during = find(cal, "during");
  EXPECT_EQ(during.probe, "api");
  EXPECT_EQ(during.runs, 4u);
  EXPECT_EQ(during.falseAlarms, 1u);
  EXPECT_EQ(during.notHeld, 1u);
  EXPECT_DOUBLE_EQ(during.rate, 0.25);
  EXPECT_NEAR(during.interval.low, clopperPearson(1, 4).low, 1e-12);
  EXPECT_NEAR(during.interval.high, clopperPearson(1, 4).high, 1e-12);
  EXPECT_DOUBLE_EQ(during.driftMedian, 0.05);  // of 0.02, 0.04, 0.06, 0.30
  EXPECT_DOUBLE_EQ(during.driftMax, 0.30);
  EXPECT_EQ(during.test, BaselineTest::kExceedance);
  EXPECT_DOUBLE_EQ(during.alpha, 0.05);
  EXPECT_DOUBLE_EQ(during.nominal, 0.05);
  EXPECT_DOUBLE_EQ(during.quantile, 0.9);
  EXPECT_DOUBLE_EQ(during.minRelative, 0.1);
  EXPECT_EQ(during.allowed, allowedFalseAlarms(4, 0.05));
  EXPECT_FALSE(during.exceeded);

  const auto& after = find(cal, "after");
  EXPECT_EQ(after.falseAlarms, 1u);
  EXPECT_EQ(after.notHeld, 2u);  // the deviated run and the one whose other checks failed
  EXPECT_DOUBLE_EQ(after.driftMax, 0.20);
  EXPECT_DOUBLE_EQ(after.driftMedian, 0.005);  // of -0.05, 0.00, 0.01, 0.20

  const auto& both = find(cal, "both");
  EXPECT_EQ(both.runs, 4u);
  EXPECT_EQ(both.falseAlarms, 2u);
  EXPECT_DOUBLE_EQ(both.nominal, 0.10);
  EXPECT_DOUBLE_EQ(both.driftMax, 0.30);  // the larger of the two phases, per run
}

TEST(CalibrationTally, TooManyFalseAlarmsExceedAlpha) {
  std::vector<RunResult> runs;
  for (int i = 0; i < 10; ++i) runs.push_back(run(i < 3, false, 0.5, 0));
  const auto cal = aggregateCalibration(tallyExperiment(), runs);
  const auto& during = find(cal, "during");
  EXPECT_EQ(during.falseAlarms, 3u);
  EXPECT_EQ(during.allowed, 2u);  // 10 runs at 5%: P(X >= 2) = 0.086, P(X >= 3) = 0.0115
  EXPECT_TRUE(during.exceeded);
  EXPECT_FALSE(find(cal, "after").exceeded);
  CalibrationFile file;
  file.phases = cal;
  EXPECT_FALSE(file.withinAlpha());
}

TEST(CalibrationTally, OnlyThePhasesTheProbeRunsIn) {
  Experiment e = tallyExperiment();
  e.steadyState.probes[0].phases = {Phase::kBefore, Phase::kAfter};
  const auto cal = aggregateCalibration(e, {run(false, false, 0, 0)});
  ASSERT_EQ(cal.size(), 1u);
  EXPECT_EQ(cal[0].phase, "after");
}

TEST(CalibrationTally, FalseAlarmsOfARunNameProbePhaseAndEffect) {
  auto alarms = falseAlarmsOf(run(true, true, 0.125, -0.02));
  ASSERT_EQ(alarms.size(), 2u);
  EXPECT_EQ(alarms[0], "api during (+12.5%)");
  EXPECT_EQ(alarms[1], "api after (-2.0%)");
  EXPECT_TRUE(falseAlarmsOf(run(false, false, 0.3, 0.3)).empty());
}

TEST(CalibrationTally, ApplyCalibrationMatchesProbeAndPhase) {
  std::vector<RunResult> runs = {run(true, false, 0.3, 0), run(false, false, 0, 0)};
  const auto cal = aggregateCalibration(tallyExperiment(), runs);
  RunResult later = run(false, false, 0, 0);
  EXPECT_EQ(applyCalibration(later, cal, "/tmp/cal.json"), 2u);
  const auto& v = later.probes[0].verdicts;
  EXPECT_FALSE(v[0].baseline.has_value());
  ASSERT_TRUE(v[1].baseline->calibration.has_value());
  EXPECT_EQ(v[1].baseline->calibration->runs, 2u);
  EXPECT_EQ(v[1].baseline->calibration->falseAlarms, 1u);
  EXPECT_EQ(v[1].baseline->calibration->source, "/tmp/cal.json");
  ASSERT_TRUE(v[2].baseline->calibration.has_value());
  EXPECT_EQ(v[2].baseline->calibration->falseAlarms, 0u);
  // Another probe's calibration is not applied.
  RunResult other = run(false, false, 0, 0);
  other.probes[0].name = "web";
  EXPECT_EQ(applyCalibration(other, cal, "x"), 0u);
}

// ---- the file --------------------------------------------------------------------------

class CalibrationFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaosd-calib-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::vector<RunResult> runs = {run(true, false, 0.3, 0.01), run(false, false, 0.1, 0.02)};
    file_.experiment = "exp";
    file_.experimentFile = "/srv/exp.yaml";
    file_.experimentSha256 = sha256Hex("apiVersion: chaosd/v1\n");
    file_.created = "2024-05-01T10:00:00Z";
    file_.runs = 2;
    file_.phases = aggregateCalibration(tallyExperiment(), runs);
    file_.phases[0].minAbsolute = Duration(5ms);
    file_.phases[0].control = "replica";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // The load error of the document `doc` written to a file, for the experiment "exp".
  std::string loadError(const Json& doc) {
    auto loaded = loadCalibrationFile(write("bad.json", doc.dump()), "exp");
    return loaded ? "" : loaded.error().message();
  }

  std::string dir_;
  CalibrationFile file_;
};

void expectSame(const PhaseCalibration& a, const PhaseCalibration& b) {
  EXPECT_EQ(a.probe, b.probe);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.test, b.test);
  EXPECT_DOUBLE_EQ(a.quantile, b.quantile);
  EXPECT_DOUBLE_EQ(a.alpha, b.alpha);
  EXPECT_DOUBLE_EQ(a.minRelative, b.minRelative);
  EXPECT_EQ(a.minAbsolute, b.minAbsolute);
  EXPECT_EQ(a.minEffectBy, b.minEffectBy);
  EXPECT_EQ(a.control, b.control);
  EXPECT_DOUBLE_EQ(a.nominal, b.nominal);
  EXPECT_EQ(a.runs, b.runs);
  EXPECT_EQ(a.falseAlarms, b.falseAlarms);
  EXPECT_EQ(a.notHeld, b.notHeld);
  EXPECT_DOUBLE_EQ(a.rate, b.rate);
  EXPECT_DOUBLE_EQ(a.interval.low, b.interval.low);
  EXPECT_DOUBLE_EQ(a.interval.high, b.interval.high);
  EXPECT_DOUBLE_EQ(a.driftMedian, b.driftMedian);
  EXPECT_DOUBLE_EQ(a.driftMax, b.driftMax);
  EXPECT_EQ(a.allowed, b.allowed);
  EXPECT_EQ(a.exceeded, b.exceeded);
}

TEST_F(CalibrationFileTest, WrittenAndLoadedBackUnchanged) {
  const std::string path = dir_ + "/sub/calibration.json";
  ASSERT_TRUE(writeCalibrationFile(file_, path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto loaded = loadCalibrationFile(path, "exp");
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_EQ(loaded->experiment, "exp");
  EXPECT_EQ(loaded->experimentFile, "/srv/exp.yaml");
  EXPECT_EQ(loaded->experimentSha256, file_.experimentSha256);
  EXPECT_EQ(loaded->created, "2024-05-01T10:00:00Z");
  EXPECT_EQ(loaded->runs, 2u);
  ASSERT_EQ(loaded->phases.size(), file_.phases.size());
  for (size_t i = 0; i < file_.phases.size(); ++i) expectSame(loaded->phases[i], file_.phases[i]);
  const Json doc = calibrationJson(file_);
  EXPECT_EQ(doc["schema"], "chaosd.calibration/v1");
  EXPECT_EQ(doc["withinAlpha"], true);
  EXPECT_EQ(doc["phases"][0]["test"], "exceedance");
  EXPECT_EQ(doc["phases"][0]["minAbsoluteNs"], 5000000);
}

TEST_F(CalibrationFileTest, UnreadableNotJsonOrAnotherExperimentIsRefusedNamingTheFile) {
  auto missing = loadCalibrationFile(dir_ + "/none.json", "exp");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find(dir_ + "/none.json"), std::string::npos);
  EXPECT_NE(missing.error().message().find("cannot be read"), std::string::npos);

  auto garbage = loadCalibrationFile(write("garbage.json", "{not json"), "exp");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message().find("garbage.json: is not JSON"), std::string::npos);

  ASSERT_TRUE(writeCalibrationFile(file_, dir_ + "/good.json").ok());
  auto other = loadCalibrationFile(dir_ + "/good.json", "another");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message().find("calibrates experiment 'exp', not 'another'"),
            std::string::npos)
      << other.error().message();
}

TEST_F(CalibrationFileTest, AnotherSchemaOrAMalformedFieldIsRefusedNamingIt) {
  const Json good = calibrationJson(file_);
  EXPECT_EQ(loadError(good), "");
  auto with = [&](const std::function<void(Json&)>& change) {
    Json doc = good;
    change(doc);
    return loadError(doc);
  };
  auto has = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  EXPECT_TRUE(has(with([](Json& d) { d["schema"] = "chaosd.calibration/v2"; }),
                  "schema 'chaosd.calibration/v2' is not chaosd.calibration/v1"));
  EXPECT_TRUE(has(with([](Json& d) { d.erase("schema"); }), "schema: missing"));
  EXPECT_TRUE(has(with([](Json& d) { d = Json::array(); }), "not a JSON object"));
  EXPECT_TRUE(has(with([](Json& d) { d.erase("experiment"); }), "experiment: missing"));
  EXPECT_TRUE(has(with([](Json& d) { d["runs"] = "many"; }), "runs: of the wrong type"));
  EXPECT_TRUE(has(with([](Json& d) { d["runs"] = -1; }), "runs: of the wrong type"));
  EXPECT_TRUE(has(with([](Json& d) { d.erase("phases"); }), "phases: missing or not a list"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0] = 3; }), "phases[0]: not an object"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][1].erase("falseAlarms"); }),
                  "phases[1].falseAlarms: missing"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["phase"] = "before"; }),
                  "phases[0].phase: 'before' is not during, after or both"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["test"] = "t"; }),
                  "phases[0].test: not blocks or exceedance"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["minEffectBy"] = "mean"; }),
                  "phases[0].minEffectBy: not estimate or bound"));
  // A file written before minEffectBy compared the minimum effect with the bound.
  {
    Json old = good;
    old["phases"][0].erase("minEffectBy");
    auto loaded = loadCalibrationFile(write("old.json", old.dump()), "exp");
    ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
    EXPECT_EQ(loaded->phases[0].minEffectBy, MinEffectBy::kBound);
  }
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["falseAlarms"] = 9; }),
                  "phases[0].falseAlarms: more than runs"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["interval"] = {0.1}; }),
                  "phases[0].interval: not [low, high]"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["drift"].erase("max"); }),
                  "phases[0].drift.max: missing"));
  EXPECT_TRUE(has(with([](Json& d) { d["phases"][0]["exceeded"] = 1; }),
                  "phases[0].exceeded: of the wrong type"));
}

TEST(CalibrationSha256, KnownDigests) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_FALSE(sha256File("/nonexistent/chaosd-calibration").ok());
}

}  // namespace
}  // namespace chaosd
