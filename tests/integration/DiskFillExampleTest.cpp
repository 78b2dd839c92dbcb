// The disk-fill example, for real through chaosctl: the WAL demo keeps storing while its
// filesystem holds our filler file, which is synced, sized as asked, and gone afterwards.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

namespace fs = std::filesystem;

TEST(DiskFillExampleTest, DiskFillDemoExampleRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/var/tmp/chaosd-disk-demo-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const auto port = std::to_string(30000 + (::getpid() + 7) % 20000);
  const std::string cmd =
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root + "/state --report-dir " + root +
      "/reports --var window=2s --var port=" + port + " --var size=24MiB --var workdir=" + root +
      "/data " + CHAOSD_SOURCE_DIR + "/experiments/examples/disk-fill-demo.yaml 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  EXPECT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0) << out;
  fs::path runDir;
  for (const auto& e : fs::directory_iterator(root + "/reports")) runDir = e.path();
  std::ifstream in(runDir / "report.json");
  const auto report = nlohmann::json::parse(in);
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
