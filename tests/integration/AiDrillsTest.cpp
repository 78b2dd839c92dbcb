// The three AI drills of experiments/examples/ (demo/model-demo.py), for real through
// chaosctl run with short windows: each hypothesis holds (exit 0), and the report carries
// what each drill is about: the corrupted reload refused while the file on disk is intact; the
// load's λ, L and W per phase with a replica killed; checkpoints refused with ENOSPC while the
// last complete one loads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::readReport;
using chaosd::testing::runDirIn;
using chaosd::testing::runShell;

class AiDrillsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/chaosd-ai-drill-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    if (root_.empty()) return;
    runShell(std::string(CHAOSCTL_PATH) + " recover --force --state-dir " + root_ + "/state");
    if (!mounted_.empty()) runShell("umount -l " + mounted_);
    fs::remove_all(root_);
  }

  // Runs the example with `vars`; its report.
  nlohmann::json run(const std::string& example, const std::string& vars, int* status) {
    const std::string cmd = std::string(CHAOSCTL_PATH) + " run --state-dir " + root_ +
                            "/state --report-dir " + root_ + "/reports " + vars + " " +
                            CHAOSD_SOURCE_DIR + "/experiments/examples/" + example;
    output_ = runShell(cmd, status);
    return readReport(runDirIn(root_ + "/reports"));
  }

  static const nlohmann::json* loadPhase(const nlohmann::json& report, const std::string& phase) {
    if (!report.contains("load")) return nullptr;
    for (const auto& p : report["load"]["phases"]) {
      if (p["phase"] == phase) return &p;
    }
    return nullptr;
  }

  std::string root_;
  std::string output_;
  std::string mounted_;  // a tmpfs of the test's own, unmounted by TearDown
};

TEST_F(AiDrillsTest, CorruptWeightsAtReloadKeepTheOldModelServing) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(4);
  ASSERT_NE(port, 0);
  int st = -1;
  const auto report = run("ai-drill-corrupt-weights.yaml",
                          "--var window=3s --var rate=5 --var port=" + std::to_string(port) +
                              " --var workdir=" + root_ + "/model",
                          &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_EQ(st, 0) << output_ << report["reasons"].dump();
  const auto& corrupt = report["faults"][0];
  EXPECT_EQ(corrupt["type"], "file.corrupt");
  EXPECT_EQ(corrupt["state"], "reverted");
  EXPECT_GE(corrupt["observed"]["corrupted"].get<int>(), 1) << corrupt.dump();
  const auto* during = loadPhase(report, "during");
  ASSERT_NE(during, nullptr) << report.dump();
  EXPECT_NEAR((*during)["sentRate"].get<double>(), 5, 0.6);
  EXPECT_GT((*during)["inFlight"].get<double>(), 0);
}

TEST_F(AiDrillsTest, KillingAReplicaUnderLoadKeepsTimeToFirstToken) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(4);
  ASSERT_NE(port, 0);
  int st = -1;
  const auto report = run("ai-drill-kill-replica.yaml",
                          "--var window=3s --var rate=5 --var port=" + std::to_string(port) +
                              " --var workdir=" + root_ + "/model",
                          &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_EQ(st, 0) << output_ << report["reasons"].dump();
  EXPECT_EQ(report["faults"][0]["observed"]["died"], 1) << report["faults"][0].dump();
  for (const char* phase : {"before", "during", "after"}) {
    const auto* p = loadPhase(report, phase);
    ASSERT_NE(p, nullptr) << phase;
    EXPECT_GT((*p)["offeredRate"].get<double>(), 4) << phase;
    EXPECT_GT((*p)["littleRatio"].get<double>(), 0.5) << phase;
    EXPECT_LT((*p)["littleRatio"].get<double>(), 1.5) << phase;
  }
  bool streamed = false;
  for (const auto& v : report["probes"][0]["verdicts"]) {
    streamed = streamed || v["stream"]["firstEventNs"]["count"].get<int>() > 0;
  }
  EXPECT_TRUE(streamed);
}

TEST_F(AiDrillsTest, AFullCheckpointDiskLeavesTheLastCheckpointLoadable) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(1);
  ASSERT_NE(port, 0);
  int st = -1;
  const auto report = run("ai-drill-checkpoint-disk-full.yaml",
                          "--var window=3s --var ready_port=" + std::to_string(port) +
                              " --var workdir=" + root_ + "/ckpt",
                          &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_EQ(st, 0) << output_ << report["reasons"].dump();
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_GE(fault["observed"]["hit"].get<int>(), 1) << "no checkpoint write met the full disk";
}

