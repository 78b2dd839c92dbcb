// The quickstart experiment as a user runs it (chaosctl run), on a kernel that has netem:
// backend auto must take netem there, and the run must detect the delay, revert it and leave
// nothing behind. Runs in scripts/vm-test (with --python: the demo service is Python); on a
// kernel without netem it skips (the quickstart stage of scripts/test covers NFQUEUE).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "injectors/network/NetemSupport.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

using chaosd::testing::runShell;

TEST(NetemVmQuickstart, BackendAutoTakesNetemAndTheDelayIsDetectedAndReverted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto netem = kernelHasNetem();
  ASSERT_TRUE(netem.ok()) << netem.error().describe();
  if (!*netem) GTEST_SKIP() << "this kernel has no netem (scripts/vm-test runs this)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/python3")) << "the demo service needs python3";
  char tmpl[] = "/tmp/chaosd-vmqs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  // Generous budget and delay: under TCG every request of the Python demo is slow.
  int st = -1;
  const std::string out =
      runShell(std::string(CHAOSCTL_PATH) + " run --state-dir " + (dir / "state").string() +
                   " --report-dir " + (dir / "reports").string() +
                   " --var window=2s --var budget=1s --var delay=1500ms " + CHAOSD_SOURCE_DIR +
                   "/experiments/examples/quickstart.yaml",
               &st);
  EXPECT_EQ(st, 1) << "deviated is the quickstart's expected verdict\n" << out;
  nlohmann::json report;
  for (const auto& e : std::filesystem::directory_iterator(dir / "reports")) {
    std::ifstream in(e.path() / "report.json");
    if (in) report = nlohmann::json::parse(in, nullptr, false);
  }
  ASSERT_TRUE(report.is_object()) << out;
  ASSERT_GE(report["faults"].size(), 2u) << report.dump(2);
  const auto& delay = report["faults"][0];
  EXPECT_EQ(delay["type"], "network.delay");
  EXPECT_EQ(delay["backend"], "netem") << "auto must take netem on this kernel";
  EXPECT_EQ(delay["state"], "reverted");
  ASSERT_FALSE(delay["impact"].empty());
  EXPECT_TRUE(delay["impact"][0]["detected"].get<bool>()) << delay.dump(2);
  EXPECT_TRUE(delay["impact"][0]["recovered"].get<bool>()) << delay.dump(2);
  std::printf(
      "[ measure  ] netem delay detected %.0f ms after apply, recovered %.0f ms after "
      "revert\n",
      delay["impact"][0]["detectedAfterNs"].get<double>() / 1e6,
      delay["impact"][0]["recoveredAfterNs"].get<double>() / 1e6);
  EXPECT_FALSE(std::filesystem::exists("/run/netns/chaosd-quickstart"));
  EXPECT_FALSE(std::filesystem::exists("/run/netns/chaosd-quickstart-front"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chaosd
