// io.throttle without root: its undo record (what the guardian writes back, and what it refuses
// to touch), the readers of io.max, blkio.throttle.*, io.stat, /proc/PID/cgroup and mountinfo,
// the partition-to-disk mapping over a fixture sysfs tree, and the schema's constraint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "injectors/resource/IoThrottleFiles.h"
#include "injectors/resource/IoThrottleInjector.h"
#include "injectors/resource/IoThrottleRecords.h"
#include "tests/support/BuiltinFaults.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

const IoCgroupMounts kHybrid{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/blkio", "/"};

IoThrottleUndo v1Undo() {
  IoThrottleUndo u;
  u.faultId = "run1-2";
  u.mode = "v1";
  u.device = "7:3";
  u.deviceName = "/dev/loop3";
  u.path = "/mnt/data";
  const std::string dir = "/sys/fs/cgroup/blkio/app";
  u.cgroups = {{dir,
                {{dir + "/blkio.throttle.write_bps_device", "", "1048576"},
                 {dir + "/blkio.throttle.read_iops_device", "200", "50"}}}};
  return u;
}

TEST(IoThrottleTest, RecordRoundTrips) {
  auto back = IoThrottleUndo::fromJson(v1Undo().toJson(), "run1-2", kHybrid);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->toJson(), v1Undo().toJson());
  EXPECT_EQ(back->cgroups[0].files[1].previous, "200");

  IoThrottleUndo v2;
  v2.faultId = "run1-3";
  v2.mode = "v2";
  v2.device = "254:0";
  v2.cgroups = {{"/sys/fs/cgroup/unified/app.slice/db",
                 {{"/sys/fs/cgroup/unified/app.slice/db/io.max",
                   "rbps=10485760 wbps=max riops=max wiops=max", "wbps=1048576 wiops=10"}}}};
  auto v2back = IoThrottleUndo::fromJson(v2.toJson(), "run1-3", kHybrid);
  ASSERT_TRUE(v2back.ok()) << v2back.error().describe();
  EXPECT_EQ(v2back->toJson(), v2.toJson());

  EXPECT_FALSE(IoThrottleUndo::fromJson(v1Undo().toJson(), "run1-9", kHybrid).ok())
      << "another fault's record";
}

// The guardian writes "MAJ:MIN previous" into whatever file a record names: only the throttle
// files of cgroups under the matching mount, with values in the kernel's syntax, pass.
TEST(IoThrottleTest, RecordRefusesForeignFilesAndValues) {
  auto refused = [](auto mutate) {
    IoThrottleUndo u = v1Undo();
    mutate(u);
    return !IoThrottleUndo::fromJson(u.toJson(), "run1-2", kHybrid).ok();
  };
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.cgroups[0].files[0].file = "/etc/passwd"; }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].files[0].file = "/sys/fs/cgroup/blkio/app/cgroup.procs";
  }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].files[0].file = "/sys/fs/cgroup/blkio/other/blkio.throttle.write_bps_device";
  })) << "a file of another cgroup than the recorded one";
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].dir = "/sys/fs/cgroup/blkio";
    u.cgroups[0].files = {{"/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device", "", "1"}};
  })) << "the root cgroup";
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].dir = "/sys/fs/cgroup/blkio/../memory/x";
    u.cgroups[0].files = {
        {"/sys/fs/cgroup/blkio/../memory/x/blkio.throttle.write_bps_device", "", "1"}};
  }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].dir = "/tmp/app";
    u.cgroups[0].files = {{"/tmp/app/blkio.throttle.write_bps_device", "", "1"}};
  })) << "not under a cgroup mount";
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.mode = "v2"; })) << "v1 files in a v2 record";
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.cgroups[0].files[0].written = "1\n8:0 1"; }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.cgroups[0].files[1].previous = "max"; }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.device = "7:3 8:0"; }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) {
    u.cgroups[0].files.push_back(u.cgroups[0].files[0]);
  })) << "a file named twice";
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.mode = "v3"; }));
  EXPECT_TRUE(refused([](IoThrottleUndo& u) { u.faultId = "../x"; }));

  IoThrottleUndo v2;
  v2.faultId = "run1-2";
  v2.mode = "v2";
  v2.device = "8:0";
  const std::string dir = "/sys/fs/cgroup/unified/app";
  v2.cgroups = {{dir, {{dir + "/io.max", "", "wbps=1"}}}};
  EXPECT_TRUE(IoThrottleUndo::fromJson(v2.toJson(), "run1-2", kHybrid).ok());
  v2.cgroups[0].files[0].written = "wbps=1 wbps=2";
  EXPECT_FALSE(IoThrottleUndo::fromJson(v2.toJson(), "run1-2", kHybrid).ok());
  v2.cgroups[0].files[0].written = "rlat=1";
  EXPECT_FALSE(IoThrottleUndo::fromJson(v2.toJson(), "run1-2", kHybrid).ok());
  v2.cgroups[0].files[0].written = "wbps=1";
  EXPECT_FALSE(IoThrottleUndo::fromJson(v2.toJson(), "run1-2", IoCgroupMounts{}).ok())
      << "no cgroup2 mounted";
}

