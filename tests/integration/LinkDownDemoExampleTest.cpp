// The link-down-demo example, for real through chaosctl: network.down on the demo's replica link
// cuts the front off from its replicas (verdict deviated, exit 1), the revert brings the link
// back with its address, nothing is left, and the demo's namespaces are gone afterwards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
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

TEST(LinkDownDemoExampleTest, LinkDownDemoExampleRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/chaosd-lddemo-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const auto port = std::to_string(chaosd::testing::freeLoopbackPorts());
  const std::string netns = "chaosd-lddemo-t" + std::to_string(::getpid());
  const std::string cmd = std::string(CHAOSCTL_PATH) + " run --state-dir " + root +
                          "/state --report-dir " + root +
                          "/reports --var window=2s --var port=" + port + " --var netns=" + netns +
                          " " + CHAOSD_SOURCE_DIR + "/experiments/examples/link-down-demo.yaml";
  int st = -1;
  const std::string out = runShell(cmd, &st);
  EXPECT_EQ(st, 1) << "deviated\n" << out;
  const auto report = readReport(runDirIn(root + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  EXPECT_EQ(report["outcome"], "deviated") << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["type"], "network.down");
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "rtnetlink");
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  EXPECT_EQ(report["auditClean"], true);
  EXPECT_NE(out.find("probe through-front: FAILED"), std::string::npos) << out;
  std::printf("[ report   ] %s\n", fault.dump().c_str());
  EXPECT_FALSE(fs::exists("/run/netns/" + netns)) << "the demo removed its namespaces";
  EXPECT_FALSE(fs::exists("/run/netns/" + netns + "-front"));
  fs::remove_all(root);
}

}  // namespace
