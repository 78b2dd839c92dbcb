// disk.fill against real filesystems of the test's own: a 64 MiB tmpfs, and 128 MiB ext4 and
// ext2 images on loop devices (ext2 has no fallocate: the write fallback). The loop devices
// are attached with LO_FLAGS_AUTOCLEAR, so unmounting detaches them; TearDown unmounts and
// removes everything even when an assertion failed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "tests/support/ScratchFs.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1 << 20;

TargetSpec pathTarget(const fs::path& path) {
  TargetSpec t;
  t.name = "disk";
  t.kind = TargetKind::kPath;
  t.path = path.string();
  return t;
}

FsSpace spaceOf(const fs::path& dir) {
  auto s = readFsSpace(dir.string());
  EXPECT_TRUE(s.ok());
  return s.ok() ? *s : FsSpace{};
}

std::vector<std::string> ourFiles(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-", 0) == 0) out.push_back(e.path());
  }
  return out;
}

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class DiskFillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount, loop devices)";
    char tmpl[] = "/tmp/chaosd-diskfill-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    mounts_.clear();  // unmounts; the loop devices detach themselves
    if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  fs::path tmpfs() {
    auto m = std::make_unique<ScratchFs>(root_ / "tmpfs");
    std::string why = m->mountTmpfs("size=64m,mode=0700");
    return keep(std::move(m), why);
  }
  fs::path ext4() {
    auto m = std::make_unique<ScratchFs>(root_ / "ext4");
    std::string why = m->mountImage(root_ / "ext4.img", 128 * kMiB, "mkfs.ext4 -q -F", "ext4");
    return keep(std::move(m), why);
  }
  fs::path ext2() {
    auto m = std::make_unique<ScratchFs>(root_ / "ext2");
    std::string why = m->mountImage(root_ / "ext2.img", 128 * kMiB, "mkfs.ext2 -q -F", "ext2");
    return keep(std::move(m), why);
  }

  FaultRequest request(const TargetSpec& target, const std::string& faultId, nlohmann::json args) {
    FaultRequest r;
    r.runId = "disktest";
    r.faultId = faultId;
    r.stepName = "fill";
    r.faultType = "disk.fill";
    r.target = &target;
    r.args = std::move(args);
    r.duration = 60s;
    return r;
  }

  // Fills dir to `usage` with injector, checks df's use% and that revert gives the space
  // back exactly; prints how long apply took (allocation, then file and directory fsync).
  void fillToUsageAndRevert(const char* label, DiskFillInjector& injector, const fs::path& dir,
                            double usage, const std::string& expectedMethod) {
    TargetSpec target = pathTarget(dir);
    FsSpace before = spaceOf(dir);
    auto prepared = injector.prepare(request(target, "f90", {{"usage", usage}}));
    EXPECT_TRUE(prepared.ok()) << (prepared.ok() ? "" : prepared.error().describe());
    if (!prepared.ok()) return;
    auto t0 = std::chrono::steady_clock::now();
    auto applied = injector.apply("f90", prepared->undo);
    double seconds = secondsSince(t0);
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().describe());
    if (!applied.ok()) return;
    std::printf(
        "[ measure  ] %s: %s of %.1f MiB: apply %.2f ms (allocate %.2f ms, fsync %.2f ms)\n", label,
        expectedMethod.c_str(), applied->observed["bytesAllocated"].get<double>() / kMiB,
        seconds * 1e3, applied->observed["allocateSeconds"].get<double>() * 1e3,
        applied->observed["syncSeconds"].get<double>() * 1e3);
    FsSpace during = spaceOf(dir);
    EXPECT_NEAR(dfUsage(during), usage, 0.01) << applied->observed.dump();
    EXPECT_EQ(applied->backend, expectedMethod);
    EXPECT_EQ(applied->observed["method"], expectedMethod);
    EXPECT_EQ(applied->observed["partial"], false);
    EXPECT_NEAR(applied->observed["usageAfter"].get<double>(), dfUsage(during), 1e-9);
    EXPECT_EQ(ourFiles(dir).size(), 1u);

    auto reverted = injector.revert("f90", prepared->undo);
    EXPECT_TRUE(reverted.ok()) << (reverted.ok() ? "" : reverted.error().describe());
    if (reverted.ok()) {
      EXPECT_EQ((*reverted)["removed"], true);
      EXPECT_GE((*reverted)["freedBytes"].get<uint64_t>(),
                applied->observed["bytesPlanned"].get<uint64_t>());
    }
    FsSpace after = spaceOf(dir);
    EXPECT_LE(std::max(after.availBlocks, before.availBlocks) -
                  std::min(after.availBlocks, before.availBlocks),
              1u);
    EXPECT_TRUE(ourFiles(dir).empty());
    auto left = injector.audit(prepared->undo);
    EXPECT_TRUE(left.ok() && left->empty());
  }

 private:
  fs::path keep(std::unique_ptr<ScratchFs> m, const std::string& why) {
    if (!why.empty()) {
      ADD_FAILURE() << why;
      return {};
    }
    fs::path dir = m->dir();
    mounts_.push_back(std::move(m));
    return dir;
  }

  fs::path root_;
  std::vector<std::unique_ptr<ScratchFs>> mounts_;
};

