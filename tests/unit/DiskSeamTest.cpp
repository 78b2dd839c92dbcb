// disk.fill through the DiskFs seam: apply, revert, a second revert and the audit against an
// in-memory filesystem (tests/support/FakeDiskFs.h), and the failures a real disk gives only
// by accident: ENOSPC half-way, an unlink that fails, a filler someone replaced, a directory
// that vanished. The root tier (DiskFillTest) proves the same on tmpfs, ext4 and ext2.
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "tests/support/FakeDiskFs.h"

namespace chaosd {
namespace {

constexpr uint64_t kBlock = 4096;
const std::string kDir = "/data";
const std::string kFiller = "/data/.chaosd-fill-f1";

// 1000 blocks of 4 KiB, 400 used by others (392 unmodelled and the 8 of /data/keep), 50
// reserved for root: 550 available, 42.1% used.
FakeDiskFsOptions diskOf(FakeDiskFsOptions o = {}) {
  o.blockSize = kBlock;
  o.blocks = 1000;
  o.usedBlocks = 392;
  o.reservedBlocks = 50;
  return o;
}

class DiskFillSeamTest : public ::testing::Test {
 protected:
  void SetUp() override { useFs(diskOf()); }

  void useFs(const FakeDiskFsOptions& o) {
    fs_ = std::make_shared<FakeDiskFs>(o);
    fs_->addDirectory(kDir);
    fs_->addFile(kDir + "/keep", 8 * kBlock);  // someone else's: never touched
    before_ = fs_->space();
  }

  FaultRequest request(const std::string& id, nlohmann::json args) {
    target_.kind = TargetKind::kPath;
    target_.path = kDir;
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.faultType = "disk.fill";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }

  nlohmann::json prepare(DiskFillInjector& injector, nlohmann::json args) {
    auto prepared = injector.prepare(request("f1", std::move(args)));
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared.ok() ? prepared->undo : nlohmann::json{};
  }

  // The filesystem is as it was before the fault: the space, and only others' files.
  void expectRestored() {
    EXPECT_EQ(fs_->space().availBlocks, before_.availBlocks);
    EXPECT_EQ(fs_->space().freeBlocks, before_.freeBlocks);
    EXPECT_EQ(fs_->list(kDir), (std::vector<std::string>{"keep"}));
    EXPECT_EQ(fs_->statOf(kDir + "/keep")->allocated, 8 * kBlock);
    EXPECT_EQ(fs_->openFiles(), 0);
  }

