// The http-fault demo for real through chaosctl: its own front (circuit breaker, fallback) and
// dependency in namespaces, half of the dependency's answers 503 and half delayed 2 s during the
// fault, the front's latency objective held, the counts per rule in the report, and nothing of
// chaosd left in the front's namespace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using testing::readReport;
using testing::runDirIn;
using testing::runShell;

TEST(HttpExampleTest, HttpFaultDemoRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/var/tmp/chaosd-http-example-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const std::string id = std::to_string(::getpid() % 10000);
  const std::string netns = "chaosd-httpex-" + id;
  const std::string port = std::to_string(chaosd::testing::freeLoopbackPorts());
  int st = -1;
  const std::string out = runShell(
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root + "/state --report-dir " + root +
          "/reports --var port=" + port + " --var netns=" + netns + " --var link=httpx" + id +
          " --var window=4s " + CHAOSD_SOURCE_DIR + "/experiments/examples/http-fault-demo.yaml",
      &st);
  EXPECT_EQ(st, 0) << "the breaker keeps the front's objective: held\n" << out;
  auto report = readReport(runDirIn(root + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["type"], "http.fault");
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "proxy");
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  std::printf("[ measure  ] http-fault-demo: %s\n", fault["observed"].dump().c_str());
  const auto& rule = fault["observed"]["rules"][0];
  EXPECT_GT(rule["matched"].get<int>(), 0) << fault.dump();
  EXPECT_GT(rule["aborted"].get<int>() + rule["delayed"].get<int>(), 0) << fault.dump();
  EXPECT_FALSE(fs::exists("/run/netns/" + netns)) << "the demo removed its namespaces";
  fs::remove_all(root);
}

}  // namespace
}  // namespace chaosd
