// disk.io-load through the DiskFs seam: the workers run against an in-memory filesystem
// (tests/support/FakeDiskFs.h), so starting them, stopping them at revert, removing their
// files, a second revert and failures half-way are checked without a disk. The root tier
// (IoLoadTest) proves the load on real devices.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "experiments/model/Experiment.h"
#include "injectors/disk/IoLoadInjector.h"
#include "tests/support/FakeDiskFs.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kFileSize = 16 * kBlock;
const std::string kDir = "/data";

class IoLoadSeamTest : public ::testing::Test {
 protected:
  void SetUp() override { useFs({}); }

  void useFs(FakeDiskFsOptions o) {
    o.blockSize = kBlock;
    o.blocks = 1000;
    o.usedBlocks = 100;
    fs_ = std::make_shared<FakeDiskFs>(o);
    fs_->addDirectory(kDir);
    before_ = fs_->space();
  }

  nlohmann::json prepare(IoLoadInjector& injector, nlohmann::json args,
                         std::chrono::nanoseconds duration = 0ns) {
    target_.kind = TargetKind::kPath;
    target_.path = kDir;
    FaultRequest r;
    r.runId = "t";
    r.faultId = "io1";
    r.faultType = "disk.io-load";
    r.target = &target_;
    args["blockSize"] = kBlock;
    args["fileSize"] = kFileSize;
    r.args = std::move(args);
    r.duration = duration;
    auto prepared = injector.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared.ok() ? prepared->undo : nlohmann::json{};
  }

  // Waits (up to 5 s) until the workers made n reads and writes in all.
  bool waitForIo(int n) {
    for (int i = 0; i < 500; ++i) {
      if (fs_->calls("writeAt") + fs_->calls("readAt") >= n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // Waits (up to 5 s) until the workers of io1 ended by themselves.
  static bool workersEnd(IoLoadInjector& injector) {
    return testing::waitUntil([&] {
      auto p = injector.progress("io1");
      return p && p->workersRunning == 0;
    });
  }

  void expectRestored() {
    EXPECT_TRUE(fs_->list(kDir).empty());
    EXPECT_EQ(fs_->space().availBlocks, before_.availBlocks);
    EXPECT_EQ(fs_->openFiles(), 0);
  }

  std::shared_ptr<FakeDiskFs> fs_;
  FsSpace before_;
  TargetSpec target_;
};

TEST_F(IoLoadSeamTest, WorkersRunUntilRevertWhichStopsThemAndRemovesTheirFiles) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 2}});
  EXPECT_EQ(undo["files"],
            (nlohmann::json{kDir + "/.chaosd-io-io1-0", kDir + "/.chaosd-io-io1-1"}));
  EXPECT_TRUE(fs_->list(kDir).empty()) << "prepare only reads";

  auto applied = injector.apply("io1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "threads");
  EXPECT_EQ(applied->observed["layout"], "fallocate");
  EXPECT_EQ(applied->observed["directNotes"], nlohmann::json::array());
  EXPECT_EQ(fs_->list(kDir), (std::vector<std::string>{".chaosd-io-io1-0", ".chaosd-io-io1-1"}));
  EXPECT_EQ(fs_->openFiles(), 2);
  EXPECT_EQ(fs_->space().availBlocks, before_.availBlocks - 2 * kFileSize / kBlock);
  ASSERT_TRUE(waitForIo(40)) << "the workers never did IO";
  auto progress = injector.progress("io1");
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->workersRunning, 2);
  EXPECT_GT(progress->bytesWritten, 0u);
  auto during = injector.audit(undo);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->size(), 3u) << "two files and the running workers";
  EXPECT_EQ(injector.apply("io1", undo).error().code(), ErrorCode::kConflict) << "running";

  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["workersEndedBy"], (nlohmann::json{"revert"}));
  EXPECT_GE((*reverted)["bytesWritten"].get<uint64_t>(), kFileSize) << "a first pass at least";
  EXPECT_EQ((*reverted)["filesRemoved"], 2);
  EXPECT_EQ((*reverted)["freedBytes"], 2 * kFileSize);
  EXPECT_EQ((*reverted)["directAtEnd"], true);
  expectRestored();
  EXPECT_FALSE(injector.progress("io1").has_value()) << "no workers here after revert";
  const int io = fs_->calls("writeAt") + fs_->calls("readAt");
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(fs_->calls("writeAt") + fs_->calls("readAt"), io) << "stopped for good";

  auto again = injector.revert("io1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["workersInThisProcess"], false);
  EXPECT_EQ((*again)["filesRemoved"], 0);
  expectRestored();
  EXPECT_TRUE(injector.audit(undo)->empty());
}

TEST_F(IoLoadSeamTest, TheBytesBoundStopsTheWorkersThemselves) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 2}, {"bytes", 8 * kBlock}});
  ASSERT_TRUE(injector.apply("io1", undo).ok());
  ASSERT_TRUE(workersEnd(injector));
  EXPECT_EQ(fs_->calls("writeAt") + fs_->calls("readAt"), 8) << "8 blocks, not one more";
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["workersEndedBy"], (nlohmann::json{"bytes"}));
  EXPECT_EQ((*reverted)["bytesWritten"].get<uint64_t>() + (*reverted)["bytesRead"].get<uint64_t>(),
            8 * kBlock);
  expectRestored();
}

TEST_F(IoLoadSeamTest, TheWorkersStopAtTheStepsDuration) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 1}}, 30ms);
  ASSERT_TRUE(injector.apply("io1", undo).ok());
  ASSERT_TRUE(workersEnd(injector));
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["workersEndedBy"], (nlohmann::json{"duration"}));
  expectRestored();
}