TEST_F(DiskFillTest, FillsTmpfsToNinetyPercentAndRevertGivesItAllBack) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  DiskFillInjector injector;
  fillToUsageAndRevert("90% of a 64 MiB tmpfs", injector, dir, 0.9, "fallocate");
}

TEST_F(DiskFillTest, FillsExt4ToNinetyPercentWithFallocate) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  DiskFillInjector injector;
  fillToUsageAndRevert("90% of a 128 MiB ext4", injector, dir, 0.9, "fallocate");
}

TEST_F(DiskFillTest, FillsExt4ToNinetyPercentWithTheWriteFallback) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  DiskFillInjector injector(DiskFillInjector::Options{.forceWriteFallback = true});
  fillToUsageAndRevert("90% of a 128 MiB ext4", injector, dir, 0.9, "write");
}

TEST_F(DiskFillTest, Ext2HasNoFallocateSoTheFillWrites) {
  fs::path dir = ext2();
  ASSERT_FALSE(dir.empty());
  DiskFillInjector injector;
  fillToUsageAndRevert("90% of a 128 MiB ext2 (EOPNOTSUPP)", injector, dir, 0.9, "write");
}

TEST_F(DiskFillTest, SizeFillTakesThatManyBytes) {
  for (const fs::path& dir : {tmpfs(), ext4()}) {
    ASSERT_FALSE(dir.empty());
    SCOPED_TRACE(dir.string());
    TargetSpec target = pathTarget(dir);
    DiskFillInjector injector;
    FsSpace before = spaceOf(dir);
    auto prepared = injector.prepare(request(target, "f10", {{"size", 10 * kMiB}}));
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    EXPECT_EQ(prepared->undo["bytes"], 10 * kMiB);
    auto applied = injector.apply("f10", prepared->undo);
    ASSERT_TRUE(applied.ok()) << applied.error().describe();
    FsSpace during = spaceOf(dir);
    int64_t dropped =
        static_cast<int64_t>((before.availBlocks - during.availBlocks) * during.blockSize);
    EXPECT_NEAR(static_cast<double>(dropped), static_cast<double>(10 * kMiB),
                4.0 * static_cast<double>(during.blockSize));
    EXPECT_EQ(applied->observed["bytesPlanned"], 10 * kMiB);
    EXPECT_GE(applied->observed["bytesAllocated"].get<uint64_t>(), 10 * kMiB);
    ASSERT_TRUE(injector.revert("f10", prepared->undo).ok());
    EXPECT_EQ(spaceOf(dir).availBlocks, before.availBlocks);
    EXPECT_TRUE(ourFiles(dir).empty());
  }
}

