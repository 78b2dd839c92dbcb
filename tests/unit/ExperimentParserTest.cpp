// The experiment parser from strings: what a valid experiment turns into, variable
// substitution, that every error of a file is reported, the size/depth/node limits and the
// raw-text checks. The bad-config corpus (InvalidCorpusTest) covers one rule per file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"
#include "tests/support/BuiltinFaults.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using chaosd::testing::builtinFaults;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ParseResult parse(std::string_view text, std::map<std::string, std::string> vars = {},
                  ParseLimits limits = {}) {
  ParseOptions options;
  options.registry = &builtinFaults();
  options.vars = std::move(vars);
  options.limits = limits;
  return parseExperimentText(text, "exp.yaml", options);
}

std::vector<std::string> lines(const ParseResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.str());
  return out;
}

std::string joined(const ParseResult& r) {
  std::string out;
  for (const auto& l : lines(r)) out += l + "\n";
  return out;
}

// Head and probe shared by the smaller tests; each adds its own method.
constexpr std::string_view kHead =
    "apiVersion: chaosd/v1\n"
    "kind: Experiment\n"
    "metadata: {name: small}\n"
    "steadyState:\n"
    "  probes:\n"
    "    - {name: port, tcp: {host: 127.0.0.1, port: 80}}\n";

std::string withMethod(std::string_view method) {
  return std::string(kHead) + "method:\n" + std::string(method);
}

// ---- a full experiment ----------------------------------------------------------------

constexpr std::string_view kFull = R"yaml(apiVersion: chaosd/v1
kind: Experiment
metadata:
  name: api-survives-db-latency
  title: The API survives database trouble
  description: A longer text.
  tags: [gameday, network]
  labels: {team: payments, tier: "1"}
config:
  api_url: http://127.0.0.1:8080
targets:
  api:
    process: {name: api-server, user: www-data}
    mode: percent(50%)
    seed: 7
  workers:
    process: {cmdline: "^worker ", cgroup: /system.slice/worker.service}
    mode: count(3)
    empty: skip
  one-worker:
    process: {pid: 1234}
    mode: one
  app:
    exec: {argv: [/usr/bin/app, --port, "8081"], env: {LOG: debug}, cwd: /srv}
  db-net:
    interface: {name: veth-db, netns: app}
  pid-net:
    interface: {name: eth0, netns: {pid: 42}}
steadyState:
  baseline: {duration: 10s}
  recovery: {duration: 1m30s}
  probes:
    - name: api-health
      http:
        url: "${api_url}/health"
        method: POST
        headers: {X-Probe: chaosd}
        body: "{}"
        tlsVerify: false
      timeout: 2s
      every: 250ms
      tolerance:
        status: 200
        body: ok
        json: {"/status": [ok, degraded], "/depth": "0..10"}
        successRate: ">= 0.99"
        latency: {p95: "<= 300ms", p99.9: "< 1.5s"}
        baseline: {alpha: 0.05, quantile: 0.9}
      phases: [before, during]
      abort: true
    - name: api-port
      tcp: {host: "::1", port: 8080}
      tolerance: {successRate: "> 95%"}
    - name: queue
      command: {argv: [/usr/bin/queue-check], env: {Q: orders}}
      tolerance: {exitCode: [0, 1], stdout: "^ok$"}
    - name: workers-up
      process: {name: worker}
      tolerance: {count: "2..8", running: true}
    - name: errors
      prometheus: {url: "http://127.0.0.1:9090", query: "sum(errors)"}
      tolerance: {value: {regex: "^0$"}}
method:
  - name: warmup
    pause: 10s
  - name: db-trouble
    parallel:
      - name: db-latency
        fault: network.delay
        target: db-net
        args:
          delay: 200ms
          jitter: 1.5ms
          loss: 25%
          to: {cidr: [10.0.0.0/24, "fd00:0:0::/64", 10.0.0.2], ports: [5432, 6000-6010]}
        duration: 1m
      - name: slow-link
        fault: network.bandwidth
        target: pid-net
        args: {rate: 10mbit, burst: 32KiB, latency: 50ms}
        duration: 30s
  - name: kill-api
    fault: process.kill
    target: api
    args: {signal: TERM}
    at: 20s
  - name: settle
    pause: 5s
    after: kill-api
  - name: fsync-fails
    fault: syscall.error
    target: app
    args: {syscalls: fsync, probability: 0.5}
    duration: 10s
rollbacks:
  - name: restart
    command: [/usr/bin/systemctl, start, api-server]
    env: {A: b}
    timeout: 10s
guardrails: {maxDuration: 10m, maxTargets: 3, maxPercent: 50%, maxFaults: 5, allowSsh: true}
report: {formats: [json, md], dir: /tmp/reports}
schedule: {cron: "0 3 * * tue", timezone: Europe/Berlin, window: "02:00-05:00", maxRuns: 4}
)yaml";

class ExperimentParserFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ParseResult r = parse(kFull);
    ASSERT_TRUE(r.ok()) << joined(r);
    ASSERT_TRUE(r.experiment.has_value());
    exp_ = std::move(*r.experiment);
  }
  const ProbeSpec& probe(size_t i) const { return exp_.steadyState.probes.at(i); }
  Experiment exp_;
};