  std::shared_ptr<FakeDiskFs> fs_;
  FsSpace before_;
  TargetSpec target_;
};

TEST_F(DiskFillSeamTest, FillsToTheUsageAndRevertGivesEveryBlockBack) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"usage", 0.9}});
  // ceil(0.9 * (400 + 550)) - 400 = 455 blocks.
  EXPECT_EQ(undo["bytes"], 455 * kBlock);
  EXPECT_EQ(undo["file"], kFiller);
  EXPECT_EQ(undo["dev"], 2049);
  EXPECT_EQ(undo["fsid"], "0000abcd0000ef01");
  EXPECT_NEAR(undo["usageAtPrepare"].get<double>(), 400.0 / 950.0, 1e-9);
  EXPECT_FALSE(fs_->exists(kFiller)) << "prepare only reads";

  auto applied = injector.apply("f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "fallocate");
  EXPECT_EQ(applied->observed["bytesAllocated"], 455 * kBlock);
  EXPECT_EQ(applied->observed["partial"], false);
  EXPECT_NEAR(dfUsage(fs_->space()), 855.0 / 950.0, 1e-9);
  EXPECT_NEAR(applied->observed["usageAfter"].get<double>(), 855.0 / 950.0, 1e-9);
  EXPECT_EQ(fs_->statOf(kFiller)->allocated, 455 * kBlock);
  EXPECT_EQ(fs_->openFiles(), 0) << "the filler is closed once allocated";
  EXPECT_GE(fs_->calls("sync"), 1);
  EXPECT_GE(fs_->calls("syncDirectory"), 1);
  auto during = injector.audit(undo);
  ASSERT_TRUE(during.ok());
  ASSERT_EQ(during->size(), 1u);
  EXPECT_NE((*during)[0].find("filler file left"), std::string::npos);

  auto reverted = injector.revert("f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["removed"], true);
  EXPECT_EQ((*reverted)["freedBytes"], 455 * kBlock);
  EXPECT_NEAR((*reverted)["usageAfterRevert"].get<double>(), 400.0 / 950.0, 1e-9);
  expectRestored();

  const int unlinks = fs_->calls("unlink");
  auto again = injector.revert("f1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["removed"], false);
  EXPECT_EQ((*again)["freedBytes"], 0);
  EXPECT_EQ(fs_->calls("unlink"), unlinks) << "nothing left to remove";
  expectRestored();
  EXPECT_TRUE(injector.audit(undo)->empty());
}

TEST_F(DiskFillSeamTest, WithoutFallocateTheSizeIsWritten) {
  FakeDiskFsOptions o;
  o.fallocate = false;
  useFs(diskOf(o));
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", 2 << 20}});
  auto applied = injector.apply("f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "write");
  EXPECT_EQ(applied->observed["bytesAllocated"], 2 << 20);
  EXPECT_EQ(fs_->calls("writeAt"), 2) << "1 MiB at a time";
  ASSERT_TRUE(injector.revert("f1", undo).ok());
  expectRestored();
}

TEST_F(DiskFillSeamTest, EnospcHalfWayIsAPartialFillOfEveryAvailableBlock) {
  for (bool keepPartial : {false, true}) {  // tmpfs keeps nothing of a failed fallocate, ext4 all
    SCOPED_TRACE(keepPartial ? "ext4" : "tmpfs");
    FakeDiskFsOptions o;
    o.keepPartialAllocation = keepPartial;
    useFs(diskOf(o));
    DiskFillInjector injector(fs_);
    nlohmann::json undo = prepare(injector, {{"size", 1024 * kBlock}});
    auto applied = injector.apply("f1", undo);
    ASSERT_TRUE(applied.ok()) << applied.error().describe();
    EXPECT_EQ(applied->observed["partial"], true);
    EXPECT_EQ(applied->observed["partialReason"], std::strerror(ENOSPC));
    EXPECT_EQ(applied->observed["bytesAllocated"], 550 * kBlock);
    EXPECT_EQ(fs_->space().availBlocks, 0u);
    EXPECT_EQ(applied->observed["availBytesAfter"], 0);
    ASSERT_TRUE(injector.revert("f1", undo).ok());
    expectRestored();
  }
}

TEST_F(DiskFillSeamTest, TheWriteFallbackOutOfSpaceKeepsWhatWasWritten) {
  DiskFillInjector injector(fs_, DiskFillInjector::Options{.forceWriteFallback = true});
  nlohmann::json undo = prepare(injector, {{"size", 4 << 20}});  // 1024 blocks, 550 fit
  auto applied = injector.apply("f1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "write");
  EXPECT_EQ(applied->observed["partial"], true);
  EXPECT_EQ(applied->observed["bytesAllocated"], 550 * kBlock);
  EXPECT_EQ(applied->observed["fileSize"], 550 * kBlock) << "cut back to what was written";
  ASSERT_TRUE(injector.revert("f1", undo).ok());
  expectRestored();
}

TEST_F(DiskFillSeamTest, AFailureHalfWayThroughApplyIsCleanedUpByRevert) {
  // Each of the calls after the file exists, failing: apply fails, revert removes the file.
  for (const char* op : {"allocate", "fstat", "sync", "syncDirectory"}) {
    SCOPED_TRACE(op);
    useFs(diskOf());
    DiskFillInjector injector(fs_);
    nlohmann::json undo = prepare(injector, {{"size", 100 * kBlock}});
    fs_->failNth(op, std::string(op) == "fstat" ? 2 : 1, EIO);
    auto applied = injector.apply("f1", undo);
    ASSERT_FALSE(applied.ok());
    EXPECT_EQ(applied.error().sysErrno(), EIO);
    EXPECT_TRUE(fs_->exists(kFiller));
    EXPECT_EQ(fs_->openFiles(), 0) << "the failed apply closed its file";
    auto reverted = injector.revert("f1", undo);
    ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
    EXPECT_EQ((*reverted)["removed"], true);
    expectRestored();
    EXPECT_TRUE(injector.audit(undo)->empty());
  }
}

TEST_F(DiskFillSeamTest, AFailureBeforeTheFileExistsLeavesNothing) {
  for (const char* op : {"statvfs", "stat", "create"}) {
    SCOPED_TRACE(op);
    useFs(diskOf());
    DiskFillInjector injector(fs_);
    nlohmann::json undo = prepare(injector, {{"size", kBlock}});
    fs_->failNth(op, 1, EIO);
    EXPECT_FALSE(injector.apply("f1", undo).ok());
    EXPECT_FALSE(fs_->exists(kFiller));
    auto reverted = injector.revert("f1", undo);
    ASSERT_TRUE(reverted.ok());
    EXPECT_EQ((*reverted)["removed"], false);
    expectRestored();
  }
}

TEST_F(DiskFillSeamTest, AnUnlinkThatFailsIsReportedAndTheNextRevertFinishes) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", 10 * kBlock}});
  ASSERT_TRUE(injector.apply("f1", undo).ok());
  fs_->failNth("unlink", 1, EBUSY);
  auto refused = injector.revert("f1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().sysErrno(), EBUSY);
  EXPECT_TRUE(fs_->exists(kFiller));
  EXPECT_EQ(injector.audit(undo)->size(), 1u);
  auto reverted = injector.revert("f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["removed"], true);
  expectRestored();
}

TEST_F(DiskFillSeamTest, AFillerReplacedByAnotherFileIsLeftAloneAndReported) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", 10 * kBlock}});
  ASSERT_TRUE(injector.apply("f1", undo).ok());
  const uint64_t ours = fs_->statOf(kFiller)->inode;
  // Someone removed the filler and put a file of their own under its name.
  ASSERT_TRUE(fs_->unlink(kFiller).ok());
  const uint64_t theirs = fs_->addFile(kFiller, 3 * kBlock);
  ASSERT_NE(theirs, ours);

  auto refused = injector.revert("f1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_NE(refused.error().message().find("replaced"), std::string::npos);
  ASSERT_TRUE(fs_->exists(kFiller));
  EXPECT_EQ(fs_->statOf(kFiller)->inode, theirs);
  EXPECT_EQ(fs_->statOf(kFiller)->allocated, 3 * kBlock);
  auto left = injector.audit(undo);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_NE((*left)[0].find("left alone"), std::string::npos);
}

TEST_F(DiskFillSeamTest, FilesNotOursAreRefusedAndLeftAlone) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", kBlock}});
  // Of our name, on another filesystem.
  fs_->addFile(kFiller, kBlock, FakeDiskFs::kOtherDev);
  auto refused = injector.revert("f1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(fs_->exists(kFiller));
  EXPECT_NE((*injector.audit(undo))[0].find("another filesystem"), std::string::npos);
  fs_->removeTree(kFiller);
  // Of our name, a directory.
  fs_->addDirectory(kFiller);
  EXPECT_EQ(injector.revert("f1", undo).error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(fs_->exists(kFiller));
  // Another name, or another fault's record.
  nlohmann::json forged = undo;
  forged["file"] = kDir + "/keep";
  EXPECT_FALSE(injector.revert("f1", forged).ok());
  EXPECT_FALSE(injector.revert("other", undo).ok());
  EXPECT_TRUE(fs_->exists(kDir + "/keep"));
}

TEST_F(DiskFillSeamTest, AFileOfOurNameMovedWithItsFsidIsStillOurs) {
  // The device number changed (a reboot renumbered the loop device); the fsid did not.
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", kBlock}});
  ASSERT_TRUE(injector.apply("f1", undo).ok());
  undo["dev"] = 1;
  DiskFillInjector guardian(fs_);
  auto reverted = guardian.revert("f1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["removed"], true);
  expectRestored();
}

TEST_F(DiskFillSeamTest, ADirectoryThatVanishedIsNothingToRevert) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", 10 * kBlock}});
  ASSERT_TRUE(injector.apply("f1", undo).ok());
  fs_->removeTree(kDir);
  for (int i = 0; i < 2; ++i) {
    auto reverted = injector.revert("f1", undo);
    ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
    EXPECT_EQ((*reverted)["removed"], false);
    EXPECT_FALSE(reverted->contains("usageAfterRevert"));
  }
  EXPECT_TRUE(injector.audit(undo)->empty());
  EXPECT_FALSE(injector.apply("f1", undo).ok()) << "nowhere to fill";
}

TEST_F(DiskFillSeamTest, ADirectoryNowOnAnotherFilesystemIsNotFilled) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"size", kBlock}});
  fs_->removeTree(kDir);
  fs_->addDirectory(kDir, FakeDiskFs::kOtherDev);
  auto applied = injector.apply("f1", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kConflict);
  EXPECT_FALSE(fs_->exists(kFiller));
}

TEST_F(DiskFillSeamTest, AlreadyOverTheUsageIsARecordedNoop) {
  DiskFillInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"usage", 0.3}});
  EXPECT_EQ(undo["noop"], true);
  auto applied = injector.apply("f1", undo);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->backend, "none");
  EXPECT_EQ(applied->observed["noop"], true);
  EXPECT_EQ(fs_->calls("create"), 0);
  ASSERT_TRUE(injector.revert("f1", undo).ok());
  expectRestored();
}

