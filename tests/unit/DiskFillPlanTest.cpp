// The disk.fill plan from statvfs numbers: df's use% and the bytes that reach a target usage.
// No filesystem is touched.
#include <gtest/gtest.h>

#include <cstdint>

#include "injectors/disk/DiskFillInjector.h"
#include "injectors/disk/IoLoadInjector.h"

namespace chaosd {
namespace {

// A fresh 128 MiB ext4 as statvfs reported it on the development machine (1 KiB blocks,
// 5% root reserve plus ext4's reserved clusters).
constexpr FsSpace kFreshExt4{1024, 117203, 117189, 108015};

uint64_t blocksAfterFill(const FsSpace& s, uint64_t bytes) { return bytes / s.blockSize; }

// The usage df would show after allocating `bytes` (each block leaves bfree and bavail).
double usageAfter(FsSpace s, uint64_t bytes) {
  uint64_t n = blocksAfterFill(s, bytes);
  s.freeBlocks -= n;
  s.availBlocks -= n;
  return dfUsage(s);
}

TEST(DiskFillPlanTest, DfUsageIsUsedOverUsedPlusAvailable) {
  // df prints 1% for the fresh ext4: 14 used of 14 + 108015.
  EXPECT_NEAR(dfUsage(kFreshExt4), 14.0 / (14 + 108015), 1e-12);
  // Root's reserve is neither: a disk with nothing available is 100% used.
  EXPECT_DOUBLE_EQ(dfUsage({4096, 1000, 50, 0}), 1.0);
  EXPECT_DOUBLE_EQ(dfUsage({4096, 1000, 1000, 1000}), 0.0);
  EXPECT_DOUBLE_EQ(dfUsage({4096, 0, 0, 0}), 0.0);      // an empty pseudo filesystem
  EXPECT_DOUBLE_EQ(dfUsage({4096, 100, 200, 0}), 0.0);  // nonsense numbers: no crash
}

TEST(DiskFillPlanTest, BytesToReachUsageLandsOnTheTargetWithinOneBlock) {
  uint64_t bytes = bytesToReachUsage(kFreshExt4, 0.9);
  // ceil(0.9 * 108029) - 14 = 97213 blocks.
  EXPECT_EQ(bytes, 97213u * 1024);
  EXPECT_GE(usageAfter(kFreshExt4, bytes), 0.9);
  EXPECT_LT(usageAfter(kFreshExt4, bytes - 1024), 0.9);
}

TEST(DiskFillPlanTest, ExactProductsAreNotRoundedUpByFloatingPointNoise) {
  // 0.9 * 100 is 90.00000000000001 in double: still 90 blocks, not 91.
  FsSpace empty{4096, 100, 100, 100};
  EXPECT_EQ(bytesToReachUsage(empty, 0.9), 90u * 4096);
  EXPECT_EQ(bytesToReachUsage(empty, 0.07), 7u * 4096);
  EXPECT_EQ(bytesToReachUsage(empty, 0.01), 1u * 4096);
}

TEST(DiskFillPlanTest, TmpfsHasNoReserve) {
  FsSpace tmpfs{4096, 16384, 16384, 16384};                 // 64 MiB, empty
  EXPECT_EQ(bytesToReachUsage(tmpfs, 0.9), 14746u * 4096);  // ceil(14745.6)
  EXPECT_EQ(bytesToReachUsage(tmpfs, 1.0), 16384u * 4096);
}

TEST(DiskFillPlanTest, AlreadyAtOrOverTheTargetNeedsNothing) {
  FsSpace half{4096, 1000, 500, 450};  // 500 used, 450 available: 52.6%
  EXPECT_EQ(bytesToReachUsage(half, 0.5), 0u);
  EXPECT_EQ(bytesToReachUsage(half, 500.0 / 950), 0u);  // exactly there
  EXPECT_GT(bytesToReachUsage(half, 0.6), 0u);
  FsSpace full{4096, 1000, 50, 0};
  EXPECT_EQ(bytesToReachUsage(full, 1.0), 0u);
  EXPECT_EQ(bytesToReachUsage(full, 0.99), 0u);
}

TEST(DiskFillPlanTest, NeverPlansMoreThanIsAvailable) {
  FsSpace s{512, 1000, 600, 550};
  EXPECT_EQ(bytesToReachUsage(s, 1.0), 550u * 512);
  EXPECT_EQ(bytesToReachUsage(s, 1.5), 550u * 512);  // clamped to 1
  EXPECT_EQ(bytesToReachUsage(s, 0.0), 0u);
  EXPECT_EQ(bytesToReachUsage(s, -0.5), 0u);
}

TEST(DiskFillPlanTest, LargeFilesystemsKeepBlockPrecision) {
  // 1 PiB in 4 KiB blocks (2^38 blocks), a quarter used, no reserve.
  const uint64_t blocks = 1ULL << 38;
  FsSpace big{4096, blocks, blocks - blocks / 4, blocks - blocks / 4};
  uint64_t bytes = bytesToReachUsage(big, 0.5);
  EXPECT_EQ(bytes, (blocks / 4) * 4096);
  EXPECT_DOUBLE_EQ(usageAfter(big, bytes), 0.5);
}

TEST(DiskFillPlanTest, FileNamesCarryTheFaultId) {
  EXPECT_EQ(DiskFillInjector::fileNameFor("run7-3"), ".chaosd-fill-run7-3");
  EXPECT_EQ(IoLoadInjector::fileNameFor("run7-3", 1), ".chaosd-io-run7-3-1");
  EXPECT_TRUE(isFileNameSafe("20250101T120000-ab12-3"));
  EXPECT_TRUE(isFileNameSafe("a.b_c-d"));
  EXPECT_FALSE(isFileNameSafe(""));
  EXPECT_FALSE(isFileNameSafe("../x"));
  EXPECT_FALSE(isFileNameSafe("a/b"));
  EXPECT_FALSE(isFileNameSafe(".x"));
  EXPECT_FALSE(isFileNameSafe("a b"));
  EXPECT_FALSE(isFileNameSafe(std::string(201, 'a')));
}

}  // namespace
}  // namespace chaosd