TEST_F(ExperimentParserFullTest, MetadataConfigAndEnvelope) {
  EXPECT_EQ(exp_.file, "exp.yaml");
  EXPECT_EQ(exp_.apiVersion, "chaosd/v1");
  EXPECT_EQ(exp_.metadata.name, "api-survives-db-latency");
  EXPECT_EQ(exp_.metadata.title, "The API survives database trouble");
  EXPECT_EQ(exp_.metadata.description, "A longer text.");
  EXPECT_THAT(exp_.metadata.tags, ElementsAre("gameday", "network"));
  EXPECT_EQ(exp_.metadata.labels.at("tier"), "1");
  EXPECT_EQ(exp_.config.at("api_url").value, "http://127.0.0.1:8080");
  EXPECT_FALSE(exp_.config.at("api_url").secret);
}

TEST_F(ExperimentParserFullTest, Targets) {
  ASSERT_EQ(exp_.targets.size(), 6u);
  const TargetSpec* api = exp_.findTarget("api");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->kind, TargetKind::kProcess);
  EXPECT_EQ(api->process.name, "api-server");
  EXPECT_EQ(api->process.user, "www-data");
  EXPECT_EQ(api->selection.mode, SelectionMode::kPercent);
  EXPECT_DOUBLE_EQ(api->selection.fraction, 0.5);
  EXPECT_EQ(api->selection.seed, 7u);
  EXPECT_EQ(api->pos.line, 13);  // the target's mapping starts at its first key

  const TargetSpec* workers = exp_.findTarget("workers");
  ASSERT_NE(workers, nullptr);
  EXPECT_EQ(workers->process.cmdline, "^worker ");
  EXPECT_EQ(workers->process.cgroup, "/system.slice/worker.service");
  EXPECT_EQ(workers->selection.mode, SelectionMode::kCount);
  EXPECT_EQ(workers->selection.count, 3u);
  EXPECT_FALSE(workers->selection.seed.has_value());
  EXPECT_TRUE(workers->emptySkip);

  const TargetSpec* one = exp_.findTarget("one-worker");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->process.pid, 1234);
  EXPECT_EQ(one->selection.mode, SelectionMode::kOne);

  const TargetSpec* app = exp_.findTarget("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->kind, TargetKind::kExec);
  EXPECT_THAT(app->exec.argv, ElementsAre("/usr/bin/app", "--port", "8081"));
  EXPECT_EQ(app->exec.env.at("LOG"), "debug");
  EXPECT_EQ(app->exec.cwd, "/srv");

  const TargetSpec* db = exp_.findTarget("db-net");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->kind, TargetKind::kInterface);
  EXPECT_EQ(db->interface.name, "veth-db");
  EXPECT_EQ(db->interface.netns.name, "app");
  EXPECT_EQ(db->interface.netns.nsPath(), "/run/netns/app");

  const TargetSpec* pidNet = exp_.findTarget("pid-net");
  ASSERT_NE(pidNet, nullptr);
  EXPECT_EQ(pidNet->interface.netns.pid, 42);
  EXPECT_EQ(pidNet->interface.netns.nsPath(), "/proc/42/ns/net");
  EXPECT_EQ(exp_.findTarget("nope"), nullptr);
}

TEST_F(ExperimentParserFullTest, SteadyStateWindowsAndHttpProbe) {
  EXPECT_EQ(exp_.steadyState.baseline, 10s);
  EXPECT_EQ(exp_.steadyState.recovery, 90s);
  ASSERT_EQ(exp_.steadyState.probes.size(), 5u);
  const ProbeSpec& p = probe(0);
  EXPECT_EQ(p.name, "api-health");
  EXPECT_EQ(p.kind, ProbeKind::kHttp);
  EXPECT_EQ(p.http.url, "http://127.0.0.1:8080/health");  // ${api_url} substituted
  EXPECT_EQ(p.http.method, "POST");
  EXPECT_EQ(p.http.headers.at("X-Probe"), "chaosd");
  EXPECT_EQ(p.http.body, "{}");
  EXPECT_FALSE(p.http.tlsVerify);
  EXPECT_EQ(p.timeout, 2s);
  EXPECT_EQ(p.every, 250ms);
  EXPECT_THAT(p.phases, ElementsAre(Phase::kBefore, Phase::kDuring));
  EXPECT_TRUE(p.abort);
}