TEST_F(DiskFillSeamTest, PrepareRefusesWhatItCannotFill) {
  DiskFillInjector injector(fs_);
  // A leftover of this fault id.
  fs_->addFile(kFiller, 0);
  auto leftover = injector.prepare(request("f1", {{"size", kBlock}}));
  ASSERT_FALSE(leftover.ok());
  EXPECT_EQ(leftover.error().code(), ErrorCode::kConflict);
  // A target that is not there, and one whose statvfs fails.
  FaultRequest missing = request("f2", {{"size", kBlock}});
  target_.path = "/nowhere";
  EXPECT_EQ(injector.prepare(missing).error().code(), ErrorCode::kNotFound);
  fs_->failNth("statvfs", 1, EIO);
  EXPECT_FALSE(injector.prepare(request("f2", {{"size", kBlock}})).ok());
  // A read-only filesystem.
  FakeDiskFsOptions o;
  o.readOnly = true;
  useFs(diskOf(o));
  DiskFillInjector readOnly(fs_);
  EXPECT_EQ(readOnly.prepare(request("f3", {{"size", kBlock}})).error().code(),
            ErrorCode::kUnsupported);
}

TEST_F(DiskFillSeamTest, AFileTargetFillsItsDirectory) {
  DiskFillInjector injector(fs_);
  FaultRequest r = request("f1", {{"size", kBlock}});
  target_.path = kDir + "/keep";
  auto prepared = injector.prepare(r);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->undo["dir"], kDir);
  EXPECT_EQ(prepared->undo["file"], kFiller);
}

}  // namespace
}  // namespace chaosd
