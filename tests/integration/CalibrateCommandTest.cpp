// `chaosctl calibrate`, the real binary: an experiment with a disk.fill step runs three times as
// an A/A test (the fill replaced by a pause: nothing is written to the filled path), the
// calibration file records the statistical probe's phases, and `chaosctl run --calibration`
// takes it, or refuses one of another experiment before anything runs.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::makeTempDir;
using chaosd::testing::readFile;
using chaosd::testing::readReport;
using chaosd::testing::runCommand;
using chaosd::testing::runShell;

// A loopback port nobody listens on now (the kernel's pick; free again when the socket closes).
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool hasFiller(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(".chaosd-fill-", 0) == 0) return true;
  }
  return false;
}

class CalibrateCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    root_ = makeTempDir("chaosd-calibrate");
    ASSERT_FALSE(root_.empty());
    fs::create_directories(root_ + "/www");
    fs::create_directories(root_ + "/data");
    std::ofstream(root_ + "/www/index.html") << "ok\n";
    const int port = freePort();
    ASSERT_GT(port, 0);
    experiment_ = writeExperiment("calib-test", port);
  }
  void TearDown() override {
    if (root_.empty()) return;
    runShell(chaosctl() + " recover --force --state-dir " + root_ + "/state");
    fs::remove_all(root_);
  }

  std::string writeExperiment(const std::string& name, int port) {
    const std::string p = std::to_string(port);
    const std::string file = root_ + "/" + name + ".yaml";
    std::ofstream(file)
        << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: " << name << "}\n"
        << "targets:\n  web:\n    exec:\n      argv: [/usr/bin/python3, -m, http.server, '" << p
        << "', --bind, 127.0.0.1, --directory, " << root_ << "/www]\n"
        << "      ready:\n        tcp: {host: 127.0.0.1, port: " << p << "}\n"
        << "        within: 10s\n  data:\n    path: " << root_ << "/data\n"
        << "steadyState:\n  baseline: {duration: 1s}\n  recovery: {duration: 1s}\n"
        << "  probes:\n    - name: web\n      http: {url: 'http://127.0.0.1:" << p << "/'}\n"
        << "      every: 20ms\n      timeout: 1s\n"
        << "      tolerance: {status: 200, baseline: {alpha: 0.05, quantile: 0.9}}\n"
        << "method:\n  - {name: fill, fault: disk.fill, target: data, args: {size: 1MiB}, "
           "duration: 1s}\n"
        << "report: {dir: " << root_ << "/reports}\n";
    return file;
  }

  std::string chaosctl() const { return CHAOSCTL_PATH; }
  std::string stateDir() const { return " --state-dir " + root_ + "/state "; }
  size_t reportFolders() const {
    std::error_code ec;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_ + "/reports", ec)) ++n;
    return n;
  }

  std::string root_;
  std::string experiment_;
};

// The tally of one phase of the probe "web" in a calibration document.
const nlohmann::json* phaseOf(const nlohmann::json& doc, const std::string& phase) {
  for (const auto& p : doc["phases"]) {
    if (p["probe"] == "web" && p["phase"] == phase) return &p;
  }
  return nullptr;
}

