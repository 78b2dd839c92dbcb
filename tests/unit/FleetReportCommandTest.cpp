// chaosctl report --fleet, the real binary, on the report.json of a real three-host game day
// (tests/data/fleet/gameday/: replica.yaml run three times at once with chaosctl run, each
// replica paused for 1.5s, and front.yaml on the "control node"; laid out as Ansible's fetch
// leaves them, one folder per host): the files it writes, JUnit against the schema, exit codes
// (4 when a host left something behind), and the refusals of bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "reports/Reliability.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::readFile;
using chaosd::testing::runCommand;
using chaosd::testing::writeFile;
using Json = nlohmann::json;

std::string fleetData(const std::string& name) {
  return std::string(CHAOSD_SOURCE_DIR) + "/tests/data/fleet/" + name;
}

class FleetReportCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = chaosd::testing::makeTempDir("chaosd-fleet-cmd");
    ASSERT_FALSE(dir_.empty());
    fs::copy(fleetData("gameday"), dir_ + "/gameday", fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string chaosctl(const std::string& args, int* status) {
    // From the test's folder: a run without --out writes there, never into the source tree.
    return runCommand(
        "cd " + dir_ + " && " + std::string(CHAOSCTL_PATH) + " report --fleet " + args + " 2>&1",
        status);
  }
  Json fleetJson() { return Json::parse(readFile(dir_ + "/out/fleet-report.json")); }
  std::string gameday() const { return dir_ + "/gameday"; }
  std::string dir_;
};

TEST_F(FleetReportCommandTest, MergesARealGameDayFromItsHostFolders) {
  int status = -1;
  const std::string out = chaosctl(gameday() + " --control " + gameday() + "/control --topology " +
                                       fleetData("topology.yaml") + " --out " + dir_ + "/out",
                                   &status);
  ASSERT_EQ(status, 0) << out;
  for (const char* f :
       {"fleet-report.json", "fleet-junit.xml", "fleet-summary.md", "fleet-report.html"}) {
    EXPECT_TRUE(fs::exists(dir_ + "/out/" + f)) << f;
  }
  const Json fleet = fleetJson();
  // The control node's folder sits beside the hosts' and is not taken for a host.
  ASSERT_EQ(fleet["hosts"].size(), 3u);
  EXPECT_EQ(fleet["hosts"][0]["host"], "web1");
  EXPECT_EQ(fleet["hosts"][2]["host"], "web3");
  EXPECT_EQ(fleet["experiment"], "fleet-replica-pause");
  EXPECT_EQ(fleet["control"]["experiment"], "fleet-front-watch");
  EXPECT_EQ(fleet["outcome"], "ok");
  // Each host's pause was detected and recovered from.
  EXPECT_EQ(fleet["timeToDetect"]["count"], 3);
  EXPECT_EQ(fleet["timeToRecover"]["count"], 3);
  EXPECT_LE(fleet["timeToDetect"]["min"]["ns"].get<int64_t>(),
            fleet["timeToDetect"]["max"]["ns"].get<int64_t>());
  // The model is the 1-of-3 tail of the replicas' measured availability.
  const Json& r = fleet["reliability"];
  std::vector<double> replicas;
  for (const auto& rep : r["tiers"][0]["replicas"]) {
    ASSERT_GT(rep["count"].get<int>(), 0);
    replicas.push_back(rep["availability"].get<double>());
  }
  ASSERT_EQ(replicas.size(), 3u);
  EXPECT_NEAR(r["model"].get<double>(), report::parallelReliability(replicas), 1e-12);
  EXPECT_GT(r["observed"]["count"].get<int>(), 0);
  EXPECT_EQ(r["observed"]["probe"], "front");
  // JUnit as CI servers read it.
  std::string xsdOut =
      runCommand("xmllint --noout --schema " + chaosd::testing::reportDataPath("junit.xsd") + " " +
                     dir_ + "/out/fleet-junit.xml 2>&1",
                 &status);
  EXPECT_EQ(status, 0) << xsdOut;
  runCommand("xmllint --noout " + dir_ + "/out/fleet-report.html 2>&1", &status);
  EXPECT_EQ(status, 0);
  const std::string md = readFile(dir_ + "/out/fleet-summary.md");
  EXPECT_NE(md.find("### Reliability model"), std::string::npos);
  EXPECT_NE(md.find("| web | 1 of 3 |"), std::string::npos) << md;
}

