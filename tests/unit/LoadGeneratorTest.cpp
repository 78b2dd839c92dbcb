// The open-loop load: the phase figures from records (pure), the generator against a real
// server that stalls for a second (tests/data/http/stream-server.py /window), the achieved
// rate, and `load:` as the parser reads it.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "chaosd/engine/load/LoadCapacity.h"
#include "chaosd/engine/load/LoadGenerator.h"
#include "experiments/parser/ExperimentParser.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/ParseErrors.h"
#include "tests/support/PortPrintingServer.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

constexpr int64_t kMs = 1'000'000;

LoadRecord answered(int64_t intended, int64_t latency, long status = 200) {
  LoadRecord r;
  r.intended = intended;
  r.sent = intended;
  r.completed = intended + latency;
  r.status = status;
  return r;
}

TEST(LoadSummaryTest, FiguresOfAPhaseAndLittlesLaw) {
  LoadSpec spec;
  spec.rate = 10;
  spec.tolerance.successRate = Comparison{CompareOp::kGe, 0.9};
  spec.tolerance.latency = {{99, {CompareOp::kLe, 300e6}}};
  std::vector<LoadRecord> records;
  // 1 s at 10/s: 8 answered in 100 ms, one 503 in 100 ms, one dropped (never sent).
  for (int i = 0; i < 8; ++i) records.push_back(answered(i * 100 * kMs, 100 * kMs));
  records.push_back(answered(800 * kMs, 100 * kMs, 503));
  LoadRecord dropped;
  dropped.intended = 900 * kMs;
  dropped.completed = 900 * kMs;
  records.push_back(dropped);
  // Outside the window: not counted, except for the time it overlaps.
  records.push_back(answered(-50 * kMs, 100 * kMs));

  const LoadReport r = summariseLoad(spec, records, {{Phase::kDuring, 0, 1000 * kMs}}, 500 * kMs);
  ASSERT_EQ(r.phases.size(), 1u);
  const LoadPhase& p = r.phases[0];
  EXPECT_EQ(p.due, 10u);
  EXPECT_EQ(p.sent, 9u);
  EXPECT_EQ(p.ok, 8u);
  EXPECT_EQ(p.errors, 2u);
  EXPECT_DOUBLE_EQ(p.offeredRate, 10);
  EXPECT_DOUBLE_EQ(p.sentRate, 9);
  EXPECT_DOUBLE_EQ(p.throughput, 8);
  EXPECT_EQ(p.errorKinds.at("status 503"), 1u);
  EXPECT_EQ(p.errorKinds.at("dropped (maxInFlight)"), 1u);
  EXPECT_EQ(p.p50, 100 * kMs);
  EXPECT_EQ(p.max, 500 * kMs) << "a dropped request counts as the timeout";
  // L: nine requests in flight for 100 ms each, and 50 ms of the one due before the window.
  EXPECT_NEAR(p.inFlight, 0.95, 1e-9);
  // W: (9 x 100 ms + 500 ms) / 10 = 140 ms; λ·W = 1.4 (the dropped request was never in flight:
  // the law is about what entered the system, so the ratio shows the drop).
  EXPECT_NEAR(p.meanLatency, 0.14, 1e-9);
  EXPECT_NEAR(p.littleLw, 1.4, 1e-9);
  EXPECT_TRUE(p.judged);
  EXPECT_FALSE(p.held);
  ASSERT_EQ(p.reasons.size(), 2u);
  EXPECT_EQ(p.reasons[0], "load success rate 0.8 does not hold >= 0.9 (8 of 10 requests)");
  EXPECT_EQ(p.reasons[1], "load p99 latency 500ms does not hold <= 300ms");
}

int64_t seconds(double s) { return static_cast<int64_t>(s * 1e9); }