TEST_F(CalibrateCommandTest, ThreeRunsWithNoFaultThenARunCarriesTheCalibration) {
  // Watch the filled path for chaosd's filler file while the calibration runs.
  std::atomic<bool> done{false};
  std::atomic<bool> filled{false};
  std::thread watcher([&] {
    while (!done) {
      if (hasFiller(root_ + "/data")) filled = true;
      std::this_thread::sleep_for(5ms);
    }
  });
  int st = -1;
  const std::string out =
      runCommand(chaosctl() + " calibrate --runs 3 -o json" + stateDir() + experiment_, &st);
  done = true;
  watcher.join();
  EXPECT_FALSE(filled) << "a calibration applied the disk.fill";
  ASSERT_TRUE(st == 0 || st == 1) << "exit " << st << "\n" << out;
  const auto doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  EXPECT_EQ(doc["schema"], "chaosd.calibration/v1");
  EXPECT_EQ(doc["experiment"], "calib-test");
  EXPECT_EQ(doc["runs"], 3);
  EXPECT_EQ(doc["experimentSha256"].get<std::string>().size(), 64u);
  bool exceeded = false;
  for (const char* phase : {"during", "after", "both"}) {
    const auto* p = phaseOf(doc, phase);
    ASSERT_NE(p, nullptr) << phase << ": " << doc.dump();
    EXPECT_EQ((*p)["runs"], 3) << phase;
    // 3 runs: at 5% (and 10% for both) one false alarm is within, two are not.
    EXPECT_EQ((*p)["allowedFalseAlarms"], 1) << phase;
    EXPECT_EQ((*p)["exceeded"], (*p)["falseAlarms"].get<int>() > 1) << phase;
    if (phase != std::string("both")) exceeded = exceeded || (*p)["exceeded"].get<bool>();
  }
  EXPECT_EQ(st, exceeded ? 1 : 0) << out;

  // The file, and three run folders whose reports list no fault.
  const std::string calibration = doc["calibrationFile"];
  EXPECT_EQ(calibration, doc["folder"].get<std::string>() + "/calibration.json");
  const auto file = nlohmann::json::parse(readFile(calibration), nullptr, false);
  ASSERT_FALSE(file.is_discarded());
  EXPECT_EQ(file["runs"], 3);
  ASSERT_NE(phaseOf(file, "during"), nullptr);
  for (const char* run : {"run-01", "run-02", "run-03"}) {
    const auto report = readReport(fs::path(doc["folder"].get<std::string>()) / run);
    ASSERT_FALSE(report.is_discarded()) << run;
    EXPECT_TRUE(report["faults"].empty()) << run << ": " << report["faults"].dump();
  }
  EXPECT_FALSE(hasFiller(root_ + "/data"));

  // A run with that calibration runs as usual.
  const size_t before = reportFolders();
  const std::string ran =
      runShell(chaosctl() + " run --calibration " + calibration + stateDir() + experiment_, &st);
  EXPECT_TRUE(st == 0 || st == 1) << "exit " << st << "\n" << ran;
  EXPECT_NE(ran.find("calibration: 2 probe phase(s)"), std::string::npos) << ran;
  EXPECT_EQ(reportFolders(), before + 1);

  // One of another experiment is refused before anything runs.
  nlohmann::json other = file;
  other["experiment"] = "another";
  const std::string otherPath = root_ + "/other.json";
  std::ofstream(otherPath) << other.dump();
  const std::string refused =
      runShell(chaosctl() + " run --calibration " + otherPath + stateDir() + experiment_, &st);
  EXPECT_EQ(st, 2) << refused;
  EXPECT_NE(refused.find(otherPath), std::string::npos) << refused;
  EXPECT_NE(refused.find("calibrates experiment 'another', not 'calib-test'"), std::string::npos)
      << refused;
  EXPECT_EQ(reportFolders(), before + 1) << "a refused run made a run folder";
}

TEST_F(CalibrateCommandTest, BadInputDoesNothing) {
  int st = -1;
  std::string out = runShell(chaosctl() + " calibrate --runs 0" + stateDir() + experiment_, &st);
  EXPECT_EQ(st, 2) << out;
  // An experiment with no statistical probe has nothing to calibrate.
  std::string text = readFile(experiment_);
  const std::string stat = ", baseline: {alpha: 0.05, quantile: 0.9}";
  text.erase(text.find(stat), stat.size());
  const std::string plain = root_ + "/plain.yaml";
  std::ofstream(plain) << text;
  out = runShell(chaosctl() + " calibrate" + stateDir() + plain, &st);
  EXPECT_EQ(st, 2) << out;
  EXPECT_NE(out.find("nothing to calibrate"), std::string::npos) << out;
  EXPECT_EQ(reportFolders(), 0u);
  EXPECT_FALSE(fs::exists(root_ + "/state")) << "the journal was opened for bad input";
}

}  // namespace
}  // namespace chaosd
