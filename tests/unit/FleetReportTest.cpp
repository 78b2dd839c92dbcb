// The fleet report's merge (reports/FleetReport.h): outcomes and what was left behind across
// hosts, the spread of time to detect and recover, the front end's view, the reliability model
// beside the observation, and refusals of mismatched input; the topology file's parser.
#include <gtest/gtest.h>

#include "reports/FleetReport.h"
#include "reports/FleetTopology.h"
#include "reports/FleetWriters.h"

namespace chaosd::report {
namespace {

using Json = nlohmann::json;

// "2026-12-07T10:00:SS.mmmZ" for an offset in milliseconds from 10:00:00.
std::string at(int ms) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "2026-12-07T10:00:%02d.%03dZ", ms / 1000, ms % 1000);
  return buf;
}

// A probe's samples, one every 100 ms from `fromMs`, ok where `pattern` has '+'.
Json probe(const std::string& name, int fromMs, const std::string& pattern) {
  Json samples = Json::array();
  for (size_t i = 0; i < pattern.size(); ++i) {
    samples.push_back({{"phase", "during"},
                       {"at", at(fromMs + 100 * static_cast<int>(i))},
                       {"durationNs", 10'000'000},
                       {"ok", pattern[i] == '+'}});
  }
  return {{"name", name}, {"samples", samples}, {"verdicts", Json::array()}};
}

// One host's report: a fault applied at appliedMs and reverted at revertedMs, one impact.
Json hostReport(const std::string& runId, int appliedMs, int revertedMs, Json impact, Json probes,
                const std::string& outcome = "ok", int exitCode = 0) {
  return {{"schema", "chaosd.report/v1"},
          {"runId", runId},
          {"experiment", {{"metadata", {{"name", "web-pause"}}}}},
          {"startedAt", at(0)},
          {"endedAt", at(9000)},
          {"outcome", outcome},
          {"exitCode", exitCode},
          {"reasons", Json::array()},
          {"auditClean", true},
          {"faults",
           {{{"step", "pause"},
             {"type", "process.pause"},
             {"target", "replica"},
             {"state", "reverted"},
             {"appliedAt", at(appliedMs)},
             {"revertedAt", at(revertedMs)},
             {"leftovers", Json::array()},
             {"impact", impact}}}},
          {"probes", probes}};
}

Json impact(int64_t detectNs, std::optional<int64_t> recoverNs) {
  return Json::array({{{"probe", "health"},
                       {"detected", true},
                       {"detectedAfterNs", detectNs},
                       {"recovered", recoverNs.has_value()},
                       {"recoveredAfterNs", recoverNs ? Json(*recoverNs) : Json(nullptr)}}});
}

FleetInputs threeHosts() {
  FleetInputs in;
  // web1: faults 1.0s..2.0s; its probe from 1.0s: 10 samples, 5 passing.
  in.hosts.push_back({"web1", "w1/report.json",
                      hostReport("r1", 1000, 2000, impact(300'000'000, 50'000'000),
                                 Json::array({probe("health", 1000, "-----+++++")}))});
  // web2: 1.2s..2.4s; 10 samples from 1.0s, all passing.
  in.hosts.push_back({"web2", "w2/report.json",
                      hostReport("r2", 1200, 2400, impact(100'000'000, 20'000'000),
                                 Json::array({probe("health", 1000, "++++++++++")}))});
  // web3: 1.1s..2.2s; 10 samples from 1.0s, 8 passing; never recovered.
  in.hosts.push_back({"web3", "w3/report.json",
                      hostReport("r3", 1100, 2200, impact(200'000'000, std::nullopt),
                                 Json::array({probe("health", 1000, "++--++++++")}))});
  return in;
}