// 200 requests a second for 3 s against a server that stalls from 1 s to 2 s: the requests
// due during the stall wait for its end, and each counts its wait from its due time, so the
// stall is in the percentiles (p99 near 1 s); the arrivals keep their rate through it.
TEST(LoadGeneratorTest, AStalledServerShowsInThePercentilesAndTheRateHolds) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  LoadSpec spec;
  spec.name = "stall";
  spec.http.url = server.url("/window?at=1000&for=1000");
  spec.rate = 200;
  spec.timeout = std::chrono::seconds(5);
  LoadGenerator gen(spec);
  ASSERT_TRUE(gen.start().ok());
  gen.phaseStarted(Phase::kDuring);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the load's window
  gen.phaseEnded(Phase::kDuring);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last answers come in
  gen.stop();
  const LoadReport r = gen.report();
  ASSERT_EQ(r.phases.size(), 1u);
  const LoadPhase& p = r.phases[0];
  EXPECT_NEAR(p.sentRate, 200, 2) << "within 1% of the asked rate";
  EXPECT_EQ(p.sent, p.due) << "nothing dropped";
  EXPECT_EQ(p.ok, p.due) << (p.errorKinds.empty() ? "" : p.errorKinds.begin()->first);
  EXPECT_LT(p.p50, seconds(0.2));
  EXPECT_GT(p.p90, seconds(0.5)) << "a third of the requests were due in the stall";
  EXPECT_GT(p.p99, seconds(0.9));
  EXPECT_LT(p.p99, seconds(1.5));
  EXPECT_GT(p.max, seconds(0.95));
  // Little's law over the window: L measured directly against λ·W.
  EXPECT_GT(p.inFlight, 25);
  EXPECT_NEAR(p.littleRatio, 1.0, 0.1) << "L " << p.inFlight << ", λW " << p.littleLw;
}

// Streamed answers (text/event-stream): the first event of each (TTFT) and the gaps between
// events (TPOT), from the intended send time, against a server whose delays are known (the
// first event 150 ms after the request, then one every 20 ms); a bound on them is judged per
// phase like the latency's. A plain answer has no stream figures.
TEST(LoadGeneratorTest, StreamedAnswersGiveTimeToFirstEventAndGaps) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  LoadSpec spec;
  spec.http.url = server.url("/sse?first=150&gap=20&n=6");
  spec.rate = 20;
  spec.tolerance.stream = {{StreamMetric::kFirstEvent, 99, {CompareOp::kLe, 50e6}}};
  LoadGenerator gen(spec);
  ASSERT_TRUE(gen.start().ok());
  gen.phaseStarted(Phase::kDuring);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  gen.phaseEnded(Phase::kDuring);
  gen.stop();
  const LoadReport r = gen.report();
  ASSERT_EQ(r.phases.size(), 1u);
  const LoadPhase& p = r.phases[0];
  EXPECT_EQ(p.ok, p.due) << (p.errorKinds.empty() ? "" : p.errorKinds.begin()->first);
  EXPECT_EQ(p.streamed, p.due);
  EXPECT_GE(p.firstEventP50, seconds(0.15));
  EXPECT_LT(p.firstEventP50, seconds(0.35));
  EXPECT_GE(p.eventGapP50, seconds(0.01));
  EXPECT_LT(p.eventGapP50, seconds(0.05));
  EXPECT_GT(p.eventRateP50, 20);  // 5 gaps of 20 ms: 50 events a second
  EXPECT_LT(p.eventRateP50, 100);
  EXPECT_LT(p.firstByteP50, p.firstEventP50) << "the stream's opening comment comes first";
  EXPECT_TRUE(p.judged);
  EXPECT_FALSE(p.held);
  ASSERT_EQ(p.reasons.size(), 1u);
  EXPECT_EQ(p.reasons[0].rfind("load p99 firstEvent ", 0), 0u) << p.reasons[0];
  for (const auto& rec : gen.records()) {
    if (rec.status != 200) continue;
    EXPECT_EQ(rec.events, 6u);
    EXPECT_EQ(rec.gaps.size(), 5u);
  }

  LoadSpec plainSpec;
  plainSpec.http.url = server.url("/plain");
  plainSpec.rate = 20;
  LoadGenerator plain(plainSpec);
  ASSERT_TRUE(plain.start().ok());
  plain.phaseStarted(Phase::kDuring);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  plain.phaseEnded(Phase::kDuring);
  plain.stop();
  const LoadReport pr = plain.report();
  EXPECT_GT(pr.phases[0].ok, 5u);
  EXPECT_EQ(pr.phases[0].streamed, 0u);
  EXPECT_EQ(pr.phases[0].firstEventP99, 0);
}