TEST_F(ExperimentParserFullTest, ToleranceForms) {
  const Tolerance& t = probe(0).tolerance;
  // A scalar is equality.
  ASSERT_TRUE(t.status.has_value());
  EXPECT_EQ(t.status->kind, ValueMatch::Kind::kEquals);
  EXPECT_THAT(t.status->values, ElementsAre("200"));
  EXPECT_EQ(t.status->describe(), "== 200");
  EXPECT_EQ(t.body, "ok");
  // A list is a set; "a..b" an inclusive range.
  ASSERT_EQ(t.json.size(), 2u);
  EXPECT_EQ(t.json.at("/status").kind, ValueMatch::Kind::kOneOf);
  EXPECT_THAT(t.json.at("/status").values, ElementsAre("ok", "degraded"));
  EXPECT_EQ(t.json.at("/depth").kind, ValueMatch::Kind::kRange);
  EXPECT_DOUBLE_EQ(t.json.at("/depth").low, 0);
  EXPECT_DOUBLE_EQ(t.json.at("/depth").high, 10);
  EXPECT_EQ(t.json.at("/depth").describe(), "in 0..10");
  // successRate: an operator and a fraction.
  ASSERT_TRUE(t.successRate.has_value());
  EXPECT_EQ(t.successRate->op, CompareOp::kGe);
  EXPECT_DOUBLE_EQ(t.successRate->value, 0.99);
  EXPECT_TRUE(t.successRate->holds(0.995));
  EXPECT_FALSE(t.successRate->holds(0.98));
  // Latency bounds in nanoseconds.
  ASSERT_EQ(t.latency.size(), 2u);
  EXPECT_DOUBLE_EQ(t.latency[0].percentile, 95);
  EXPECT_EQ(t.latency[0].bound.op, CompareOp::kLe);
  EXPECT_DOUBLE_EQ(t.latency[0].bound.value, 300e6);
  EXPECT_DOUBLE_EQ(t.latency[1].percentile, 99.9);
  EXPECT_EQ(t.latency[1].bound.op, CompareOp::kLt);
  EXPECT_DOUBLE_EQ(t.latency[1].bound.value, 1.5e9);
  // The statistical mode.
  ASSERT_TRUE(t.baseline.has_value());
  EXPECT_DOUBLE_EQ(t.baseline->alpha, 0.05);
  EXPECT_DOUBLE_EQ(t.baseline->quantile, 0.9);

  // A percentage in a comparison is a fraction too.
  ASSERT_TRUE(probe(1).tolerance.successRate.has_value());
  EXPECT_EQ(probe(1).tolerance.successRate->op, CompareOp::kGt);
  EXPECT_DOUBLE_EQ(probe(1).tolerance.successRate->value, 0.95);
}

TEST_F(ExperimentParserFullTest, OtherProbeKinds) {
  EXPECT_EQ(probe(1).kind, ProbeKind::kTcp);
  EXPECT_EQ(probe(1).tcp.host, "::1");
  EXPECT_EQ(probe(1).tcp.port, 8080);
  EXPECT_EQ(probe(1).timeout, 1s);  // defaults
  EXPECT_EQ(probe(1).every, 1s);
  EXPECT_THAT(probe(1).phases, ElementsAre(Phase::kBefore, Phase::kDuring, Phase::kAfter));
  EXPECT_FALSE(probe(1).abort);

  EXPECT_EQ(probe(2).kind, ProbeKind::kCommand);
  EXPECT_THAT(probe(2).command.argv, ElementsAre("/usr/bin/queue-check"));
  EXPECT_EQ(probe(2).command.env.at("Q"), "orders");
  ASSERT_TRUE(probe(2).tolerance.exitCode.has_value());
  EXPECT_EQ(probe(2).tolerance.exitCode->describe(), "in {0, 1}");
  EXPECT_EQ(probe(2).tolerance.stdoutRegex, "^ok$");

  EXPECT_EQ(probe(3).kind, ProbeKind::kProcess);
  EXPECT_EQ(probe(3).process.selector.name, "worker");
  ASSERT_TRUE(probe(3).tolerance.count.has_value());
  EXPECT_EQ(probe(3).tolerance.count->kind, ValueMatch::Kind::kRange);
  EXPECT_EQ(probe(3).tolerance.running, true);

  EXPECT_EQ(probe(4).kind, ProbeKind::kPrometheus);
  EXPECT_EQ(probe(4).prometheus.url, "http://127.0.0.1:9090");
  EXPECT_EQ(probe(4).prometheus.query, "sum(errors)");
  ASSERT_TRUE(probe(4).tolerance.value.has_value());
  EXPECT_EQ(probe(4).tolerance.value->kind, ValueMatch::Kind::kRegex);
  EXPECT_EQ(probe(4).tolerance.value->regex, "^0$");
}

TEST_F(ExperimentParserFullTest, Steps) {
  ASSERT_EQ(exp_.method.size(), 5u);
  const StepSpec& warmup = exp_.method[0];
  EXPECT_EQ(warmup.kind, StepKind::kPause);
  EXPECT_EQ(warmup.duration, 10s);

  const StepSpec& group = exp_.method[1];
  EXPECT_EQ(group.kind, StepKind::kParallel);
  ASSERT_EQ(group.parallel.size(), 2u);
  const StepSpec& delay = group.parallel[0];
  EXPECT_EQ(delay.name, "db-latency");
  EXPECT_EQ(delay.kind, StepKind::kFault);
  EXPECT_EQ(delay.fault, "network.delay");
  EXPECT_EQ(delay.target, "db-net");
  EXPECT_EQ(delay.duration, 1min);
  EXPECT_EQ(delay.pos.line, 68);
  EXPECT_EQ(delay.faultPos.line, 69);
  EXPECT_EQ(delay.targetPos.line, 70);

  const StepSpec& kill = exp_.method[2];
  EXPECT_EQ(kill.fault, "process.kill");
  EXPECT_EQ(kill.at, 20s);
  EXPECT_FALSE(kill.duration.has_value());  // an instantaneous fault needs none

  const StepSpec& settle = exp_.method[3];
  EXPECT_EQ(settle.after, "kill-api");
  EXPECT_EQ(settle.afterPos.line, 89);
  EXPECT_EQ(settle.afterPos.column, 12);
  EXPECT_FALSE(settle.at.has_value());
}

