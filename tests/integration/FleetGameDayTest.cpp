// A small game day for real: tests/data/fleet/replica.yaml run by three `chaosctl run`s at once
// (three "hosts": own state folder, own port, own replica paused for 1.5s) while front.yaml
// watches the three from the "control node"; then `chaosctl report --fleet` merges the three
// fresh report.json files with the control node's and the topology. Checks the merged
// numbers against the hosts' own reports, and that no replica or stopped process is left.
// And the Kubernetes Job's submit.sh (deploy/kubernetes/chaosd-gameday-job.yaml) for real
// against a real chaosd: it submits, waits, finds the run id and stores report.json.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "reports/Reliability.h"
#include "tests/support/DaemonProcess.h"
#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::readFile;
using chaosd::testing::runCommand;
using Json = nlohmann::json;

class FleetGameDayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (process.pause)";
    dir_ = chaosd::testing::makeTempDir("chaosd-fleet-gameday");
    ASSERT_FALSE(dir_.empty());
    port_ = chaosd::testing::freeLoopbackPorts(3);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string data(const std::string& name) const {
    return std::string(CHAOSD_SOURCE_DIR) + "/tests/data/fleet/" + name;
  }
  // `chaosctl run` of `file` as `host`, in the background of a shell script; its exit status
  // goes to HOST.rc.
  std::string runLine(const std::string& host, const std::string& file, const std::string& vars) {
    return "(" + std::string(CHAOSCTL_PATH) + " run --state-dir " + dir_ + "/" + host +
           "/state --report-dir " + dir_ + "/fleet/" + host + " " + vars + " " + file + " > " +
           dir_ + "/" + host + ".log 2>&1; echo $? > " + dir_ + "/" + host + ".rc) &\n";
  }
  std::string dir_;
  uint16_t port_ = 0;
};