TEST(FleetReportTest, MergesHostsAndTheWindowRunsFromTheFirstApplyToTheLastRevert) {
  auto fleet = buildFleetReport(threeHosts());
  ASSERT_TRUE(fleet) << fleet.error().describe();
  EXPECT_EQ((*fleet)["schema"], kFleetReportSchema);
  EXPECT_EQ((*fleet)["experiment"], "web-pause");
  ASSERT_EQ((*fleet)["hosts"].size(), 3u);
  EXPECT_EQ((*fleet)["hosts"][1]["host"], "web2");
  EXPECT_EQ((*fleet)["window"]["source"], "faults");
  EXPECT_EQ((*fleet)["window"]["firstApply"]["host"], "web1");
  EXPECT_EQ((*fleet)["window"]["lastRevert"]["host"], "web2");
  EXPECT_EQ((*fleet)["window"]["lengthNs"], 1'400'000'000);
  // First applies at 1.0s (web1), 1.2s (web2), 1.1s (web3): within 200ms.
  EXPECT_EQ((*fleet)["window"]["applySpreadNs"], 200'000'000);
  EXPECT_EQ((*fleet)["outcome"], "ok");
  EXPECT_EQ(fleetExitCode(*fleet), 0);
  EXPECT_TRUE((*fleet)["leftBehind"].empty());
}

TEST(FleetReportTest, TimeToDetectAndRecoverAcrossTheFleetNameTheHost) {
  auto fleet = buildFleetReport(threeHosts());
  ASSERT_TRUE(fleet);
  const Json& d = (*fleet)["timeToDetect"];
  // 100ms (web2), 200ms (web3), 300ms (web1): min web2, median web3, max web1.
  EXPECT_EQ(d["count"], 3);
  EXPECT_EQ(d["min"]["ns"], 100'000'000);
  EXPECT_EQ(d["min"]["host"], "web2");
  EXPECT_EQ(d["median"]["ns"], 200'000'000);
  EXPECT_EQ(d["median"]["host"], "web3");
  EXPECT_EQ(d["max"]["host"], "web1");
  const Json& r = (*fleet)["timeToRecover"];
  // 20ms (web2) and 50ms (web1); web3 never recovered. Median of two: (20 + 50) / 2 = 35ms.
  EXPECT_EQ(r["count"], 2);
  EXPECT_EQ(r["median"]["ns"], 35'000'000);
  EXPECT_FALSE(r["median"].contains("host"));
  ASSERT_EQ(r["notRecovered"].size(), 1u);
  EXPECT_EQ(r["notRecovered"][0]["host"], "web3");
}

TEST(FleetReportTest, AnythingLeftBehindAnywhereIsExitFourAndOutranksTheRest) {
  FleetInputs in = threeHosts();
  in.hosts[0].report["outcome"] = "deviated";
  in.hosts[0].report["exitCode"] = 1;
  in.hosts[1].report["outcome"] = "error";
  in.hosts[1].report["exitCode"] = 5;
  auto fleet = buildFleetReport(in);
  ASSERT_TRUE(fleet);
  EXPECT_EQ((*fleet)["outcome"], "error");
  EXPECT_EQ(fleetExitCode(*fleet), 5);

  in.hosts[2].report["faults"][0]["leftovers"] = {"nft table inet chaosd-r3 still there"};
  fleet = buildFleetReport(in);
  ASSERT_TRUE(fleet);
  EXPECT_EQ((*fleet)["outcome"], "leftovers");
  EXPECT_EQ(fleetExitCode(*fleet), 4);
  ASSERT_EQ((*fleet)["leftBehind"].size(), 1u);
  EXPECT_EQ((*fleet)["leftBehind"][0]["host"], "web3");
  EXPECT_NE((*fleet)["leftBehind"][0]["what"].get<std::string>().find("chaosd-r3"),
            std::string::npos);
  EXPECT_NE(fleetMarkdown(*fleet).find("web3: fault pause"), std::string::npos);

  // An unclean audit without a line, or a control node's leftovers, count too.
  in = threeHosts();
  in.hosts[1].report["auditClean"] = false;
  EXPECT_EQ(fleetExitCode(*buildFleetReport(in)), 4);
  in = threeHosts();
  in.control = FleetMember{"control", "c/report.json",
                           hostReport("c1", 0, 0, Json::array(), Json::array(), "leftovers", 4)};
  in.control->report["faults"] = Json::array();
  EXPECT_EQ(fleetExitCode(*buildFleetReport(in)), 4);
}

TEST(FleetReportTest, MismatchedInputIsRefusedNamingTheFiles) {
  FleetInputs in = threeHosts();
  in.hosts[2].report["experiment"]["metadata"]["name"] = "db-partition";
  auto fleet = buildFleetReport(in);
  ASSERT_FALSE(fleet);
  EXPECT_EQ(fleet.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(fleet.error().message().find("w3/report.json (host web3) is a run of 'db-partition', "
                                         "w1/report.json (host web1) of 'web-pause'"),
            std::string::npos)
      << fleet.error().message();

  in = threeHosts();
  in.hosts[2].report["runId"] = "r1";
  fleet = buildFleetReport(in);
  ASSERT_FALSE(fleet);
  EXPECT_NE(fleet.error().message().find("run r1 is given twice"), std::string::npos);

  in = threeHosts();
  in.hosts[2].host = "web1";
  fleet = buildFleetReport(in);
  ASSERT_FALSE(fleet);
  EXPECT_NE(fleet.error().message().find("host 'web1' is given twice"), std::string::npos);

  in = threeHosts();
  in.hosts[1].report = Json{{"schema", "someone.else/v3"}};
  fleet = buildFleetReport(in);
  ASSERT_FALSE(fleet);
  EXPECT_NE(fleet.error().message().find("w2/report.json: not a chaosd report"), std::string::npos);

  EXPECT_FALSE(buildFleetReport(FleetInputs{}));
}

FleetInputs withFront(const std::string& frontPattern, Topology topology) {
  FleetInputs in = threeHosts();
  Json control =
      hostReport("c1", 0, 0, Json::array(), Json::array({probe("front", 1000, frontPattern)}));
  control["faults"] = Json::array();
  control["experiment"]["metadata"]["name"] = "front-watch";
  in.control = FleetMember{"control", "c/report.json", control};
  in.topology = std::move(topology);
  return in;
}

Topology webTier(int k) {
  Topology t;
  t.tiers.push_back({"web", k, {"web1", "web2", "web3"}, "health"});
  return t;
}

TEST(FleetReportTest, ReliabilityModelFromTheReplicasInTheWindow) {
  // The window is 1.0s..2.4s: each host's samples at 1.0, 1.1, ..., 1.9s (10) are inside it.
  // web1 5/10 = 0.5, web2 10/10 = 1, web3 8/10 = 0.8.
  // 2 of 3: P(all) = 0.5*1*0.8 = 0.4; P(exactly two) = 0.5*1*0.2 + 0.5*1*0.8 + 0.5*0*0.8 = 0.5;
  // R = 0.9. The front: 15 samples from 1.0s (1.0..2.4s all inside), 13 passing: 0.8667;
  // Wilson 95% for 13/15 is about 0.62 to 0.96, which holds 0.9: no callout.
  auto fleet = buildFleetReport(withFront("++-++++++-+++++", webTier(2)));
  ASSERT_TRUE(fleet) << fleet.error().describe();
  const Json& r = (*fleet)["reliability"];
  ASSERT_TRUE(r.is_object());
  EXPECT_NEAR(r["tiers"][0]["replicas"][0]["availability"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(r["tiers"][0]["replicas"][2]["count"], 10);
  EXPECT_NEAR(r["model"].get<double>(), 0.9, 1e-12);
  EXPECT_EQ(r["observed"]["count"], 15);
  EXPECT_EQ(r["observed"]["passed"], 13);
  EXPECT_NEAR(r["gap"].get<double>(), 0.9 - 13.0 / 15, 1e-12);
  EXPECT_TRUE(r["callout"].is_null());
}

TEST(FleetReportTest, AGapOutsideTheObservationsIntervalIsCalledOut) {
  // 1 of 3 over {0.5, 1, 0.8}: 1 - 0.5 * 0 * 0.2 = 1. The front passed 3 of 15 (0.2, Wilson
  // interval about 0.07 to 0.45): observed far below the model; the replicas did not fail
  // independently, or the front does not fail over.
  auto fleet = buildFleetReport(withFront("+--+-----+-----", webTier(1)));
  ASSERT_TRUE(fleet);
  const Json& r = (*fleet)["reliability"];
  EXPECT_NEAR(r["model"].get<double>(), 1.0, 1e-12);
  ASSERT_TRUE(r["callout"].is_string());
  EXPECT_NE(r["callout"].get<std::string>().find("up less than the model predicts"),
            std::string::npos);
  EXPECT_NE(fleetMarkdown(*fleet).find("Gap between model and observation"), std::string::npos);
  EXPECT_NE(fleetJunit(*fleet).find("<failure message=\"the front end was up less"),
            std::string::npos);
  // All 3 of 3 (series): 0.5 * 1 * 0.8 = 0.4 against an observed 15 of 15: the front is up
  // more than the model says.
  fleet = buildFleetReport(withFront("+++++++++++++++", webTier(3)));
  ASSERT_TRUE(fleet);
  EXPECT_NEAR((*fleet)["reliability"]["model"].get<double>(), 0.4, 1e-12);
  EXPECT_NE((*fleet)["reliability"]["callout"].get<std::string>().find("up more than"),
            std::string::npos);
}

TEST(FleetReportTest, FrontEndTimeToDetectAndRecover) {
  // First apply 1.0s (web1), last revert 2.4s (web2). Front samples every 100ms from 1.0s, 10ms
  // each: the first failure starts at 1.2s and ends 1.21s: detected 210ms after the first
  // apply. After 2.4s: 2.4 (+), 2.5 (-), 2.6 (+), 2.7 (+), 2.8 (+): 3 in a row from 2.6s, 200ms
  // after the last revert.
  auto fleet = buildFleetReport(withFront("++-++++++++++++-++++", webTier(2)));
  ASSERT_TRUE(fleet);
  const Json& fe = (*fleet)["control"]["frontEnd"];
  EXPECT_EQ(fe["probe"], "front");
  EXPECT_EQ(fe["detectedAfterNs"], 210'000'000);
  EXPECT_EQ(fe["recoveredAfterNs"], 200'000'000);
  // The control node's run is not a host and its experiment may differ.
  EXPECT_EQ((*fleet)["hosts"].size(), 3u);
}

TEST(FleetReportTest, AnExpectedHostWithoutAReportIsAPartialFailure) {
  // web9 is in the topology but sent no report (its pod failed, its host was unreachable):
  // what it did is unknown, so the fleet ends in an error and the model is not computed.
  Topology t = webTier(1);
  t.tiers[0].hosts[2] = "web9";
  auto fleet = buildFleetReport(withFront("+", t));
  ASSERT_TRUE(fleet) << fleet.error().describe();
  EXPECT_EQ((*fleet)["missingHosts"], Json::array({"web9"}));
  EXPECT_EQ((*fleet)["outcome"], "error");
  EXPECT_EQ(fleetExitCode(*fleet), 5);
  EXPECT_NE((*fleet)["reasons"][0].get<std::string>().find("web9: no report"), std::string::npos);
  EXPECT_TRUE((*fleet)["reliability"]["model"].is_null());
  EXPECT_EQ((*fleet)["reliability"]["note"], "no model: no report from host web9");
  EXPECT_NE(fleetJunit(*fleet).find("host web9: report present"), std::string::npos);
  EXPECT_NE(fleetMarkdown(*fleet).find("### Hosts without a report"), std::string::npos);
  // --expect-hosts does the same without a topology; something left behind still outranks it.
  FleetInputs in = threeHosts();
  in.expectedHosts = {"web1", "web2", "web3", "web4"};
  fleet = buildFleetReport(in);
  ASSERT_TRUE(fleet);
  EXPECT_EQ((*fleet)["missingHosts"], Json::array({"web4"}));
  EXPECT_EQ(fleetExitCode(*fleet), 5);
  in.hosts[0].report["auditClean"] = false;
  EXPECT_EQ(fleetExitCode(*buildFleetReport(in)), 4);
}

TEST(FleetReportTest, TopologyNamingAProbeTheReportsLackIsRefused) {
  Topology t = webTier(1);
  t.tiers[0].probe = "latency";
  auto fleet = buildFleetReport(withFront("+", t));
  ASSERT_FALSE(fleet);
  EXPECT_NE(fleet.error().message().find("has no probe 'latency' (it has: health)"),
            std::string::npos);
  t = webTier(1);
  t.frontEndProbe = "checkout";
  fleet = buildFleetReport(withFront("+", t));
  ASSERT_FALSE(fleet);
  EXPECT_NE(fleet.error().message().find("frontEnd.probe: the control node's report has no probe "
                                         "'checkout'"),
            std::string::npos);
}

TEST(FleetReportTest, HostileReportsOfTheRightSchemaDoNotBreakTheMergeOrTheWriters) {
  FleetInputs in = threeHosts();
  in.hosts[0].report["faults"] = {
      1, "x", {{"impact", 5}, {"appliedAt", 7}}, {{"impact", {1, {{"detected", "yes"}}}}}};
  in.hosts[0].report["probes"] = {nullptr, {{"samples", {1, {{"at", 5}}, {{"at", "nonsense"}}}}}};
  in.hosts[1].report["runId"] = 7;
  in.hosts[1].report["reasons"] = {{{"nested", true}}};
  in.hosts[2].report["experiment"] = in.hosts[0].report["experiment"];
  in.hosts[2].report["startedAt"] = "<script>";
  in.hosts[2].report["faults"][0]["step"] = "<b>&\"x\"</b>";
  in.topology = Topology{};
  in.topology->tiers.push_back({"web", 1, {"web2"}, "health"});
  auto fleet = buildFleetReport(in);
  ASSERT_TRUE(fleet) << fleet.error().describe();
  EXPECT_NO_THROW(fleetMarkdown(*fleet));
  EXPECT_NO_THROW(fleetJunit(*fleet));
  const std::string html = fleetHtml(*fleet);
  EXPECT_EQ(html.find("<b>&"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;&amp;"), std::string::npos);
}

TEST(FleetTopologyTest, ParsesTiersAndDefaults) {
  auto t = parseTopology(
      "tiers:\n"
      "  - {name: web, k: 2, hosts: [web1, web2, web3], probe: health}\n"
      "  - {name: db, hosts: [db1, db2]}\n"
      "  - {name: cache, k: all, hosts: [c1, c2]}\n"
      "frontEnd: {probe: front}\n",
      "t.yaml");
  ASSERT_TRUE(t) << t.error().describe();
  ASSERT_EQ(t->tiers.size(), 3u);
  EXPECT_EQ(t->tiers[0].k, 2);
  EXPECT_EQ(t->tiers[0].probe, "health");
  EXPECT_EQ(t->tiers[1].k, 1);
  EXPECT_EQ(t->tiers[2].k, 2);
  EXPECT_EQ(t->frontEndProbe, "front");
  // JSON is YAML too.
  EXPECT_TRUE(parseTopology(R"({"tiers": [{"name": "web", "hosts": ["a"]}]})", "t.json"));
}

TEST(FleetTopologyTest, BadTopologiesNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tiers: [{name: web, k: 4, hosts: [a, b, c]}]",
       "t.yaml: tiers[0].k: 4 is more than the tier's 3 hosts"},
      {"tiers: [{name: web, k: 0, hosts: [a]}]", "tiers[0].k: must be at least 1"},
      {"tiers: [{name: web, k: two, hosts: [a]}]", "tiers[0].k: 'two' is not a number"},
      {"tiers: [{name: web, hosts: [a]}, {name: db, hosts: [a]}]",
       "tiers[1].hosts[0]: host 'a' is already in a tier"},
      {"tiers: [{name: web, hosts: [a]}, {name: web, hosts: [b]}]",
       "tiers[1].name: tier 'web' is named twice"},
      {"tiers: [{name: web, hosts: []}]", "tiers[0].hosts: expected a non-empty list"},
      {"tiers: [{name: web, hosts: [a], replicas: 3}]", "tiers[0].replicas: unknown field"},
      {"tier: []", "t.yaml: tier: unknown field"},
      {"tiers: []", "tiers: expected a non-empty list of tiers"},
      {"tiers: [{name: web, hosts: [a]}]\nfrontEnd: front", "frontEnd: expected a mapping"},
      {"tiers: [{name: [x], hosts: [a]}]", "tiers[0].name: expected a non-empty name"},
      {"tiers: [{name: web, hosts: [a]", "t.yaml: not valid YAML"},
      {"- just a list", "expected a mapping with 'tiers'"},
  };
  for (const auto& [text, expected] : cases) {
    auto t = parseTopology(text, "t.yaml");
    ASSERT_FALSE(t) << text;
    EXPECT_EQ(t.error().code(), ErrorCode::kInvalid);
    EXPECT_NE(t.error().message().find(expected), std::string::npos)
        << text << "\n  -> " << t.error().message();
  }
  EXPECT_FALSE(parseTopology(std::string(kMaxTopologyBytes + 1, ' '), "big.yaml"));
}

}  // namespace
}  // namespace chaosd::report