TEST_F(ExperimentParserFullTest, ArgsAreNormalised) {
  const nlohmann::json& a = exp_.method[1].parallel[0].args;
  EXPECT_EQ(a["delay"], 200'000'000);  // durations in ns
  EXPECT_EQ(a["jitter"], 1'500'000);
  EXPECT_DOUBLE_EQ(a["loss"].get<double>(), 0.25);  // percentages as fractions
  EXPECT_EQ(a["to"]["cidr"], nlohmann::json({"10.0.0.0/24", "fd00::/64", "10.0.0.2/32"}));
  EXPECT_EQ(a["to"]["ports"],
            nlohmann::json::parse(R"([{"first":5432,"last":5432},{"first":6000,"last":6010}])"));
  // Defaults are filled in.
  EXPECT_EQ(a["protocol"], "all");
  EXPECT_EQ(a["direction"], "egress");
  EXPECT_EQ(a["limit"], 1000);
  EXPECT_EQ(a["backend"], "auto");
  EXPECT_FALSE(a.contains("rate"));

  const nlohmann::json& bw = exp_.method[1].parallel[1].args;
  EXPECT_EQ(bw["rate"], 10'000'000);  // bits per second
  EXPECT_EQ(bw["burst"], 32 * 1024);  // bytes
  EXPECT_EQ(bw["latency"], 50'000'000);

  EXPECT_EQ(exp_.method[2].args["signal"], 15);  // the signal's number

  const nlohmann::json& sys = exp_.method[4].args;
  EXPECT_EQ(sys["syscalls"], nlohmann::json({"fsync"}));  // a scalar is a list of one
  EXPECT_DOUBLE_EQ(sys["probability"].get<double>(), 0.5);
  EXPECT_EQ(sys["errno"], "EIO");
}

TEST_F(ExperimentParserFullTest, RollbacksGuardrailsReportSchedule) {
  ASSERT_EQ(exp_.rollbacks.size(), 1u);
  EXPECT_EQ(exp_.rollbacks[0].name, "restart");
  EXPECT_THAT(exp_.rollbacks[0].command, ElementsAre("/usr/bin/systemctl", "start", "api-server"));
  EXPECT_EQ(exp_.rollbacks[0].env.at("A"), "b");
  EXPECT_EQ(exp_.rollbacks[0].timeout, 10s);

  EXPECT_EQ(exp_.guardrails.maxDuration, 10min);
  EXPECT_EQ(exp_.guardrails.maxTargets, 3u);
  EXPECT_DOUBLE_EQ(exp_.guardrails.maxPercent, 0.5);
  EXPECT_EQ(exp_.guardrails.maxFaults, 5u);
  EXPECT_TRUE(exp_.guardrails.allowSsh);

  EXPECT_THAT(exp_.report.formats, ElementsAre("json", "md"));
  EXPECT_EQ(exp_.report.dir, "/tmp/reports");

  ASSERT_TRUE(exp_.schedule.has_value());
  EXPECT_EQ(exp_.schedule->cron, "0 3 * * tue");
  EXPECT_EQ(exp_.schedule->timezone, "Europe/Berlin");
  ASSERT_TRUE(exp_.schedule->window.has_value());
  EXPECT_EQ(exp_.schedule->window->first, "02:00");
  EXPECT_EQ(exp_.schedule->window->second, "05:00");
  EXPECT_EQ(exp_.schedule->maxRuns, 4u);
}

TEST(ExperimentParserTest, DefaultsOfAMinimalExperiment) {
  ParseResult r = parse(withMethod("  - {name: wait, pause: 1s}\n"));
  ASSERT_TRUE(r.ok()) << joined(r);
  const Experiment& e = *r.experiment;
  EXPECT_TRUE(e.targets.empty());
  EXPECT_TRUE(e.rollbacks.empty());
  EXPECT_FALSE(e.schedule.has_value());
  EXPECT_EQ(e.steadyState.baseline, 5s);
  EXPECT_EQ(e.steadyState.recovery, 5s);
  EXPECT_EQ(e.guardrails.maxDuration, 1h);
  EXPECT_EQ(e.guardrails.maxTargets, 10u);
  EXPECT_DOUBLE_EQ(e.guardrails.maxPercent, 1.0);
  EXPECT_EQ(e.guardrails.maxFaults, 50u);
  EXPECT_FALSE(e.guardrails.allowSsh);
  EXPECT_THAT(e.report.formats, ElementsAre("json", "junit", "html", "md"));
  EXPECT_EQ(e.report.dir, "./chaos-reports");
}

