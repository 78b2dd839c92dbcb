// The stress faults' undo record (what the guardian kills and removes) and the cgroup and PSI
// readers they rely on.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chaosd/base/Cgroup.h"
#include "injectors/FaultRegistry.h"
#include "injectors/resource/StressInjector.h"
#include "injectors/resource/StressRecords.h"

namespace chaosd {
namespace {

StressUndo cpuUndo() {
  StressUndo u;
  u.faultId = "run1-3";
  u.faultType = "cpu.stress";
  u.placement = "host";
  u.hostParent = "/sys/fs/cgroup/chaosd-faults";
  u.cgroups = {"/sys/fs/cgroup/chaosd-faults/chaosd-run1-3"};
  u.pressure = {""};
  u.workers = 2;
  u.load = 0.4;
  u.climb = std::chrono::seconds(5);
  u.duration = std::chrono::seconds(30);
  return u;
}

TEST(StressRecordsTest, RoundTrips) {
  auto back = StressUndo::fromJson(cpuUndo().toJson(), "run1-3");
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->cgroups, cpuUndo().cgroups);
  EXPECT_EQ(back->workers, 2);
  EXPECT_DOUBLE_EQ(back->load, 0.4);
  EXPECT_EQ(back->climb, std::chrono::seconds(5));
  EXPECT_EQ(back->duration, std::chrono::seconds(30));