TEST_F(FleetGameDayTest, ThreeHostsAndAControlNodeMergeIntoOneReport) {
  const std::string ports =
      std::to_string(port_) + " " + std::to_string(port_ + 1) + " " + std::to_string(port_ + 2);
  std::string script = runLine("control", data("front.yaml"), "--var 'ports=" + ports + "'");
  script += "sleep 0.3\n";
  for (int i = 0; i < 3; ++i) {
    script += runLine("web" + std::to_string(i + 1), data("replica.yaml"),
                      "--var port=" + std::to_string(port_ + i));
  }
  script += "wait\n";
  chaosd::testing::writeFile(dir_ + "/gameday.sh", script);
  int status = -1;
  runCommand("/bin/sh " + dir_ + "/gameday.sh", &status);
  ASSERT_EQ(status, 0);
  for (const char* host : {"control", "web1", "web2", "web3"}) {
    EXPECT_EQ(readFile(dir_ + "/" + std::string(host) + ".rc"), "0\n")
        << host << ":\n"
        << readFile(dir_ + "/" + std::string(host) + ".log");
  }
  // Nothing of the game day is left: no replica runs, none is stopped.
  for (int i = 0; i < 3; ++i) {
    // [.] keeps the pattern from matching the shell that runs pgrep.
    runCommand("pgrep -f 'http[.]server " + std::to_string(port_ + i) + "' >/dev/null", &status);
    EXPECT_EQ(status, 1) << "a replica on port " << port_ + i << " outlived its run";
  }

  const std::string control = chaosd::testing::runDirIn(dir_ + "/fleet/control").string();
  const std::string out = runCommand(std::string(CHAOSCTL_PATH) + " report --fleet " + dir_ +
                                         "/fleet --control " + control + " --topology " +
                                         data("topology.yaml") + " --out " + dir_ + "/merged 2>&1",
                                     &status);
  ASSERT_EQ(status, 0) << out;
  const Json fleet = Json::parse(readFile(dir_ + "/merged/fleet-report.json"));
  ASSERT_EQ(fleet["hosts"].size(), 3u);
  EXPECT_EQ(fleet["window"]["source"], "faults");
  // The window spans every host's pause: at least one hold (1.5s) long.
  EXPECT_GE(fleet["window"]["lengthNs"].get<int64_t>(), 1'400'000'000);
  std::vector<double> replicas;
  for (int i = 0; i < 3; ++i) {
    const Json& host = fleet["hosts"][i];
    const Json own = chaosd::testing::readReport(
        chaosd::testing::runDirIn(dir_ + "/fleet/web" + std::to_string(i + 1)));
    EXPECT_EQ(host["runId"], own["runId"]);
    EXPECT_EQ(host["faults"][0]["state"], "reverted");
    // The pause made the replica's probe time out (250ms): detected on every host.
    ASSERT_TRUE(own["faults"][0]["impact"][0]["detected"].get<bool>());
    replicas.push_back(fleet["reliability"]["tiers"][0]["replicas"][i]["availability"]);
  }
  EXPECT_EQ(fleet["timeToDetect"]["count"], 3);
  // A paused replica's probe fails by its 250ms timeout (measured 249.8 to 252.3ms: the sample's
  // wall-clock start and monotonic length differ by a little), well inside the 1.5s hold.
  EXPECT_GE(fleet["timeToDetect"]["min"]["ns"].get<int64_t>(), 200'000'000);
  EXPECT_LT(fleet["timeToDetect"]["max"]["ns"].get<int64_t>(), 1'500'000'000);
  const Json& r = fleet["reliability"];
  EXPECT_NEAR(r["model"].get<double>(), report::parallelReliability(replicas), 1e-12);
  // The front end's samples in the window were counted and judged against the model.
  EXPECT_GT(r["observed"]["count"].get<int>(), 0);
  EXPECT_TRUE(r["gap"].is_number());
  EXPECT_TRUE(fleet["control"]["frontEnd"]["probe"] == "front");
  std::cout << "fleet game day: window " << fleet["window"]["lengthNs"].get<int64_t>() / 1e6
            << " ms, replicas " << replicas[0] << " " << replicas[1] << " " << replicas[2]
            << ", model " << r["model"] << ", observed " << r["observed"]["availability"] << " ("
            << r["observed"]["passed"] << "/" << r["observed"]["count"]
            << "), first applies within " << fleet["window"]["applySpreadNs"].get<int64_t>() / 1e6
            << " ms, detect " << fleet["timeToDetect"]["min"]["ns"].get<int64_t>() / 1e6 << ".."
            << fleet["timeToDetect"]["max"]["ns"].get<int64_t>() / 1e6 << " ms\n";
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

TEST_F(FleetGameDayTest, KubernetesJobScriptSubmitsWaitsAndStoresTheReport) {
  fs::create_directories(dir_ + "/daemon");
  chaosd::testing::DaemonProcess daemon(dir_ + "/daemon");
  ASSERT_TRUE(daemon.waitReady()) << daemon.log();
  // The Job's script as shipped, with the pod's paths pointed at this test's (the socket, the
  // ConfigMap's mount, the volume; /usr/bin/chaosctl at the build's).
  const YAML::Node configMap = YAML::LoadAllFromFile(
      std::string(CHAOSD_SOURCE_DIR) + "/deploy/kubernetes/chaosd-gameday-job.yaml")[0];
  ASSERT_EQ(configMap["kind"].as<std::string>(), "ConfigMap");
  std::string script = configMap["data"]["submit.sh"].as<std::string>();
  script = replaceAll(script, "/run/chaosd/chaosd.sock", daemon.socket());
  script = replaceAll(script, "/usr/bin/chaosctl", CHAOSCTL_PATH);
  script = replaceAll(script, "/gameday/", dir_ + "/gameday/");
  script = replaceAll(script, "/reports/", dir_ + "/reports/");
  fs::create_directories(dir_ + "/gameday");
  chaosd::testing::writeFile(dir_ + "/gameday/submit.sh", script);
  chaosd::testing::writeFile(
      dir_ + "/gameday/experiment.yaml",
      replaceAll(readFile(data("replica.yaml")), "\"18481\"", "\"" + std::to_string(port_) + "\""));

  int status = -1;
  const std::string out = runCommand(
      "GAMEDAY=gd1 NODE_NAME=node-a1 /bin/sh " + dir_ + "/gameday/submit.sh 2>&1", &status);
  ASSERT_EQ(status, 0) << out << daemon.log();
  const std::string hostDir = dir_ + "/reports/gd1/hosts/node-a1";
  const Json run = Json::parse(readFile(hostDir + "/run.json"));
  const Json report = Json::parse(readFile(hostDir + "/report.json"), nullptr, false);
  ASSERT_TRUE(report.is_object()) << out;
  EXPECT_EQ(report["schema"], "chaosd.report/v1");
  EXPECT_EQ(report["runId"], run["id"]);
  EXPECT_EQ(report["faults"][0]["state"], "reverted");
  EXPECT_NE(out.find("ended with exit 0"), std::string::npos) << out;
  // What the report Job then runs over the volume's hosts/ folder.
  runCommand(std::string(CHAOSCTL_PATH) + " report --fleet " + dir_ + "/reports/gd1/hosts --out " +
                 dir_ + "/reports/gd1/fleet >/dev/null 2>&1",
             &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(
      Json::parse(readFile(dir_ + "/reports/gd1/fleet/fleet-report.json"))["hosts"][0]["host"],
      "node-a1");

  // A bad experiment: nothing runs, the pod fails with chaosctl's exit code (2).
  chaosd::testing::writeFile(dir_ + "/gameday/experiment.yaml", "apiVersion: chaosd/v1\n");
  runCommand("GAMEDAY=gd2 NODE_NAME=node-a1 /bin/sh " + dir_ + "/gameday/submit.sh 2>&1", &status);
  EXPECT_EQ(status, 2);
  EXPECT_FALSE(fs::exists(dir_ + "/reports/gd2/hosts/node-a1/report.json"));
}

}  // namespace
}  // namespace chaosd