// The statistical mode's decision: minimum effect as a share or a time, a control, the test.
TEST(ExperimentParserTest, BaselineMinEffectControlAndTest) {
  const std::string text =
      "apiVersion: chaosd/v1\n"
      "kind: Experiment\n"
      "metadata: {name: small}\n"
      "steadyState:\n"
      "  probes:\n"
      "    - name: a\n"
      "      tcp: {host: 127.0.0.1, port: 80}\n"
      "      phases: [during, after]\n"
      "      tolerance: {baseline: {minEffect: 20%, minEffectBy: bound, control: b, test: "
      "exceedance}}\n"
      "    - name: b\n"
      "      tcp: {host: 127.0.0.1, port: 81}\n"
      "      tolerance: {baseline: {minEffect: 5ms}}\n"
      "    - name: c\n"
      "      tcp: {host: 127.0.0.1, port: 82}\n"
      "      tolerance: {baseline: {}}\n"
      "method:\n"
      "  - {name: wait, pause: 1s}\n";
  ParseResult r = parse(text);
  ASSERT_TRUE(r.ok()) << joined(r);
  const auto& probes = r.experiment->steadyState.probes;
  ASSERT_EQ(probes.size(), 3u);
  // With a control, the probe need not run before the faults.
  const auto& a = *probes[0].tolerance.baseline;
  EXPECT_DOUBLE_EQ(a.minRelative, 0.2);
  EXPECT_EQ(a.minAbsolute, Duration::zero());
  EXPECT_EQ(a.control, "b");
  EXPECT_EQ(a.test, BaselineTest::kExceedance);
  EXPECT_EQ(a.minEffectBy, MinEffectBy::kBound);
  const auto& b = *probes[1].tolerance.baseline;
  EXPECT_EQ(b.minAbsolute, 5ms);
  EXPECT_EQ(b.minEffectBy, MinEffectBy::kEstimate) << "the default";
  EXPECT_DOUBLE_EQ(b.minRelative, 0);
  EXPECT_TRUE(b.control.empty());
  const auto& c = *probes[2].tolerance.baseline;
  EXPECT_EQ(c.test, BaselineTest::kBlocks) << "the default";
  EXPECT_DOUBLE_EQ(c.alpha, 0.01);
  EXPECT_DOUBLE_EQ(c.quantile, 0.95);
}

// A path target is of kind path, so disk faults can act on it.
TEST(ExperimentParserTest, PathTargetIsOfKindPath) {
  std::string text = std::string(kHead) +
                     "targets:\n"
                     "  data: {path: /var/lib/app}\n"
                     "method:\n"
                     "  - {name: fill, fault: disk.fill, target: data, args: {size: 1GiB}, "
                     "duration: 1m}\n";
  ParseResult r = parse(text);
  ASSERT_TRUE(r.ok()) << joined(r);
  const TargetSpec* data = r.experiment->findTarget("data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->kind, TargetKind::kPath);
  EXPECT_EQ(data->path, "/var/lib/app");
  EXPECT_EQ(r.experiment->method[0].args["size"], uint64_t{1} << 30);
}

// ---- variables ------------------------------------------------------------------------

std::string probeUrlExperiment(std::string_view config, std::string_view url) {
  return "apiVersion: chaosd/v1\n"
         "kind: Experiment\n"
         "metadata: {name: vars}\n" +
         std::string(config) +
         "steadyState:\n"
         "  probes:\n"
         "    - name: health\n"
         "      http: {url: \"" +
         std::string(url) +
         "\"}\n"
         "method:\n"
         "  - {name: wait, pause: 1s}\n";
}

std::string probeUrl(const ParseResult& r) {
  if (!r.experiment) return "<no experiment: " + joined(r) + ">";
  return r.experiment->steadyState.probes.at(0).http.url;
}

TEST(ExperimentParserVariablesTest, ConfigValueIsSubstituted) {
  ParseResult r = parse(probeUrlExperiment("config: {host: 10.0.0.1, port: 8080}\n",
                                           "http://${host}:${port}/health"));
  EXPECT_EQ(probeUrl(r), "http://10.0.0.1:8080/health");
}

TEST(ExperimentParserVariablesTest, VarOverridesConfig) {
  ParseResult r = parse(probeUrlExperiment("config: {host: 10.0.0.1}\n", "http://${host}/"),
                        {{"host", "192.168.1.9"}});
  EXPECT_EQ(probeUrl(r), "http://192.168.1.9/");
}

TEST(ExperimentParserVariablesTest, VarWithoutConfig) {
  ParseResult r = parse(probeUrlExperiment("", "http://${host}/"), {{"host", "db"}});
  EXPECT_EQ(probeUrl(r), "http://db/");
}

// A --var value goes into the experiment's strings and from them into the journal and the
// report (JSON): bytes that are not UTF-8 are refused before anything runs (they made `chaosctl
// run` stop with an internal error from the journal's JSON).
TEST(ExperimentParserVariablesTest, AVarThatIsNotUtf8IsRefused) {
  ParseResult r = parse(probeUrlExperiment("", "http://${host}/"), {{"host", "db\x91"}});
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:1:1: --var 'host': the variable's value is not "
                                    "UTF-8 text (UTF-8, as the experiment file is)"));
  EXPECT_TRUE(
      parse(probeUrlExperiment("", "http://${host}/"), {{"host", "d\xc3\xa9j\xc3\xa0"}}).ok());
}

TEST(ExperimentParserVariablesTest, DoubleDollarIsALiteral) {
  ParseResult r =
      parse(probeUrlExperiment("config: {host: h}\n", "http://${host}/?q=$${host}&cost=$5"));
  EXPECT_EQ(probeUrl(r), "http://h/?q=${host}&cost=$5");
}

TEST(ExperimentParserVariablesTest, UndefinedVariableIsReportedWhereItIsUsed) {
  ParseResult r = parse(probeUrlExperiment("", "http://${nope}/"));
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:7:19: steadyState.probes[0].http.url: undefined "
                                    "variable 'nope' (define it under config: or pass --var "
                                    "nope=VALUE)"));
  EXPECT_FALSE(r.experiment.has_value());
}