// The same drill with a real full disk (ai-drill-checkpoint-disk-fill.yaml): the checkpoint
// directory is a 16 MiB tmpfs of the test's own, filled to 100% by disk.fill. The trainer meets
// the kernel's ENOSPC, the last complete checkpoint loads throughout, the fill is gone after,
// and the trainer wrote checkpoints again once it was.
TEST_F(AiDrillsTest, ARealFullCheckpointFilesystemLeavesTheLastCheckpointLoadable) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(1);
  ASSERT_NE(port, 0);
  const std::string dir = root_ + "/ckpt";
  fs::create_directories(dir);
  ASSERT_EQ(chaosd::testing::shellStatus("mount -t tmpfs -o size=16m chaosd-ckpt " + dir), 0);
  mounted_ = dir;
  int st = -1;
  const auto report = run(
      "ai-drill-checkpoint-disk-fill.yaml",
      "--var window=3s --var ready_port=" + std::to_string(port) + " --var workdir=" + dir, &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_EQ(st, 0) << output_ << report["reasons"].dump();
  const auto& fill = report["faults"][0];
  EXPECT_EQ(fill["type"], "disk.fill");
  EXPECT_EQ(fill["state"], "reverted");
  EXPECT_EQ(fill["observed"]["availBytesAfter"], 0) << fill.dump();
  EXPECT_EQ(fill["observed"]["removed"], true) << fill.dump();
  const std::string log =
      runShell("cat " + (runDirIn(root_ + "/reports") / "trainer.log").string());
  EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
  // No fill file left, and checkpoints written after the last one the full disk refused.
  int lastFailed = -1;
  int newest = -1;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename();
    EXPECT_FALSE(name.starts_with(".chaosd-fill")) << name;
    if (name.starts_with("ckpt-") && name.ends_with(".bin")) {
      newest = std::max(newest, std::stoi(name.substr(5)));
    }
  }
  for (size_t at = log.find("checkpoint "); at != std::string::npos;
       at = log.find("checkpoint ", at + 1)) {
    if (log.compare(log.find(' ', at + 11), 8, " failed:") == 0) {
      lastFailed = std::max(lastFailed, std::stoi(log.substr(at + 11)));
    }
  }
  EXPECT_GE(lastFailed, 0) << log;
  EXPECT_GT(newest, lastFailed) << "no checkpoint written after the fill was reverted\n" << log;
}

// Without a filesystem of its own, the drill would fill the one it shares: the before-phase
// probe finds no mount point and nothing is injected.
TEST_F(AiDrillsTest, TheRealFillDrillRefusesADirectoryWithoutAFilesystemOfItsOwn) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(1);
  ASSERT_NE(port, 0);
  fs::create_directories(root_ + "/ckpt");
  int st = -1;
  const auto report = run("ai-drill-checkpoint-disk-fill.yaml",
                          "--var window=1s --var ready_port=" + std::to_string(port) +
                              " --var workdir=" + root_ + "/ckpt",
                          &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_NE(st, 0) << output_;
  EXPECT_NE(output_.find("own-filesystem"), std::string::npos) << output_;
  for (const auto& f : report["faults"]) EXPECT_NE(f["state"], "reverted") << f.dump();
  for (const auto& e : fs::directory_iterator(root_ + "/ckpt")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".chaosd-fill")) << e.path();
  }
}

TEST_F(AiDrillsTest, SlowThenUnreadableWeightsAtReloadDoNotReachTheRequests) {
  const uint16_t port = chaosd::testing::freeLoopbackPorts(4);
  ASSERT_NE(port, 0);
  int st = -1;
  const auto report = run("ai-slow-unreadable-weights.yaml",
                          "--var window=3s --var rate=5 --var port=" + std::to_string(port) +
                              " --var workdir=" + root_ + "/model",
                          &st);
  ASSERT_FALSE(report.is_discarded()) << output_;
  EXPECT_EQ(st, 0) << output_ << report["reasons"].dump();
  for (const auto& f : report["faults"]) {
    if (f["type"] == "syscall.delay" || f["type"] == "syscall.error") {
      EXPECT_GE(f["observed"]["hit"].get<int>(), 1) << f.dump();
    }
  }
}

}  // namespace
}  // namespace chaosd
