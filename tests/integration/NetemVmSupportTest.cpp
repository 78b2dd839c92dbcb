// kernelHasNetem() against what the running kernel says about itself: its config, or the
// sch_netem module on disk. Runs here (no netem: false) and in scripts/vm-test's stock kernel
// (true), where the suite's NetemVm prefix selects it. The probe must not touch the host's
// interfaces: the qdiscs of `lo` are the same afterwards.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "injectors/network/NetemSupport.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

using chaosd::testing::runCommand;

// y, m or n from /proc/config.gz; "" when the kernel does not publish its config.
std::string configValue(const std::string& option) {
  if (!std::filesystem::exists("/proc/config.gz")) return "";
  const std::string line =
      runCommand("zcat /proc/config.gz | grep -E '^(# )?" + option + "[= ]' 2>/dev/null");
  if (line.find(option + "=y") != std::string::npos) return "y";
  if (line.find(option + "=m") != std::string::npos) return "m";
  return "n";
}

bool netemModuleOnDisk() {
  utsname u{};
  ::uname(&u);
  const std::filesystem::path dir =
      std::filesystem::path("/lib/modules") / u.release / "kernel/net/sched";
  for (const char* name : {"sch_netem.ko", "sch_netem.ko.xz", "sch_netem.ko.zst"}) {
    if (std::filesystem::exists(dir / name)) return true;
  }
  return false;
}

TEST(NetemVmSupportTest, AgreesWithTheKernelsOwnAccountAndTouchesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (it unshares a network namespace)";
  const std::string lo = runCommand("tc qdisc show dev lo 2>/dev/null");
  auto has = kernelHasNetem();
  ASSERT_TRUE(has.ok()) << has.error().describe();
  const std::string config = configValue("CONFIG_NET_SCH_NETEM");
  const bool expected = config.empty() ? netemModuleOnDisk() : config != "n";
  EXPECT_EQ(*has, expected) << "CONFIG_NET_SCH_NETEM=" << config
                            << ", module on disk: " << netemModuleOnDisk();
  EXPECT_EQ(runCommand("tc qdisc show dev lo 2>/dev/null"), lo)
      << "the probe changed the host's lo";
  auto again = kernelHasNetem();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *has) << "cached";
  std::printf("[ measure  ] this kernel %s netem\n", *has ? "has" : "has no");
}

}  // namespace
}  // namespace chaosd