ParseResult parse(const std::string& load) {
  const std::string text =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: load}\n"
      "steadyState: {probes: []}\nmethod: [{name: w, pause: 1s}]\nload:\n" +
      load;
  ParseOptions options;
  options.registry = &testing::builtinFaults();
  return parseExperimentText(text, "exp.yaml", options);
}

using testing::errorsOf;

TEST(LoadParseTest, ReadsARateOrStepsAndTheRequest) {
  auto r = parse(
      "  http: {url: \"http://127.0.0.1:8000/v1/completions\", method: POST, body: '{}', "
      "headers: {Content-Type: application/json}}\n"
      "  rate: 50/s\n  timeout: 2s\n  maxInFlight: 64\n"
      "  tolerance: {status: 200, successRate: \">= 99%\", latency: {p99: \"<= 1s\"}}\n");
  ASSERT_TRUE(r.ok()) << errorsOf(r);
  ASSERT_TRUE(r.experiment->load);
  const LoadSpec& l = *r.experiment->load;
  EXPECT_EQ(l.rate, 50);
  EXPECT_EQ(l.http.method, "POST");
  EXPECT_EQ(l.http.headers.at("Content-Type"), "application/json");
  EXPECT_EQ(l.timeout, std::chrono::seconds(2));
  EXPECT_EQ(l.maxInFlight, 64u);
  ASSERT_EQ(l.tolerance.latency.size(), 1u);

  auto stream = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 5\n"
      "  tolerance: {firstEvent: {p99: \"<= 500ms\"}, eventGap: {p50: \"<= 50ms\"}}\n");
  ASSERT_TRUE(stream.ok()) << errorsOf(stream);
  ASSERT_EQ(stream.experiment->load->tolerance.stream.size(), 2u);
  EXPECT_EQ(stream.experiment->load->tolerance.stream[0].metric, StreamMetric::kFirstEvent);

  auto steps = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n"
      "  steps: [{rate: 10, duration: 5s}, {rate: 40, duration: 5s}]\n");
  ASSERT_TRUE(steps.ok()) << errorsOf(steps);
  ASSERT_EQ(steps.experiment->load->steps.size(), 2u);
  EXPECT_EQ(steps.experiment->load->steps[1].rate, 40);
}

TEST(LoadParseTest, RefusesWhatTheGeneratorCouldNotRun) {
  auto both = parse("  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 5\n  steps: []\n");
  EXPECT_NE(errorsOf(both).find("rate and steps are both given"), std::string::npos)
      << errorsOf(both);
  auto none = parse("  http: {url: \"http://127.0.0.1:8000/\"}\n");
  EXPECT_NE(errorsOf(none).find("no arrival rate"), std::string::npos) << errorsOf(none);
  auto bad = parse(
      "  http: {url: \"ftp://x/\"}\n  rate: fast\n  maxInFlight: 0\n"
      "  tolerance: {body: ok}\n");
  const std::string e = errorsOf(bad);
  EXPECT_NE(e.find("exp.yaml:7:15: load.http.url"), std::string::npos) << e;
  EXPECT_NE(e.find("exp.yaml:8:9: load.rate: 'fast' is not an arrival rate"), std::string::npos)
      << e;
  EXPECT_NE(e.find("load.maxInFlight"), std::string::npos) << e;
  EXPECT_NE(e.find("load.tolerance.body"), std::string::npos) << e;
}