  StressUndo m = cpuUndo();
  m.faultType = "memory.stress";
  m.size = 1 << 30;
  m.reserve = 256 << 20;
  m.rate = 64 << 20;
  m.mode = "locked";
  auto mb = StressUndo::fromJson(m.toJson());
  ASSERT_TRUE(mb.ok());
  EXPECT_EQ(mb->size, 1u << 30);
  EXPECT_EQ(mb->reserve, 256u << 20);
  EXPECT_EQ(mb->mode, "locked");
}

// The guardian kills whatever a record names: only cgroups named after the fault, by absolute
// path, are accepted.
TEST(StressRecordsTest, RefusesToTouchCgroupsThatAreNotTheFaults) {
  for (const std::string bad :
       {"/sys/fs/cgroup/system.slice", "/sys/fs/cgroup/chaosd-faults/chaosd-run1-4",
        "sys/fs/cgroup/chaosd-run1-3", "/sys/fs/cgroup/../chaosd-run1-3/../chaosd-run1-3"}) {
    SCOPED_TRACE(bad);
    StressUndo u = cpuUndo();
    u.cgroups = {bad};
    auto r = StressUndo::fromJson(u.toJson());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  }
  StressUndo u = cpuUndo();
  u.hostParent = "/sys/fs/cgroup";
  EXPECT_FALSE(StressUndo::fromJson(u.toJson()).ok()) << "the host parent is ours only";
  u = cpuUndo();
  u.faultId = "../x";
  EXPECT_FALSE(StressUndo::fromJson(u.toJson()).ok());
  EXPECT_FALSE(StressUndo::fromJson(cpuUndo().toJson(), "run1-4").ok()) << "another fault's";
  EXPECT_FALSE(StressUndo::fromJson({{"faultId", "x"}}).ok()) << "no type";
}

// The schema's checks across fields, as validate, plan and run apply them.
std::optional<ArgProblem> check(const char* type, const nlohmann::json& args,
                                bool allowFullCpu = false) {
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  const FaultType* t = registry.find(type);
  EXPECT_NE(t, nullptr);
  for (const auto& c : t->schema.constraints) {
    if (auto p = c(ArgContext{args, std::nullopt, false, allowFullCpu})) return p;
  }
  return std::nullopt;
}

TEST(StressRecordsTest, TheSchemaRefusesWhatWouldTakeTheMachineWhole) {
  const int cpus = usableCpus();
  auto every = check("cpu.stress", {{"load", 1.0}, {"workers", "all"}});
  ASSERT_TRUE(every.has_value());
  EXPECT_EQ(every->field, "workers");
  EXPECT_NE(every->message.find("allowFullCpu"), std::string::npos);
  EXPECT_FALSE(check("cpu.stress", {{"load", 1.0}, {"workers", "all"}}, true)) << "allowed";
  EXPECT_TRUE(check("cpu.stress", {{"load", 0.5}, {"workers", std::to_string(2 * cpus)}}))
      << "2 x CPUs at 50% is every CPU too";
  if (cpus > 1) {
    EXPECT_FALSE(check("cpu.stress", {{"load", 1.0}, {"workers", "1"}}));
  }
  EXPECT_EQ(check("cpu.stress", {{"load", 0.5}, {"workers", "0"}})->field, "workers");

  auto reserve = check("memory.stress", {{"size", 4096}, {"reserve", 1ULL << 50}});
  ASSERT_TRUE(reserve.has_value()) << "no machine has a PiB available";
  EXPECT_EQ(reserve->field, "reserve");
  EXPECT_NE(reserve->message.find("would take nothing"), std::string::npos);
  EXPECT_FALSE(check("memory.stress", {{"size", 4096}, {"reserve", 64 << 20}}));
  EXPECT_EQ(check("memory.stress", {{"size", 4096}, {"path", "/tmp"}})->field, "path");
}

TEST(CgroupReadersTest, ParsesPressureFiles) {
  auto p = parsePressure(
      "some avg10=12.50 avg60=3.00 avg300=0.75 total=123456789\n"
      "full avg10=1.25 avg60=0.00 avg300=0.00 total=42\n");
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_DOUBLE_EQ(p->someAvg10, 12.5);
  EXPECT_EQ(p->someTotalUs, 123456789u);
  EXPECT_DOUBLE_EQ(p->fullAvg10, 1.25);
  EXPECT_EQ(p->fullTotalUs, 42u);
  auto someOnly = parsePressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
  ASSERT_TRUE(someOnly.ok());
  EXPECT_EQ(someOnly->someTotalUs, 7u);
  EXPECT_FALSE(parsePressure("").ok());
  EXPECT_FALSE(parsePressure("full avg10=1 total=2\n").ok());
}

TEST(CgroupReadersTest, ReadsAProcessesV2PathOnHybridAndPureMachines) {
  char tmpl[] = "/tmp/chaosd-cgtest-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  std::filesystem::create_directories(root + "/7");
  std::filesystem::create_directories(root + "/8");
  std::ofstream(root + "/7/cgroup")
      << "12:memory:/docker/abc\n1:name=systemd:/x\n0::/system.slice/app.service\n";
  std::ofstream(root + "/8/cgroup") << "0::/\n";
  auto hybrid = cgroup2PathOfPid(7, root);
  ASSERT_TRUE(hybrid.ok()) << hybrid.error().describe();
  EXPECT_EQ(*hybrid, "/system.slice/app.service");
  EXPECT_EQ(*cgroup2PathOfPid(8, root), "/");
  EXPECT_EQ(cgroup2PathOfPid(9, root).error().code(), ErrorCode::kNotFound);
  std::filesystem::remove_all(root);
}

TEST(CgroupReadersTest, FindsTheV1DirectoriesOfAProcessOnHybridMachines) {
  const std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "36 31 0:33 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
      "40 31 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  const std::string proc =
      "9:memory:/docker/abc/app\n4:cpu,cpuacct:/system.slice/app.service\n"
      "3:blkio:/system.slice\n0::/system.slice/app.service\n";
  EXPECT_EQ(cgroupV1DirsFromText(proc, mountinfo, {"cpu", "cpuacct", "memory"}),
            (std::vector<std::string>{"/sys/fs/cgroup/memory/app",
                                      "/sys/fs/cgroup/cpu,cpuacct/system.slice/app.service"}));
  // A path outside the mounted subtree cannot be reached: left out.
  EXPECT_TRUE(cgroupV1DirsFromText("9:memory:/other\n", mountinfo, {"memory"}).empty());
  // The root of a hierarchy is its mount point.
  EXPECT_EQ(cgroupV1DirsFromText("3:blkio:/\n", mountinfo, {"blkio"}),
            (std::vector<std::string>{"/sys/fs/cgroup/blkio"}));
  // A pure v2 machine has no v1 lines.
  EXPECT_TRUE(cgroupV1DirsFromText("0::/x\n", mountinfo, {"memory"}).empty());
}

TEST(CgroupReadersTest, RemovingACgroupThatIsNotThereIsSuccess) {
  auto r = killAndRemoveCgroup("/tmp/chaosd-no-such-cgroup-dir", std::chrono::milliseconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->existed);
}

}  // namespace
}  // namespace chaosd