TEST(IoThrottleTest, ParsesThrottleFilesAndIoMax) {
  const std::string v1 = "8:0 2097152\n7:3 1048576\n";
  EXPECT_EQ(throttleRuleOf(v1, "7:3"), "1048576");
  EXPECT_EQ(throttleRuleOf(v1, "8:0"), "2097152");
  EXPECT_EQ(throttleRuleOf(v1, "7:30"), std::nullopt);
  EXPECT_EQ(throttleRuleOf("", "7:3"), std::nullopt);
  EXPECT_EQ(throttleRuleOf("17:3 5\n", "7:3"), std::nullopt);

  const std::string ioMax =
      "8:0 rbps=max wbps=max riops=100 wiops=max\n"
      "7:3 rbps=10485760 wbps=1048576 riops=max wiops=max\n";
  EXPECT_EQ(ioMaxLineOf(ioMax, "7:3"), "rbps=10485760 wbps=1048576 riops=max wiops=max");
  EXPECT_EQ(ioMaxLineOf(ioMax, "7:4"), std::nullopt);
  EXPECT_EQ(ioMaxValue(*ioMaxLineOf(ioMax, "7:3"), "wbps"), "1048576");
  EXPECT_EQ(ioMaxValue(*ioMaxLineOf(ioMax, "8:0"), "riops"), "100");
  EXPECT_EQ(ioMaxValue("", "rbps"), "max");

  EXPECT_EQ(restoreText("v1", "7:3", ""), "7:3 0");
  EXPECT_EQ(restoreText("v1", "7:3", "10485760"), "7:3 10485760");
  EXPECT_EQ(restoreText("v2", "7:3", ""), "7:3 rbps=max wbps=max riops=max wiops=max");
  EXPECT_EQ(restoreText("v2", "7:3", "rbps=1 wbps=max riops=max wiops=max"),
            "7:3 rbps=1 wbps=max riops=max wiops=max");
}

TEST(IoThrottleTest, ParsesIoCounters) {
  auto c = ioStatOf(
      "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"
      "7:3 rbytes=4096 wbytes=4194304 rios=1 wios=1024 dbytes=0 dios=0\n",
      "7:3");
  EXPECT_EQ(c.readBytes, 4096u);
  EXPECT_EQ(c.writeBytes, 4194304u);
  EXPECT_EQ(c.readOps, 1u);
  EXPECT_EQ(c.writeOps, 1024u);
  EXPECT_EQ(ioStatOf("", "7:3").writeBytes, 0u);

  auto v1 = blkioCountersOf(
      "7:3 Read 8192\n7:3 Write 4194304\n7:3 Sync 4194304\n7:3 Async 8192\n7:3 Discard 0\n"
      "7:3 Total 4202496\n8:0 Write 5\nTotal 4202501\n",
      "7:3 Read 2\n7:3 Write 1024\n7:3 Total 1026\nTotal 1026\n", "7:3");
  EXPECT_EQ(v1.readBytes, 8192u);
  EXPECT_EQ(v1.writeBytes, 4194304u);
  EXPECT_EQ(v1.readOps, 2u);
  EXPECT_EQ(v1.writeOps, 1024u);
}