TEST_F(DiskFillTest, RunningOutOfSpaceOnExt4IsAPartialFillNotAnError) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  FsSpace before = spaceOf(dir);
  auto prepared = injector.prepare(request(target, "fbig", {{"size", 1024 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto applied = injector.apply("fbig", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  const auto& o = applied->observed;
  EXPECT_EQ(o["partial"], true) << o.dump();
  EXPECT_EQ(o["bytesPlanned"], 1024 * kMiB);
  EXPECT_GT(o["bytesAllocated"].get<uint64_t>(), before.availBytes() / 2);
  EXPECT_LT(o["bytesAllocated"].get<uint64_t>(), 1024 * kMiB);
  EXPECT_EQ(spaceOf(dir).availBlocks, 0u);  // as full as root can make it
  EXPECT_NEAR(o["usageAfter"].get<double>(), 1.0, 1e-9);

  auto reverted = injector.revert("fbig", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["freedBytes"], o["bytesAllocated"]);
  EXPECT_LE(before.availBlocks - spaceOf(dir).availBlocks, 1u);
  EXPECT_TRUE(ourFiles(dir).empty());
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
}

// tmpfs refuses a fallocate it cannot satisfy whole and keeps nothing: the remainder is
// requested in halving chunks, so the filesystem still ends up full.
TEST_F(DiskFillTest, RunningOutOfSpaceOnTmpfsFillsWhatFits) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  FsSpace before = spaceOf(dir);
  auto prepared = injector.prepare(request(target, "fbig", {{"size", 1024 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto applied = injector.apply("fbig", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["partial"], true);
  EXPECT_EQ(spaceOf(dir).availBlocks, 0u) << applied->observed.dump();
  ASSERT_TRUE(injector.revert("fbig", prepared->undo).ok());
  EXPECT_EQ(spaceOf(dir).availBlocks, before.availBlocks);
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(DiskFillTest, WriteFallbackOutOfSpaceKeepsWhatWasWritten) {
  fs::path dir = ext2();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  FsSpace before = spaceOf(dir);
  auto prepared = injector.prepare(request(target, "fbig", {{"size", 1024 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto applied = injector.apply("fbig", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  const auto& o = applied->observed;
  EXPECT_EQ(o["method"], "write");
  EXPECT_EQ(o["partial"], true);
  EXPECT_GT(o["fileSize"].get<uint64_t>(), before.availBytes() / 2);
  EXPECT_EQ(fs::file_size(o["file"].get<std::string>()), o["fileSize"].get<uint64_t>());
  EXPECT_EQ(spaceOf(dir).availBlocks, 0u);
  ASSERT_TRUE(injector.revert("fbig", prepared->undo).ok());
  EXPECT_LE(before.availBlocks - spaceOf(dir).availBlocks, 1u);
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(DiskFillTest, AlreadyOverTheTargetIsARecordedNoop) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  auto first = injector.prepare(request(target, "half", {{"usage", 0.5}}));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(injector.apply("half", first->undo).ok());

  auto prepared = injector.prepare(request(target, "low", {{"usage", 0.3}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->undo["noop"], true);
  EXPECT_EQ(prepared->undo["bytes"], 0);
  EXPECT_NE(prepared->description.find("nothing to fill"), std::string::npos);
  auto applied = injector.apply("low", prepared->undo);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->backend, "none");
  EXPECT_EQ(applied->observed["noop"], true);
  EXPECT_EQ(ourFiles(dir).size(), 1u);  // only the first fault's file
  auto reverted = injector.revert("low", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["removed"], false);
  ASSERT_TRUE(injector.revert("half", first->undo).ok());
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(DiskFillTest, PrepareOnlyReadsAndRecordsTheFilesystem) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  FsSpace before = spaceOf(dir);
  auto prepared = injector.prepare(request(target, "r1", {{"size", kMiB}}));
  ASSERT_TRUE(prepared.ok());
  EXPECT_TRUE(ourFiles(dir).empty());
  EXPECT_EQ(spaceOf(dir).availBlocks, before.availBlocks);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(prepared->undo["dev"], static_cast<uint64_t>(st.st_dev));
  EXPECT_EQ(prepared->undo["file"], (dir / ".chaosd-fill-r1").string());
  EXPECT_EQ(prepared->undo["faultId"], "r1");
  EXPECT_EQ(prepared->resources,
            std::vector<std::string>{"file:" + (dir / ".chaosd-fill-r1").string()});
}

TEST_F(DiskFillTest, AFileTargetFillsItsDirectory) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  {
    std::FILE* f = std::fopen((dir / "data.db").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  TargetSpec target = pathTarget(dir / "data.db");
  DiskFillInjector injector;
  auto prepared = injector.prepare(request(target, "viafile", {{"size", kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->undo["file"], (dir / ".chaosd-fill-viafile").string());
  ASSERT_TRUE(injector.apply("viafile", prepared->undo).ok());
  EXPECT_TRUE(fs::exists(dir / ".chaosd-fill-viafile"));
  ASSERT_TRUE(injector.revert("viafile", prepared->undo).ok());
  EXPECT_TRUE(fs::exists(dir / "data.db"));
}

TEST_F(DiskFillTest, RevertIsIdempotent) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  auto prepared = injector.prepare(request(target, "twice", {{"size", 4 * kMiB}}));
  ASSERT_TRUE(prepared.ok());
  // Revert of an intent never applied succeeds and does nothing.
  auto early = injector.revert("twice", prepared->undo);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ((*early)["removed"], false);
  ASSERT_TRUE(injector.apply("twice", prepared->undo).ok());
  auto first = injector.revert("twice", prepared->undo);
  auto second = injector.revert("twice", prepared->undo);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ((*first)["removed"], true);
  EXPECT_EQ((*second)["removed"], false);
  EXPECT_EQ((*second)["freedBytes"], 0);
  EXPECT_TRUE(ourFiles(dir).empty());
}

// The guardian's situation: another instance (another process) with the journalled undo
// record only.
TEST_F(DiskFillTest, RevertFromAFreshInstanceWithOnlyTheUndoRecord) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  FsSpace before = spaceOf(dir);
  std::string journalled;
  {
    DiskFillInjector owner;
    auto prepared = owner.prepare(request(target, "orphan", {{"usage", 0.8}}));
    ASSERT_TRUE(prepared.ok());
    journalled = prepared->undo.dump();
    ASSERT_TRUE(owner.apply("orphan", prepared->undo).ok());
  }  // the owner is gone
  DiskFillInjector guardian;
  auto undo = nlohmann::json::parse(journalled);
  auto reverted = guardian.revert("orphan", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["removed"], true);
  EXPECT_LE(before.availBlocks - spaceOf(dir).availBlocks, 1u);
  EXPECT_TRUE(guardian.audit(undo)->empty());
}

TEST_F(DiskFillTest, AuditReportsAFileLeftBehind) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  auto prepared = injector.prepare(request(target, "left", {{"size", 2 * kMiB}}));
  ASSERT_TRUE(prepared.ok());
  ASSERT_TRUE(injector.apply("left", prepared->undo).ok());
  auto left = injector.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_NE((*left)[0].find(".chaosd-fill-left"), std::string::npos) << (*left)[0];
  EXPECT_NE((*left)[0].find("2MiB"), std::string::npos) << (*left)[0];
  ASSERT_TRUE(injector.revert("left", prepared->undo).ok());
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
}

TEST_F(DiskFillTest, TouchesOnlyItsOwnFile) {
  fs::path tmp = tmpfs();
  fs::path ext = ext4();
  ASSERT_FALSE(tmp.empty());
  ASSERT_FALSE(ext.empty());
  TargetSpec target = pathTarget(ext);
  DiskFillInjector injector;
  auto prepared = injector.prepare(request(target, "mine", {{"size", kMiB}}));
  ASSERT_TRUE(prepared.ok());

  // A file of another name in the undo record: refused, untouched.
  fs::path victim = ext / "precious";
  {
    std::FILE* f = std::fopen(victim.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  nlohmann::json forged = prepared->undo;
  forged["file"] = victim.string();
  EXPECT_FALSE(injector.revert("mine", forged).ok());
  EXPECT_FALSE(injector.audit(forged).ok());
  EXPECT_TRUE(fs::exists(victim));
  // Another fault's undo record under this fault id: refused.
  EXPECT_FALSE(injector.revert("other", prepared->undo).ok());

  // A file of our name on another filesystem (the directory is now a different mount):
  // refused and left alone, and the audit says so.
  fs::path twin = tmp / ".chaosd-fill-mine";
  {
    std::FILE* f = std::fopen(twin.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  nlohmann::json moved = prepared->undo;
  moved["file"] = twin.string();
  auto refused = injector.revert("mine", moved);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(fs::exists(twin));
  auto left = injector.audit(moved);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_NE((*left)[0].find("another filesystem"), std::string::npos);
  fs::remove(twin);
}

TEST_F(DiskFillTest, RefusesFaultIdsThatCannotNameAFile) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  DiskFillInjector injector;
  for (std::string id : {"../escape", "a/b", ".hidden", ""}) {
    auto prepared = injector.prepare(request(target, id, {{"size", kMiB}}));
    ASSERT_FALSE(prepared.ok()) << id;
    EXPECT_EQ(prepared.error().code(), ErrorCode::kInvalid);
  }
  TargetSpec missing = pathTarget(dir / "no" / "such" / "dir");
  auto prepared = injector.prepare(request(missing, "x", {{"size", kMiB}}));
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace chaosd