TEST(ExperimentParserVariablesTest, UndefinedVariableSuggestsACloseName) {
  ParseResult r = parse(probeUrlExperiment("", "http://${hots}/"), {{"host", "h"}});
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].message, "undefined variable 'hots'");
  EXPECT_EQ(r.diagnostics[0].expected, "did you mean 'host'?");
}

TEST(ExperimentParserVariablesTest, EveryUndefinedVariableOfAValueIsReported) {
  ParseResult r = parse(probeUrlExperiment("", "http://${a}:${b}/"));
  ASSERT_EQ(r.diagnostics.size(), 2u) << joined(r);
  EXPECT_EQ(r.diagnostics[0].message, "undefined variable 'a'");
  EXPECT_EQ(r.diagnostics[1].message, "undefined variable 'b'");
}

TEST(ExperimentParserVariablesTest, UnterminatedReference) {
  ParseResult r = parse(probeUrlExperiment("config: {host: h}\n", "http://${host/"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << joined(r);
  EXPECT_EQ(r.diagnostics[0].message, "unterminated variable reference");
}

TEST(ExperimentParserVariablesTest, VariablesInNumbersAndDurations) {
  std::string text =
      "apiVersion: chaosd/v1\n"
      "kind: Experiment\n"
      "metadata: {name: vars}\n"
      "config: {port: 8080, wait: 2m}\n"
      "steadyState:\n"
      "  probes: [{name: p, tcp: {host: localhost, port: \"${port}\"}}]\n"
      "method: [{name: wait, pause: \"${wait}\"}]\n";
  ParseResult r = parse(text);
  ASSERT_TRUE(r.ok()) << joined(r);
  EXPECT_EQ(r.experiment->steadyState.probes[0].tcp.port, 8080);
  EXPECT_EQ(r.experiment->method[0].duration, 2min);
}

class ExperimentParserEnvTest : public ::testing::Test {
 protected:
  static constexpr const char* kVar = "CHAOSD_PARSER_TEST_ENV_VALUE";
  void TearDown() override { unsetenv(kVar); }
  std::string config() const {
    return std::string("config:\n  host: {env: ") + kVar + ", default: fallback, secret: true}\n";
  }
};

TEST_F(ExperimentParserEnvTest, DefaultWhenTheVariableIsUnset) {
  unsetenv(kVar);
  ParseResult r = parse(probeUrlExperiment(config(), "http://${host}/"));
  EXPECT_EQ(probeUrl(r), "http://fallback/");
  ASSERT_TRUE(r.experiment.has_value());
  EXPECT_TRUE(r.experiment->config.at("host").secret);
  EXPECT_EQ(r.experiment->config.at("host").value, "fallback");
}

TEST_F(ExperimentParserEnvTest, EnvironmentWinsOverTheDefault) {
  setenv(kVar, "from-env", 1);
  ParseResult r = parse(probeUrlExperiment(config(), "http://${host}/"));
  EXPECT_EQ(probeUrl(r), "http://from-env/");
}

TEST_F(ExperimentParserEnvTest, UnsetWithoutDefaultIsAnError) {
  unsetenv(kVar);
  ParseResult r = parse(
      probeUrlExperiment(std::string("config:\n  host: {env: ") + kVar + "}\n", "http://${host}/"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(joined(r), HasSubstr("config.host.env: environment variable '" + std::string(kVar) +
                                   "' is not set"));
}

TEST(ExperimentParserVariablesTest, SecretLiteralValue) {
  ParseResult r = parse(
      probeUrlExperiment("config:\n  host: {value: hidden, secret: true}\n", "http://${host}/"));
  EXPECT_EQ(probeUrl(r), "http://hidden/");
  ASSERT_TRUE(r.experiment.has_value());
  EXPECT_TRUE(r.experiment->config.at("host").secret);
}

TEST(ExperimentParserVariablesTest, ValueAndEnvCannotBeCombined) {
  ParseResult r =
      parse(probeUrlExperiment("config:\n  host: {value: a, env: HOME}\n", "http://${host}/"));
  EXPECT_THAT(joined(r), HasSubstr("config.host.env: 'value' and 'env' cannot be combined"));
}

TEST(ExperimentParserVariablesTest, BadVariableName) {
  ParseResult r = parse(probeUrlExperiment("config:\n  1host: a\n", "http://x/"));
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:5:3: config.1host: '1host' is not a valid variable "
                                    "name (letters, digits and '_', not starting with a digit)"));
}

// ---- every error is reported ----------------------------------------------------------

TEST(ExperimentParserTest, EveryErrorIsReportedInFileOrder) {
  constexpr std::string_view kText = R"yaml(apiVersion: chaosd/v1
kind: Experiment
metadata: {name: Bad_Name}
targets:
  db: {interface: {name: veth-db}}
  web: {process: {name: web}, mode: count(0)}
steadyState:
  baseline: {duration: 0s}
  probes:
    - name: health
      http: {url: "http://x/", method: FETCH}
      tolerance: {status: "abc..200", latency: {p100: "<= 1s"}}
method:
  - name: latency
    fault: network.delay
    target: db
    args: {delay: 10ms, jitter: 1ms, loss: 120%, protocol: sctp}
    duration: 2h
  - name: latency
    pause: 1s
rollbacks:
  - {name: undo, command: []}
report: {formats: [json, pdf]}
schedule: {cron: "* * * * *", timezone: "../etc/passwd"}
)yaml";
  ParseResult r = parse(kText);
  EXPECT_THAT(
      lines(r),
      ElementsAre(
          "exp.yaml:3:18: metadata.name: 'Bad_Name' is not a valid name (lowercase letters, "
          "digits and '-', at most 63 characters)",
          "exp.yaml:6:37: targets.web.mode: count(0) selects nothing (count(N) with N >= 1)",
          "exp.yaml:8:24: steadyState.baseline.duration: must be longer than zero (a duration "
          "like 10s)",
          "exp.yaml:11:40: steadyState.probes[0].http.method: 'FETCH' is not an HTTP method "
          "(GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)",
          "exp.yaml:12:27: steadyState.probes[0].tolerance.status: 'abc..200' is not a range "
          "(LOW..HIGH with numbers, e.g. 200..299)",
          "exp.yaml:12:49: steadyState.probes[0].tolerance.latency.p100: 'p100' is not a "
          "percentile (p50, p90, p95, p99 or p99.9)",
          "exp.yaml:17:44: method[0].args.loss: '120%' is more than 100% (expected 0%..100%)",
          "exp.yaml:17:60: method[0].args.protocol: 'sctp' is not a valid protocol (did you mean "
          "'tcp'?)",
          "exp.yaml:18:15: method[0].duration: the fault would be held 2h, longer than "
          "guardrails.maxDuration (at most 1h)",
          "exp.yaml:19:11: method[1].name: duplicate step name 'latency' (unique step names)",
          "exp.yaml:22:27: rollbacks[0].command: the command is empty ([program, args...])",
          "exp.yaml:23:26: report.formats[1]: unknown report format 'pdf' (any of: json, junit, "
          "html, md)",
          "exp.yaml:24:41: schedule.timezone: '../etc/passwd' is not a time zone name (an IANA "
          "name like Europe/Berlin or UTC)"));
  EXPECT_FALSE(r.experiment.has_value());
}

TEST(ExperimentParserTest, DiagnosticFields) {
  ParseResult r = parse(withMethod("  - {name: wait, pause: 10 parsecs}\n"));
  ASSERT_EQ(r.diagnostics.size(), 1u);
  const Diagnostic& d = r.diagnostics[0];
  EXPECT_EQ(d.file, "exp.yaml");
  EXPECT_EQ(d.line, 8);
  EXPECT_EQ(d.column, 25);
  EXPECT_EQ(d.path, "method[0].pause");
  EXPECT_EQ(d.message,
            "'10 parsecs' is not a duration (expected a number with a unit: 250ms, "
            "1.5s, 5m, 1h)");
  EXPECT_EQ(d.expected, "");
}

TEST(ExperimentParserTest, DiagnosticStrWithoutPositionOrPath) {
  Diagnostic d{"f.yaml", 0, 0, "", "the file is too large", "at most 1 MiB"};
  EXPECT_EQ(d.str(), "f.yaml: the file is too large (at most 1 MiB)");
  d.line = 3;
  d.column = 4;
  d.path = "a.b";
  d.expected = "";
  EXPECT_EQ(d.str(), "f.yaml:3:4: a.b: the file is too large");
}

TEST(ExperimentParserTest, NoRegistryIsAnInternalError) {
  ParseOptions options;
  ParseResult r = parseExperimentText(withMethod("  - {name: w, pause: 1s}\n"), "x.yaml", options);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("no fault registry"));
}

