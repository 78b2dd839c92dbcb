// The disk-fill example, for real through chaosctl: the WAL demo keeps storing while its
// filesystem holds our filler file, which is synced, sized as asked, and gone afterwards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace {

namespace fs = std::filesystem;
using chaosd::testing::readReport;
using chaosd::testing::runDirIn;
using chaosd::testing::runShell;

TEST(DiskFillExampleTest, DiskFillDemoExampleRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/var/tmp/chaosd-disk-demo-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const auto port = std::to_string(chaosd::testing::freeLoopbackPorts());
  const std::string cmd =
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root + "/state --report-dir " + root +
      "/reports --var window=2s --var port=" + port + " --var size=24MiB --var workdir=" + root +
      "/data " + CHAOSD_SOURCE_DIR + "/experiments/examples/disk-fill-demo.yaml";
  int st = -1;
  const std::string out = runShell(cmd, &st);
  EXPECT_EQ(st, 0) << out;
  const auto report = readReport(runDirIn(root + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["type"], "disk.fill");
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "fallocate");
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  EXPECT_EQ(report["outcome"], "ok") << out;
  EXPECT_EQ(report["execs"][0]["state"], "stopped");
  EXPECT_FALSE(fs::exists(root + "/data")) << "filler and the demo's log are gone";
  fs::remove_all(root);
}

}  // namespace