TEST(LoadParseTest, ReadsACapacityRampAndRefusesOneThatCannotBreak) {
  auto r = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 20\n"
      "  tolerance: {latency: {p99: \"<= 250ms\"}}\n"
      "  capacity: {from: 10, step: 5/s, max: 42, every: 2s}\n");
  ASSERT_TRUE(r.ok()) << errorsOf(r);
  const auto& c = r.experiment->load->capacity;
  ASSERT_TRUE(c);
  EXPECT_EQ(c->from, 10);
  EXPECT_EQ(c->step, 5);
  EXPECT_EQ(c->every, std::chrono::seconds(2));
  EXPECT_EQ(c->cooldown, std::chrono::seconds(2)) << "the step's length by default";
  EXPECT_EQ(c->rates(), (std::vector<double>{10, 15, 20, 25, 30, 35, 40}));

  auto byFrom = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 20\n"
      "  tolerance: {successRate: \">= 99%\"}\n"
      "  capacity: {from: 50, max: 200, cooldown: 500ms}\n");
  ASSERT_TRUE(byFrom.ok()) << errorsOf(byFrom);
  EXPECT_EQ(byFrom.experiment->load->capacity->rates(), (std::vector<double>{50, 100, 150, 200}));
  EXPECT_EQ(byFrom.experiment->load->capacity->cooldown, std::chrono::milliseconds(500));

  // Nothing to break: the ramp would run to max and measure nothing.
  auto noTolerance = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 20\n"
      "  capacity: {from: 10, max: 100}\n");
  EXPECT_NE(errorsOf(noTolerance)
                .find("exp.yaml:9:13: load.capacity: a capacity ramp without a load tolerance"),
            std::string::npos)
      << errorsOf(noTolerance);
  auto bad = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 20\n"
      "  tolerance: {latency: {p99: \"<= 1s\"}}\n"
      "  capacity: {from: 10, max: 5, every: 100ms, speed: 3}\n");
  const std::string e = errorsOf(bad);
  EXPECT_NE(e.find("load.capacity.max: max is below from"), std::string::npos) << e;
  EXPECT_NE(e.find("load.capacity.every: a step of 100ms"), std::string::npos) << e;
  EXPECT_NE(e.find("load.capacity.speed"), std::string::npos) << e;
  auto tooMany = parse(
      "  http: {url: \"http://127.0.0.1:8000/\"}\n  rate: 20\n"
      "  tolerance: {latency: {p99: \"<= 1s\"}}\n"
      "  capacity: {from: 1, max: 1000}\n");
  EXPECT_NE(errorsOf(tooMany).find("a ramp of more than 100 steps"), std::string::npos)
      << errorsOf(tooMany);
}

// The ramp against a server that does 20 ms of work a request, one at a time (capacity 50/s
// less its own overhead): the steps below it hold the p99 bound, the ramp breaks past it, and
// μ, the throughput of the last step that held, is near 50/s. One-second steps let a queue of
// (λ - 50) a second build up: 250 ms of it at 60/s, so the break lands at 60 or 70/s.
TEST(LoadCapacityTest, TheRampStopsWhereTheToleranceBreaksAndMeasuresMu) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  LoadSpec spec;
  spec.http.url = server.url("/serial?ms=20");
  spec.rate = 10;
  spec.timeout = std::chrono::seconds(5);
  spec.tolerance.latency = {{99, {CompareOp::kLe, 250e6}}};
  spec.capacity.emplace();
  spec.capacity->from = 10;
  spec.capacity->step = 10;
  spec.capacity->max = 150;
  spec.capacity->every = std::chrono::seconds(1);
  std::vector<double> told;
  auto wait = [](Duration d) {
    std::this_thread::sleep_for(d);
    return true;
  };
  auto c = measureCapacity(spec, wait, [&](const LoadCapacityStep& s) { told.push_back(s.rate); });
  ASSERT_TRUE(c.ok()) << c.error().describe();
  ASSERT_TRUE(c->brokeAt) << "no step broke up to 150/s";
  ASSERT_TRUE(c->capacity);
  EXPECT_GE(*c->brokeAt, 40) << "broke below a third of the way to saturation";
  EXPECT_LE(*c->brokeAt, 100);
  EXPECT_GT(*c->capacity, 25);
  EXPECT_LT(*c->capacity, 75);
  EXPECT_EQ(c->steps.size(), told.size());
  ASSERT_GE(c->steps.size(), 2u);
  EXPECT_EQ(c->steps.back().rate, *c->brokeAt);
  EXPECT_FALSE(c->steps.back().figures.held);
  for (size_t i = 0; i + 1 < c->steps.size(); ++i) {
    const auto& f = c->steps[i].figures;
    EXPECT_TRUE(f.held) << c->steps[i].rate;
    EXPECT_NEAR(f.sentRate, c->steps[i].rate, c->steps[i].rate * 0.15) << c->steps[i].rate;
  }
  EXPECT_DOUBLE_EQ(*c->capacity, c->steps[c->steps.size() - 2].figures.throughput);

  // Utilisation of a phase at 20/s against that μ.
  LoadReport report;
  LoadPhase p;
  p.offeredRate = 20;
  report.phases.push_back(p);
  report.capacity = *c;
  setUtilisation(report);
  ASSERT_TRUE(report.phases[0].utilisation);
  EXPECT_DOUBLE_EQ(*report.phases[0].utilisation, 20 / *c->capacity);
}