// ---- limits ---------------------------------------------------------------------------

TEST(ExperimentParserLimitsTest, MaxBytesOfText) {
  ParseLimits limits;
  limits.maxBytes = 100;
  std::string text = withMethod("  - {name: wait, pause: 1s}\n");
  ASSERT_GT(text.size(), 100u);
  ParseResult r = parse(text, {}, limits);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].str(),
            "exp.yaml: the file is " + std::to_string(text.size()) +
                " bytes, larger than the limit (an experiment of at most 100 bytes)");
}

TEST(ExperimentParserLimitsTest, MaxBytesOfAFileIsCheckedBeforeReading) {
  auto path = std::filesystem::temp_directory_path() /
              ("chaosd-parser-test-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << withMethod("  - {name: wait, pause: 1s}\n") << std::string(2000, '#') << "\n";
  }
  ParseOptions options;
  options.registry = &builtinFaults();
  options.limits.maxBytes = 1000;
  ParseResult r = parseExperimentFile(path.string(), options);
  std::filesystem::remove(path);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("larger than the limit"));
  EXPECT_EQ(r.diagnostics[0].file, path.string());
}

TEST(ExperimentParserLimitsTest, MissingFile) {
  ParseOptions options;
  options.registry = &builtinFaults();
  ParseResult r = parseExperimentFile("/nonexistent/chaosd/exp.yaml", options);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].str(),
            "/nonexistent/chaosd/exp.yaml: cannot open: No such file or directory");
}

TEST(ExperimentParserLimitsTest, MaxDepth) {
  std::string nested = std::string(100, '[') + std::string(100, ']');
  ParseResult r = parse(std::string(kHead) + "method: " + nested + "\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << joined(r);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("nesting deeper than 64 levels"));
}

TEST(ExperimentParserLimitsTest, AliasBombIsRefusedQuickly) {
  // Nine levels of ten aliases each: a billion nodes if anyone expanded it.
  std::string text = std::string(kHead) + "metadata2:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    text += "  l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", " : "") + prev;
    text += "]\n";
  }
  text += "method: [{name: wait, pause: 1s}]\n";
  auto start = std::chrono::steady_clock::now();
  ParseResult r = parse(text);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 5s);
  ASSERT_EQ(r.diagnostics.size(), 1u) << joined(r);
  EXPECT_THAT(r.diagnostics[0].message,
              HasSubstr("expands to more than 100000 nodes (an alias bomb?)"));
}