TEST_F(IoLoadSeamTest, CreatingTheSecondFileFailsAndRevertRemovesTheFirst) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 3}});
  fs_->failNth("create", 2, EIO);
  auto applied = injector.apply("io1", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().sysErrno(), EIO);
  EXPECT_EQ(fs_->list(kDir), (std::vector<std::string>{".chaosd-io-io1-0"}));
  EXPECT_EQ(fs_->openFiles(), 0) << "no worker was started";
  EXPECT_EQ(injector.audit(undo)->size(), 1u);

  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["filesRemoved"], 1);
  EXPECT_EQ((*reverted)["workersInThisProcess"], false);
  expectRestored();
  ASSERT_TRUE(injector.revert("io1", undo).ok());
  EXPECT_TRUE(injector.audit(undo)->empty());
}

TEST_F(IoLoadSeamTest, FailuresAfterTheFilesExistAreCleanedUpByRevert) {
  for (const char* op : {"allocate", "truncate", "syncDirectory"}) {
    SCOPED_TRACE(op);
    FakeDiskFsOptions o;
    o.fallocate = std::string(op) != "truncate";  // sized by ftruncate without fallocate
    useFs(o);
    IoLoadInjector injector(fs_);
    nlohmann::json undo = prepare(injector, {{"workers", 2}});
    fs_->failNth(op, 1, EIO);
    ASSERT_FALSE(injector.apply("io1", undo).ok());
    EXPECT_FALSE(fs_->list(kDir).empty());
    ASSERT_TRUE(injector.revert("io1", undo).ok());
    expectRestored();
  }
}

TEST_F(IoLoadSeamTest, WithoutFallocateOrODirectTheFilesAreSparseAndBuffered) {
  FakeDiskFsOptions o;
  o.fallocate = false;
  o.directIo = false;
  useFs(o);
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 1}, {"bytes", 4 * kBlock}});
  auto applied = injector.apply("io1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["layout"], "sparse");
  ASSERT_EQ(applied->observed["directNotes"].size(), 1u);
  EXPECT_NE(applied->observed["directNotes"][0].get<std::string>().find("refuses O_DIRECT"),
            std::string::npos);
  ASSERT_TRUE(waitForIo(4));
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["directAtEnd"], false);
  expectRestored();
}

TEST_F(IoLoadSeamTest, DirectIoTheDeviceRefusesFallsBackToBufferedIo) {
  FakeDiskFsOptions o;
  o.directIoFails = true;
  useFs(o);
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 1}, {"bytes", 4 * kBlock}});
  auto applied = injector.apply("io1", undo);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->observed["directNotes"], nlohmann::json::array()) << "set, not yet refused";
  ASSERT_TRUE(waitForIo(5));  // the refused one and four buffered
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["directAtEnd"], false);
  ASSERT_EQ((*reverted)["directNotes"].size(), 1u);
  EXPECT_EQ((*reverted)["workerErrors"], nlohmann::json::array());
  EXPECT_EQ((*reverted)["bytesWritten"], 4 * kBlock);
  expectRestored();
}

TEST_F(IoLoadSeamTest, AnIoErrorEndsThatWorkerAndIsReported) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 1}});
  fs_->failNth("writeAt", 3, EIO);
  ASSERT_TRUE(injector.apply("io1", undo).ok());
  ASSERT_TRUE(workersEnd(injector));
  EXPECT_EQ(fs_->calls("writeAt"), 3) << "the worker ended at its error";
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["workersEndedBy"], (nlohmann::json{"error"}));
  ASSERT_EQ((*reverted)["workerErrors"].size(), 1u);
  EXPECT_EQ((*reverted)["bytesWritten"], 2 * kBlock);
  expectRestored();
}

TEST_F(IoLoadSeamTest, AnUnlinkThatFailsIsReportedAndTheNextRevertFinishes) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 2}});
  ASSERT_TRUE(injector.apply("io1", undo).ok());
  fs_->failNth("unlink", 1, EBUSY);
  auto refused = injector.revert("io1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().sysErrno(), EBUSY);
  EXPECT_EQ(fs_->list(kDir), (std::vector<std::string>{".chaosd-io-io1-0"}))
      << "the other file is removed all the same";
  EXPECT_EQ(fs_->openFiles(), 0) << "the workers were stopped first";
  auto reverted = injector.revert("io1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["filesRemoved"], 1);
  expectRestored();
}

TEST_F(IoLoadSeamTest, PrepareRefusesFilesThatDoNotFitOrAreLeftOver) {
  IoLoadInjector injector(fs_);
  target_.kind = TargetKind::kPath;
  target_.path = kDir;
  FaultRequest r;
  r.faultId = "io1";
  r.faultType = "disk.io-load";
  r.target = &target_;
  r.args = {{"workers", 64}, {"blockSize", kBlock}, {"fileSize", 64 * kBlock}};
  auto tooBig = injector.prepare(r);
  ASSERT_FALSE(tooBig.ok());
  EXPECT_EQ(tooBig.error().sysErrno(), ENOSPC);
  r.args = {{"workers", 1}, {"blockSize", kBlock}, {"fileSize", kFileSize}};
  fs_->addFile(kDir + "/.chaosd-io-io1-0", 0);
  auto leftover = injector.prepare(r);
  ASSERT_FALSE(leftover.ok());
  EXPECT_EQ(leftover.error().code(), ErrorCode::kConflict);
}

TEST_F(IoLoadSeamTest, ADirectoryNowOnAnotherFilesystemGetsNoLoad) {
  IoLoadInjector injector(fs_);
  nlohmann::json undo = prepare(injector, {{"workers", 1}});
  fs_->removeTree(kDir);
  fs_->addDirectory(kDir, FakeDiskFs::kOtherDev);
  auto applied = injector.apply("io1", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(fs_->list(kDir).empty());
}

}  // namespace
}  // namespace chaosd