// A stop during the ramp ends it at once: no step after it, `stopped` set.
TEST(LoadCapacityTest, AStopDuringTheRampEndsIt) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  LoadSpec spec;
  spec.http.url = server.url("/plain");
  spec.rate = 10;
  spec.tolerance.successRate = Comparison{CompareOp::kGe, 0.99};
  spec.capacity.emplace();
  spec.capacity->from = 10;
  spec.capacity->step = 10;
  spec.capacity->max = 100;
  spec.capacity->every = std::chrono::seconds(1);
  int waits = 0;
  auto wait = [&](Duration d) {
    if (++waits == 2) return false;  // Ctrl-C during the second step
    std::this_thread::sleep_for(d);
    return true;
  };
  auto c = measureCapacity(spec, wait, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->stopped);
  EXPECT_EQ(c->steps.size(), 1u);
  EXPECT_FALSE(c->brokeAt);
}

// Through `chaosctl run`: the ramp runs before the baseline, its steps are printed as they are
// judged, and the report carries μ, the steps and each phase's ρ = λ/μ (JSON, HTML, Markdown).
TEST(LoadCapacityTest, ChaosctlRunReportsTheRampMuAndUtilisation) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  const std::string dir = testing::makeTempDir("chaosd-capacity");
  testing::writeFile(dir + "/exp.yaml",
                     "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: capacity}\n"
                     "steadyState: {baseline: {duration: 1s}, recovery: {duration: 1s}, "
                     "probes: []}\n"
                     "load:\n  http: {url: \"" +
                         server.url("/serial?ms=20") +
                         "\"}\n  rate: 10\n"
                         "  tolerance: {latency: {p99: \"<= 250ms\"}}\n"
                         "  capacity: {from: 20, step: 20, max: 200, every: 1s, cooldown: 500ms}\n"
                         "method: [{name: wait, pause: 1s}]\n"
                         "report: {formats: [json, html, md]}\n");
  int st = -1;
  const std::string out =
      testing::runCommand(std::string(CHAOSCTL_PATH) + " run --state-dir " + dir +
                              "/state --report-dir " + dir + "/reports " + dir + "/exp.yaml 2>&1",
                          &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("capacity step 20/s: "), std::string::npos) << out;
  EXPECT_NE(out.find("capacity μ ≈ "), std::string::npos) << out;
  EXPECT_LT(out.find("capacity μ ≈ "), out.find("== baseline")) << "the ramp before the baseline";
  const auto runDir = testing::runDirIn(dir + "/reports");
  const auto report = testing::readReport(runDir);
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& c = report["load"]["capacity"];
  ASSERT_TRUE(c["capacity"].is_number()) << c.dump();
  ASSERT_TRUE(c["brokeAt"].is_number()) << c.dump();
  const double mu = c["capacity"].get<double>();
  EXPECT_GT(mu, 15);
  EXPECT_LT(mu, 100);
  EXPECT_GE(c["steps"].size(), 2u);
  for (const auto& p : report["load"]["phases"]) {
    ASSERT_TRUE(p.contains("utilisation")) << p.dump();
    EXPECT_NEAR(p["utilisation"].get<double>(), p["offeredRate"].get<double>() / mu, 1e-9);
  }
  EXPECT_EQ(report["experiment"]["load"]["capacity"]["every"], "1s")
      << report["experiment"]["load"].dump();
  const std::string html = testing::readFile((runDir / "report.html").string());
  EXPECT_NE(html.find("<h3>Capacity</h3>"), std::string::npos);
  EXPECT_NE(html.find("ρ = λ/μ"), std::string::npos);
  const std::string md = testing::readFile((runDir / "summary.md").string());
  EXPECT_NE(md.find("#### Capacity"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chaosd