TEST_F(FleetReportCommandTest, HostEqualsPathNamesTheHostAndFormatLimitsTheFiles) {
  // c= a host's --report-dir: one run folder below.
  fs::create_directories(dir_ + "/c-runs/fleet-replica-pause-20261207T033734Z-d2fb5c9c");
  fs::copy(gameday() + "/web3/report.json",
           dir_ + "/c-runs/fleet-replica-pause-20261207T033734Z-d2fb5c9c/report.json");
  int status = -1;
  const std::string out =
      chaosctl("a=" + gameday() + "/web1 b=" + gameday() + "/web2/report.json c=" + dir_ +
                   "/c-runs --format markdown --out " + dir_ + "/out",
               &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(fs::exists(dir_ + "/out/fleet-report.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/out/fleet-summary.md"));
  EXPECT_FALSE(fs::exists(dir_ + "/out/fleet-junit.xml"));
  const Json fleet = fleetJson();
  EXPECT_EQ(fleet["hosts"][0]["host"], "a");
  EXPECT_EQ(fleet["hosts"][1]["host"], "b");
  EXPECT_EQ(fleet["hosts"][2]["host"], "c");
  EXPECT_TRUE(fleet["reliability"].is_null());
}

TEST_F(FleetReportCommandTest, SomethingLeftBehindOnOneHostIsExitFour) {
  Json web2 = Json::parse(readFile(gameday() + "/web2/report.json"));
  web2["faults"][0]["leftovers"] = {"process 1946 still stopped"};
  writeFile(gameday() + "/web2/report.json", web2.dump());
  int status = -1;
  const std::string out = chaosctl(
      gameday() + "/web1 " + gameday() + "/web2 " + gameday() + "/web3 --out " + dir_ + "/out",
      &status);
  EXPECT_EQ(status, 4) << out;
  EXPECT_NE(out.find("fleet leftovers (exit 4)"), std::string::npos) << out;
  EXPECT_NE(readFile(dir_ + "/out/fleet-summary.md").find("web2: fault pause-replica"),
            std::string::npos);
}

TEST_F(FleetReportCommandTest, AHostWithoutAReportIsExitFive) {
  int status = -1;
  std::string out =
      chaosctl(gameday() + " --control " + gameday() +
                   "/control --expect-hosts web1,web2,web3,web4 --out " + dir_ + "/out",
               &status);
  EXPECT_EQ(status, 5) << out;
  EXPECT_EQ(fleetJson()["missingHosts"], Json::array({"web4"}));
  EXPECT_NE(readFile(dir_ + "/out/fleet-summary.md").find("web4: its run's outcome"),
            std::string::npos);
  // The topology's hosts are expected too.
  writeFile(dir_ + "/t.yaml", "tiers: [{name: web, hosts: [web1, web5]}]\n");
  out = chaosctl(gameday() + " --control " + gameday() + "/control --topology " + dir_ +
                     "/t.yaml --out " + dir_ + "/out",
                 &status);
  EXPECT_EQ(status, 5) << out;
  EXPECT_EQ(fleetJson()["missingHosts"], Json::array({"web5"}));
}

TEST_F(FleetReportCommandTest, BadInputIsExitTwoAndSaysWhy) {
  int status = -1;
  // The control node's report is another experiment: as a host it is refused.
  std::string out = chaosctl(gameday() + " --out " + dir_ + "/out", &status);
  EXPECT_EQ(status, 2);
  // Folders are taken in name order: control, web1, ...
  EXPECT_NE(out.find("(host control) of 'fleet-front-watch'"), std::string::npos) << out;
  EXPECT_NE(out.find("a fleet report merges the runs of one experiment"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ + "/out/fleet-report.json"));

  // A file that is not a report.
  writeFile(dir_ + "/notes.json", "{\"hello\": 1}");
  out = chaosctl("x=" + dir_ + "/notes.json " + gameday() + "/web1", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find(dir_ + "/notes.json: not a chaosd report"), std::string::npos) << out;

  // The same run twice under two names.
  out = chaosctl("a=" + gameday() + "/web1 b=" + gameday() + "/web1", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("is given twice"), std::string::npos) << out;

  // A folder of hosts where one host holds two reports.
  fs::copy(gameday() + "/web1/report.json", gameday() + "/web3/old.json");
  fs::create_directories(gameday() + "/web3/older");
  fs::copy(gameday() + "/web1/report.json", gameday() + "/web3/older/report.json");
  out = chaosctl(gameday() + " --control " + gameday() + "/control", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("2 report.json files for host web3: name the one to merge"), std::string::npos)
      << out;
  fs::remove_all(gameday() + "/web3/older");

  // A broken topology file.
  writeFile(dir_ + "/t.yaml", "tiers: [{name: web, k: 5, hosts: [web1]}]\n");
  out = chaosctl(gameday() + " --control " + gameday() + "/control --topology " + dir_ + "/t.yaml",
                 &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("t.yaml: tiers[0].k: 5 is more than the tier's 1 hosts"), std::string::npos)
      << out;

  // --fleet options without --fleet, and --fleet with --compare.
  out = runCommand(std::string(CHAOSCTL_PATH) + " report " + gameday() + "/web1 --topology x 2>&1",
                   &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("go with --fleet"), std::string::npos) << out;
  out = chaosctl(gameday() + "/web1 --compare " + gameday() + "/web2", &status);
  EXPECT_EQ(status, 2);
  out = runCommand(
      std::string(CHAOSCTL_PATH) + " report " + gameday() + "/web1 " + gameday() + "/web2 2>&1",
      &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("several only with --fleet"), std::string::npos) << out;
}

}  // namespace
}  // namespace chaosd
