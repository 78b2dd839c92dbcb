// The dns-error demo for real through chaosctl: its own dnsmasq in a namespace, the db names
// answered NXDOMAIN during the fault while web.internal is untouched, the counts per name in
// the report, and nothing of chaosd left in the clients' namespace.
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

TEST(DnsExampleTest, DnsErrorDemoRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (!fs::exists("/usr/sbin/dnsmasq") || !fs::exists("/usr/bin/dig")) {
    GTEST_SKIP() << "dnsmasq or dig missing (scripts/bootstrap installs them)";
  }
  char tmpl[] = "/var/tmp/chaosd-dns-example-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const std::string id = std::to_string(::getpid() % 10000);
  const std::string netns = "chaosd-dnsex-" + id;
  const std::string port = std::to_string(chaosd::testing::freeLoopbackPorts());
  int st = -1;
  const std::string out = runShell(
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root + "/state --report-dir " + root +
          "/reports --var port=" + port + " --var netns=" + netns + " --var link=dnsx" + id +
          " --var window=2s " + CHAOSD_SOURCE_DIR + "/experiments/examples/dns-error-demo.yaml",
      &st);
  EXPECT_EQ(st, 1) << "the db-name probe fails during the fault: deviated\n" << out;
  auto report = readReport(runDirIn(root + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["type"], "dns.error");
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "nfqueue");
  EXPECT_TRUE(fault["leftovers"].empty()) << fault.dump();
  const auto& names = fault["observed"]["names"];
  std::printf("[ measure  ] dns-error-demo: %s\n", fault["observed"].dump().c_str());
  EXPECT_GT(names["api.db.internal"]["answered"].get<int>(), 0) << fault.dump();
  EXPECT_EQ(names["web.internal"]["matched"], 0) << fault.dump();
  // The TCP probe (dig +tcp) resolves before and after, and gets the error during the fault.
  for (const auto& probe : report["probes"]) {
    if (probe["name"] != "db-name-tcp") continue;
    for (const auto& v : probe["verdicts"]) {
      EXPECT_EQ(v["held"], v["phase"] != "during") << v.dump();
    }
  }
  EXPECT_FALSE(fs::exists("/run/netns/" + netns)) << "the demo removed its namespaces";
  fs::remove_all(root);
}

}  // namespace
}  // namespace chaosd
