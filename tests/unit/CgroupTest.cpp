#include <gtest/gtest.h>

#include <string>

#include "chaosd/base/Cgroup.h"

namespace chaosd {
namespace {

std::string fixture(const std::string& name) {
  return std::string(CHAOSD_SOURCE_DIR) + "/tests/data/proc/mountinfo/" + name;
}

TEST(CgroupTest, FindsUnifiedMountOnHybridLayout) {
  auto mount = cgroup2Mount(fixture("hybrid"));
  ASSERT_TRUE(mount.ok()) << mount.error().describe();
  EXPECT_EQ(*mount, "/sys/fs/cgroup/unified");
}

TEST(CgroupTest, FindsPureV2Mount) {
  auto mount = cgroup2Mount(fixture("pure-v2"));
  ASSERT_TRUE(mount.ok()) << mount.error().describe();
  EXPECT_EQ(*mount, "/sys/fs/cgroup");
}

TEST(CgroupTest, NoCgroup2IsNotFound) {
  auto mount = cgroup2Mount(fixture("no-cgroup2"));
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(mount.error().message().find("cgroup2"), std::string::npos);
}

TEST(CgroupTest, UnescapesOctalInMountPoint) {
  auto mount = cgroup2Mount(fixture("escaped"));
  ASSERT_TRUE(mount.ok()) << mount.error().describe();
  EXPECT_EQ(*mount, "/mnt/my cgroups\tv2\\x");
}

TEST(CgroupTest, PrefersWholeHierarchyOverSubtreeBindMount) {
  auto mount = cgroup2Mount(fixture("subtree"));
  ASSERT_TRUE(mount.ok()) << mount.error().describe();
  EXPECT_EQ(*mount, "/run/cgroup2");
}

TEST(CgroupTest, FallsBackToSubtreeMount) {
  auto mount =
      cgroup2MountFromText("60 26 0:24 /system.slice /srv/cg rw,relatime - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(mount.ok()) << mount.error().describe();
  EXPECT_EQ(*mount, "/srv/cg");
}

TEST(CgroupTest, IgnoresMalformedLinesAndEmptyText) {
  EXPECT_EQ(cgroup2MountFromText("").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cgroup2MountFromText("garbage\n41 31 0:38 / \n - cgroup2\n").error().code(),
            ErrorCode::kNotFound);
  // A trailing backslash or a short escape is kept verbatim.
  auto mount = cgroup2MountFromText("41 31 0:38 / /a\\04 rw - cgroup2 cgroup2 rw");
  ASSERT_TRUE(mount.ok());
  EXPECT_EQ(*mount, "/a\\04");
}

TEST(CgroupTest, MissingMountinfoIsAnError) {
  auto mount = cgroup2Mount(fixture("does-not-exist"));
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.error().code(), ErrorCode::kNotFound);
}

TEST(CgroupTest, ReadsThisMachine) {
  auto mount = cgroup2Mount();
  if (!mount.ok()) GTEST_SKIP() << mount.error().describe();
  EXPECT_EQ(mount->front(), '/');
}

TEST(CgroupTest, JoinsCgroupPathUnderMount) {
  auto dir = cgroup2Dir("/system.slice/app.service/", fixture("hybrid"));
  ASSERT_TRUE(dir.ok()) << dir.error().describe();
  EXPECT_EQ(*dir, "/sys/fs/cgroup/unified/system.slice/app.service");
  EXPECT_EQ(*cgroup2Dir("/", fixture("pure-v2")), "/sys/fs/cgroup");
}

TEST(CgroupTest, RejectsPathsEscapingTheHierarchy) {
  EXPECT_EQ(cgroup2Dir("system.slice", fixture("hybrid")).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(cgroup2Dir("/a/../../etc", fixture("hybrid")).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(cgroup2Dir("/..", fixture("hybrid")).error().code(), ErrorCode::kInvalid);
  EXPECT_TRUE(cgroup2Dir("/a..b/c", fixture("hybrid")).ok());
}

}  // namespace
}  // namespace chaosd