TEST(IoThrottleTest, FindsTheMountsAndTheBlkioCgroup) {
  const std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "50 23 7:3 / /mnt/my\\040data rw - ext4 /dev/loop3 rw\n";
  auto m = ioCgroupMountsFromText(mountinfo);
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
  EXPECT_EQ(m.blkioV1, "/sys/fs/cgroup/blkio");
  EXPECT_EQ(m.blkioRoot, "/");
  EXPECT_EQ(fstypeOfDevice(mountinfo, "0:28"), "tmpfs");
  EXPECT_EQ(fstypeOfDevice(mountinfo, "7:3"), "ext4");
  EXPECT_EQ(fstypeOfDevice(mountinfo, "9:9"), "");

  auto pureV2 = ioCgroupMountsFromText("29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  EXPECT_EQ(pureV2.v2, "/sys/fs/cgroup");
  EXPECT_EQ(pureV2.blkioV1, "");
  auto coMounted =
      ioCgroupMountsFromText("38 31 0:35 / /cg/blkio,io rw - cgroup cgroup rw,blkio,net_cls\n");
  EXPECT_EQ(coMounted.blkioV1, "/cg/blkio,io");

  EXPECT_EQ(*blkioPathFromText("9:name=systemd:/\n7:blkio:/chaosd-test-1\n0::/\n"),
            "/chaosd-test-1");
  EXPECT_EQ(*blkioPathFromText("3:cpu,blkio:/a/b\n"), "/a/b");
  EXPECT_FALSE(blkioPathFromText("0::/x\n").ok());
}

class IoThrottleSysfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("chaosd-sysfs-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    // /sys/dev/block/MAJ:MIN are symlinks into /sys/devices; a partition's directory sits inside
    // its disk's and has a `partition` file.
    const fs::path disk = root_ / "devices/pci0/virtio1/block/vda";
    fs::create_directories(disk / "vda1");
    write(disk / "dev", "254:0\n");
    write(disk / "uevent", "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n");
    write(disk / "vda1/dev", "254:1\n");
    write(disk / "vda1/partition", "1\n");
    write(disk / "vda1/uevent", "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\n");
    fs::create_directories(root_ / "dev/block");
    fs::create_directory_symlink("../../devices/pci0/virtio1/block/vda", root_ / "dev/block/254:0");
    fs::create_directory_symlink("../../devices/pci0/virtio1/block/vda/vda1",
                                 root_ / "dev/block/254:1");
  }
  void TearDown() override { fs::remove_all(root_); }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  fs::path root_;
};

TEST_F(IoThrottleSysfsTest, MapsAPartitionToItsDisk) {
  auto part = wholeDiskOf(254, 1, root_.string());
  ASSERT_TRUE(part.ok()) << part.error().describe();
  EXPECT_EQ(part->device, "254:0");
  EXPECT_EQ(part->partitionOf, "254:1");
  EXPECT_EQ(part->name, "/dev/vda");

  auto disk = wholeDiskOf(254, 0, root_.string());
  ASSERT_TRUE(disk.ok());
  EXPECT_EQ(disk->device, "254:0");
  EXPECT_EQ(disk->partitionOf, "");

  auto missing = wholeDiskOf(8, 0, root_.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("8:0"), std::string::npos);
}

TEST(IoThrottleTest, SchemaAsksForAtLeastOneLimit) {
  const auto* type = testing::builtinFaults().find("io.throttle");
  ASSERT_NE(type, nullptr);
  ASSERT_EQ(type->schema.constraints.size(), 1u);
  nlohmann::json none = {{"path", "/var/lib/db"}};
  auto problem = type->schema.constraints[0](ArgContext{none, std::nullopt});
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->message.find("writeBps"), std::string::npos);
  nlohmann::json one = {{"path", "/var/lib/db"}, {"writeIops", 10}};
  EXPECT_FALSE(type->schema.constraints[0](ArgContext{one, std::nullopt}).has_value());
  EXPECT_EQ(type->schema.find("readIops")->min, 1);
  EXPECT_TRUE(type->schema.find("path")->required);
}

}  // namespace
}  // namespace chaosd
