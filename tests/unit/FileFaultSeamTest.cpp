// test.file (FileFaultInjector, the journal and guardian tests' fault) through the DiskFs seam:
// apply, revert, a second revert, the audit and failures half-way against an in-memory
// filesystem (tests/support/FakeDiskFs.h).
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "injectors/testing/FileFaultInjector.h"
#include "tests/support/FakeDiskFs.h"

namespace chaosd {
namespace {

const std::string kDir = "/journal";
const std::string kFile = "/journal/.chaosd-test-t1";

class FileFaultSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_->addDirectory(kDir);
    fs_->addFile(kDir + "/other", 100);
  }

  nlohmann::json prepare() {
    FaultRequest r;
    r.faultId = "t1";
    r.faultType = "test.file";
    r.args = {{"path", kDir}};
    auto prepared = injector_.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared.ok() ? prepared->undo : nlohmann::json{};
  }

  void expectRestored() {
    EXPECT_EQ(fs_->list(kDir), (std::vector<std::string>{"other"}));
    EXPECT_EQ(fs_->openFiles(), 0);
  }

  std::shared_ptr<FakeDiskFs> fs_ = std::make_shared<FakeDiskFs>();
  FileFaultInjector injector_{fs_};
};

TEST_F(FileFaultSeamTest, ApplyCreatesTheFileAndRevertRemovesItOnce) {
  nlohmann::json undo = prepare();
  EXPECT_EQ(undo, (nlohmann::json{{"file", kFile}}));
  EXPECT_FALSE(fs_->exists(kFile)) << "prepare only reads";

  auto applied = injector_.apply("t1", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "file");
  EXPECT_EQ(applied->observed["file"], kFile);
  ASSERT_TRUE(fs_->exists(kFile));
  EXPECT_EQ(fs_->statOf(kFile)->size, std::string("t1\n").size());
  EXPECT_EQ(fs_->calls("sync"), 1);
  EXPECT_EQ(fs_->calls("syncDirectory"), 1);
  EXPECT_EQ(fs_->openFiles(), 0);
  EXPECT_EQ(injector_.audit(undo)->size(), 1u);

  auto reverted = injector_.revert("t1", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(*reverted, (nlohmann::json{{"removed", true}}));
  expectRestored();
  auto again = injector_.revert("t1", undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(*again, (nlohmann::json{{"removed", false}}));
  expectRestored();
  EXPECT_TRUE(injector_.audit(undo)->empty());
}

TEST_F(FileFaultSeamTest, AFailureHalfWayThroughApplyIsCleanedUpByRevert) {
  for (const char* op : {"writeAt", "sync", "syncDirectory"}) {
    SCOPED_TRACE(op);
    nlohmann::json undo = prepare();
    fs_->failNth(op, 1, EIO);
    auto applied = injector_.apply("t1", undo);
    ASSERT_FALSE(applied.ok());
    EXPECT_EQ(applied.error().sysErrno(), EIO);
    EXPECT_TRUE(fs_->exists(kFile));
    EXPECT_EQ(fs_->openFiles(), 0);
    auto reverted = injector_.revert("t1", undo);
    ASSERT_TRUE(reverted.ok());
    EXPECT_EQ(*reverted, (nlohmann::json{{"removed", true}}));
    expectRestored();
  }
}

TEST_F(FileFaultSeamTest, ACreateThatFailsLeavesNothing) {
  nlohmann::json undo = prepare();
  fs_->failNth("create", 1, EACCES);
  auto applied = injector_.apply("t1", undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kPermission);
  EXPECT_EQ(*injector_.revert("t1", undo), (nlohmann::json{{"removed", false}}));
  expectRestored();
}

TEST_F(FileFaultSeamTest, AnUnlinkThatFailsIsAnErrorAndTheNextRevertFinishes) {
  nlohmann::json undo = prepare();
  ASSERT_TRUE(injector_.apply("t1", undo).ok());
  fs_->failNth("unlink", 1, EBUSY);
  auto refused = injector_.revert("t1", undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().sysErrno(), EBUSY);
  EXPECT_EQ(injector_.audit(undo)->size(), 1u);
  ASSERT_TRUE(injector_.revert("t1", undo).ok());
  expectRestored();
}

TEST_F(FileFaultSeamTest, ADirectoryThatVanishedIsNothingToRevertAndNowhereToApply) {
  nlohmann::json undo = prepare();
  ASSERT_TRUE(injector_.apply("t1", undo).ok());
  fs_->removeTree(kDir);
  auto reverted = injector_.revert("t1", undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ(*reverted, (nlohmann::json{{"removed", false}}));
  EXPECT_TRUE(injector_.audit(undo)->empty());
  EXPECT_EQ(injector_.apply("t1", undo).error().code(), ErrorCode::kNotFound);
}

TEST_F(FileFaultSeamTest, PrepareAndRevertTouchOnlyADirectoryAndTheirOwnName) {
  FaultRequest r;
  r.faultId = "t1";
  r.faultType = "test.file";
  r.args = {{"path", kDir + "/other"}};
  EXPECT_EQ(injector_.prepare(r).error().code(), ErrorCode::kInvalid) << "not a directory";
  r.args = {{"path", "/missing"}};
  EXPECT_EQ(injector_.prepare(r).error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(injector_.revert("t1", {{"file", kDir + "/other"}}).ok());
  EXPECT_TRUE(fs_->exists(kDir + "/other"));
}

}  // namespace
}  // namespace chaosd