TEST(ExperimentParserLimitsTest, MaxNodesCountsEveryNode) {
  ParseLimits limits;
  limits.maxNodes = 10;
  ParseResult r = parse(withMethod("  - {name: wait, pause: 1s}\n"), {}, limits);
  ASSERT_EQ(r.diagnostics.size(), 1u) << joined(r);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("more than 10 nodes"));
}

// ---- raw text -------------------------------------------------------------------------

TEST(ExperimentParserTextTest, InvalidUtf8IsReportedWithLineAndColumn) {
  std::string text = withMethod("  - {name: wait, pause: 1s}\n");
  text.insert(text.find("small"), "\xC3\xA9\xFF");  // a valid é, then a stray byte
  ParseResult r = parse(text);
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:3:19: invalid UTF-8 (byte 0xFF) (experiment files "
                                    "are UTF-8 text)"));
}

TEST(ExperimentParserTextTest, OverlongAndSurrogateEncodingsAreNotUtf8) {
  for (std::string bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    ParseResult r = parse("apiVersion: chaosd/v1\nkind: " + bad + "\n");
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].line, 2);
    EXPECT_EQ(r.diagnostics[0].column, 7);
    EXPECT_THAT(r.diagnostics[0].message, HasSubstr("invalid UTF-8"));
  }
}

TEST(ExperimentParserTextTest, ControlCharacterIsReportedWithLineAndColumn) {
  std::string text = withMethod("  - {name: wait, pause: 1s}\n");
  text.insert(text.find("small"), std::string("\x01", 1));
  ParseResult r = parse(text);
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:3:18: control character 0x01 in the text (a YAML "
                                    "text file; this looks like binary data)"));
}

TEST(ExperimentParserTextTest, NulByteIsAControlCharacter) {
  std::string text = "apiVersion: chaosd/v1\nkind: Exp";
  text.push_back('\0');
  text += "eriment\n";
  ParseResult r = parse(text);
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:2:10: control character 0x00 in the text (a YAML "
                                    "text file; this looks like binary data)"));
}

TEST(ExperimentParserTextTest, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes; the stray control character is the 9th character of the line.
  std::string text = "apiVersion: chaosd/v1\nkind: éé";
  text += "\x02\n";
  ParseResult r = parse(text);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].line, 2);
  EXPECT_EQ(r.diagnostics[0].column, 9);
}

TEST(ExperimentParserTextTest, ByteOrderMarkAndCrlfAreAccepted) {
  std::string text = "\xEF\xBB\xBF" + withMethod("  - {name: wait, pause: 1s}\n");
  std::string crlf;
  for (char c : text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  ParseResult r = parse(crlf);
  EXPECT_TRUE(r.ok()) << joined(r);
}

TEST(ExperimentParserTextTest, OnlyCommentsIsNoExperiment) {
  ParseResult r = parse("# nothing here\n# still nothing\n");
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:1:1: the file holds no experiment (an experiment: "
                                    "apiVersion, kind, metadata, steadyState, method)"));
}

TEST(ExperimentParserTextTest, YamlSyntaxErrorHasAPosition) {
  ParseResult r = parse("apiVersion: chaosd/v1\nkind: [Experiment\n");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_GT(r.diagnostics[0].line, 0);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("YAML syntax error"));
}

TEST(ExperimentParserTextTest, YamlSyntaxErrorNamesWhereTheUnclosedBracketOpened) {
  ParseResult r = parse("apiVersion: chaosd/v1\nmetadata: {name: x,\n  labels: [a, b}\n");
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:3:16: YAML syntax error: did not find expected "
                                    "',' or ']', while parsing a flow sequence opened at line 3, "
                                    "column 11"));
}

TEST(ExperimentParserTextTest, ScalarDocumentIsNotAnExperiment) {
  ParseResult r = parse("just a string\n");
  EXPECT_THAT(lines(r), ElementsAre("exp.yaml:1:1: expected a mapping, found a scalar (keys: "
                                    "apiVersion, kind, metadata, config, targets, steadyState, "
                                    "method, rollbacks, guardrails, report, schedule, load)"));
}

// ---- var files ------------------------------------------------------------------------

TEST(ExperimentParserVarFileTest, ReadsAMapping) {
  auto path = std::filesystem::temp_directory_path() /
              ("chaosd-vars-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "host: 10.0.0.1\nport: 8080\n";
  }
  auto vars = readVarFile(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(vars.ok());
  EXPECT_EQ(vars->at("host"), "10.0.0.1");
  EXPECT_EQ(vars->at("port"), "8080");
}

TEST(ExperimentParserVarFileTest, RefusesNestedValues) {
  auto path = std::filesystem::temp_directory_path() /
              ("chaosd-vars-nested-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "host: 10.0.0.1\nports: [1, 2]\n";
  }
  auto vars = readVarFile(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(vars.ok());
  EXPECT_THAT(vars.error().message(), HasSubstr(":2: expected NAME: VALUE"));
}

}  // namespace
}  // namespace chaosd
