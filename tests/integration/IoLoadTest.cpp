// disk.io-load against real filesystems of the test's own: a 128 MiB ext4 image on a loop
// device (512-byte sectors), another on a loop device with 4 KiB sectors (where 512-byte
// O_DIRECT IO is refused), and a tmpfs. Loop devices auto-clear: unmounting detaches them;
// TearDown unmounts and removes everything even when an assertion failed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "injectors/disk/IoLoadInjector.h"
#include "tests/support/ScratchFs.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::waitUntil;

constexpr uint64_t kMiB = 1 << 20;

std::vector<std::string> ourFiles(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-", 0) == 0) out.push_back(e.path());
  }
  return out;
}

uint64_t availBlocks(const fs::path& dir) {
  auto s = readFsSpace(dir.string());
  EXPECT_TRUE(s.ok());
  return s.ok() ? s->availBlocks : 0;
}

// One field of /proc/self/io (every thread of this process, exited ones included).
uint64_t procIo(const std::string& field) {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == field + ":") return value;
  }
  return 0;
}

class IoLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount, loop devices)";
    char tmpl[] = "/tmp/chaosd-ioload-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    mounts_.clear();
    if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  fs::path ext4(uint32_t sectorSize = 512) {
    std::string name = "ext4-" + std::to_string(sectorSize);
    auto m = std::make_unique<ScratchFs>(root_ / name);
    std::string why = m->mountImage(root_ / (name + ".img"), 128 * kMiB, "mkfs.ext4 -q -F -b 4096",
                                    "ext4", sectorSize);
    return keep(std::move(m), why);
  }
  fs::path tmpfs() {
    auto m = std::make_unique<ScratchFs>(root_ / "tmpfs");
    std::string why = m->mountTmpfs("size=64m,mode=0700");
    return keep(std::move(m), why);
  }

  FaultRequest request(const TargetSpec& target, const std::string& faultId, nlohmann::json args,
                       std::chrono::nanoseconds duration = 60s) {
    FaultRequest r;
    r.runId = "iotest";
    r.faultId = faultId;
    r.stepName = "io";
    r.faultType = "disk.io-load";
    r.target = &target;
    r.args = std::move(args);
    r.duration = duration;
    return r;
  }

  static TargetSpec pathTarget(const fs::path& path) {
    TargetSpec t;
    t.name = "disk";
    t.kind = TargetKind::kPath;
    t.path = path.string();
    return t;
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

TEST_F(IoLoadTest, LoadsTheDiskStopsPromptlyAndCleansUp) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  const uint64_t availBefore = availBlocks(dir);
  auto prepared = injector.prepare(request(
      target, "io1",
      {{"workers", 2}, {"readShare", 0.5}, {"blockSize", 256 * 1024}, {"fileSize", 16 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_TRUE(ourFiles(dir).empty());  // prepare only reads

  const uint64_t writeBefore = procIo("write_bytes");
  auto applied = injector.apply("io1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["direct"], true) << applied->observed.dump();
  EXPECT_EQ(applied->observed["layout"], "fallocate");
  EXPECT_EQ(ourFiles(dir).size(), 2u);
  auto held = injector.audit(prepared->undo);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 3u);  // two files and the running workers
  // Loads the disk: past the layout pass and 8 MiB into the random reads.
  ASSERT_TRUE(waitUntil(
      [&] {
        auto p = injector.progress("io1");
        return p && p->bytesWritten > 32 * kMiB && p->bytesRead >= 8 * kMiB;
      },
      30s));
  EXPECT_LT(availBlocks(dir) + 2 * 16 * kMiB / 4096, availBefore + 1);  // the files hold space

  auto t0 = std::chrono::steady_clock::now();
  auto reverted = injector.revert("io1", prepared->undo);
  double stopSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_LT(stopSeconds, 1.0);
  const auto& o = *reverted;
  EXPECT_LE(o["stopSeconds"].get<double>(), stopSeconds);
  EXPECT_GT(o["bytesRead"].get<uint64_t>(), 0u) << o.dump();
  EXPECT_GT(o["bytesWritten"].get<uint64_t>(), 32 * kMiB) << o.dump();  // the layout pass at least
  EXPECT_GT(o["totalMBps"].get<double>(), 0.0);
  EXPECT_EQ(o["directAtEnd"], true);
  EXPECT_EQ(o["workersEndedBy"], nlohmann::json::array({"revert"}));
  EXPECT_TRUE(o["workerErrors"].empty());
  EXPECT_EQ(o["filesRemoved"], 2);
  EXPECT_GT(procIo("write_bytes") - writeBefore, 32 * kMiB);  // real IO reached the device
  std::printf(
      "[ measure  ] io-load ext4-on-loop 2 workers 256KiB O_DIRECT 50%% reads: read %.1f MB/s, "
      "write %.1f MB/s over %.2f s; revert took %.1f ms (workers stopped in %.1f ms)\n",
      o["readMBps"].get<double>(), o["writeMBps"].get<double>(), o["loadSeconds"].get<double>(),
      stopSeconds * 1e3, o["stopSeconds"].get<double>() * 1e3);

  EXPECT_TRUE(ourFiles(dir).empty());
  EXPECT_LE(availBefore - availBlocks(dir), 1u);
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
  auto again = injector.revert("io1", prepared->undo);  // idempotent
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["filesRemoved"], 0);
}

TEST_F(IoLoadTest, StopsWithinOneSecondEvenWithLargeBlocks) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  auto prepared = injector.prepare(request(
      target, "io2",
      {{"workers", 4}, {"readShare", 0.0}, {"blockSize", 8 * kMiB}, {"fileSize", 16 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("io2", prepared->undo).ok());
  ASSERT_TRUE(waitUntil(  // an 8 MiB write completed; others are in flight
      [&] {
        return injector.progress("io2").value_or(IoLoadInjector::Progress{}).bytesWritten > 0;
      },
      30s));
  auto t0 = std::chrono::steady_clock::now();
  auto reverted = injector.revert("io2", prepared->undo);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  ASSERT_TRUE(reverted.ok());
  EXPECT_GT((*reverted)["bytesWritten"].get<uint64_t>(), 0u);
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(IoLoadTest, BytesBoundsTheLoad) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  auto prepared = injector.prepare(request(
      target, "io3",
      {{"workers", 3}, {"blockSize", 64 * 1024}, {"fileSize", 4 * kMiB}, {"bytes", 8 * kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("io3", prepared->undo).ok());
  ASSERT_TRUE(waitUntil(  // the workers end by themselves
      [&] {
        return injector.progress("io3").value_or(IoLoadInjector::Progress{}).workersRunning == 0;
      },
      30s));
  auto reverted = injector.revert("io3", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  const auto& o = *reverted;
  EXPECT_EQ(o["bytesRead"].get<uint64_t>() + o["bytesWritten"].get<uint64_t>(), 8 * kMiB)
      << o.dump();
  EXPECT_EQ(o["workersEndedBy"], nlohmann::json::array({"bytes"}));
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(IoLoadTest, StopsAtItsOwnDeadline) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  auto prepared = injector.prepare(request(
      target, "io4", {{"workers", 1}, {"blockSize", 64 * 1024}, {"fileSize", 4 * kMiB}}, 200ms));
  ASSERT_TRUE(prepared.ok());
  ASSERT_TRUE(injector.apply("io4", prepared->undo).ok());
  ASSERT_TRUE(waitUntil(  // the worker ends by itself
      [&] {
        return injector.progress("io4").value_or(IoLoadInjector::Progress{}).workersRunning == 0;
      },
      30s));
  auto reverted = injector.revert("io4", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["workersEndedBy"], nlohmann::json::array({"duration"}));
  EXPECT_LT((*reverted)["loadSeconds"].get<double>(), 0.5);
  EXPECT_TRUE(ourFiles(dir).empty());
}

// 512-byte direct IO on a device with 4 KiB sectors is refused with EINVAL: the worker goes
// on with buffered IO and says so.
TEST_F(IoLoadTest, FallsBackToBufferedIoWhenDirectIoIsRefused) {
  fs::path dir = ext4(4096);
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  auto prepared = injector.prepare(
      request(target, "io5", {{"workers", 1}, {"blockSize", 512}, {"fileSize", kMiB}}));
  ASSERT_TRUE(prepared.ok());
  auto applied = injector.apply("io5", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  ASSERT_TRUE(waitUntil(
      [&] {
        return injector.progress("io5").value_or(IoLoadInjector::Progress{}).bytesWritten > 0;
      },
      30s));
  auto reverted = injector.revert("io5", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  const auto& o = *reverted;
  EXPECT_EQ(o["directAtEnd"], false) << o.dump();
  ASSERT_EQ(o["directNotes"].size(), 1u) << o.dump();
  EXPECT_NE(o["directNotes"][0].get<std::string>().find("EINVAL"), std::string::npos);
  EXPECT_GT(o["bytesWritten"].get<uint64_t>(), 0u);
  EXPECT_TRUE(o["workerErrors"].empty());
  EXPECT_TRUE(ourFiles(dir).empty());
}

TEST_F(IoLoadTest, RefusesFilesThatDoNotFit) {
  fs::path dir = tmpfs();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  IoLoadInjector injector;
  auto prepared =
      injector.prepare(request(target, "io6", {{"workers", 2}, {"fileSize", 256 * kMiB}}));
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.error().message().find("available"), std::string::npos);
  EXPECT_TRUE(ourFiles(dir).empty());
}

// The guardian's situation: the owner is killed (SIGKILL) with its workers running; another
// process reverts from the journalled undo record alone, where no workers exist.
TEST_F(IoLoadTest, TheGuardianRemovesTheFilesAfterTheOwnerWasKilled) {
  fs::path dir = ext4();
  ASSERT_FALSE(dir.empty());
  TargetSpec target = pathTarget(dir);
  const uint64_t availBefore = availBlocks(dir);
  IoLoadInjector planner;
  auto prepared = planner.prepare(
      request(target, "io7", {{"workers", 2}, {"blockSize", 128 * 1024}, {"fileSize", 8 * kMiB}}));
  ASSERT_TRUE(prepared.ok());
  const std::string journalled = prepared->undo.dump();

  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(ready[0]);
    IoLoadInjector injector;
    auto applied = injector.apply("io7", nlohmann::json::parse(journalled));
    bool loading = applied.ok() && waitUntil(
                                       [&] {
                                         auto p = injector.progress("io7");
                                         return p && p->bytesWritten > 0;
                                       },
                                       30s);
    char c = loading ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  Fd readyFd(ready[0]);
  pollfd p{readyFd.get(), POLLIN, 0};
  char c = 0;
  // The owner says 'y' once its workers have written: it dies with the load running.
  bool started = ::poll(&p, 1, 40000) == 1 && ::read(readyFd.get(), &c, 1) == 1 && c == 'y';
  ::kill(owner, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(started);
  EXPECT_EQ(ourFiles(dir).size(), 2u);

  IoLoadInjector guardian;
  auto undo = nlohmann::json::parse(journalled);
  auto left = guardian.audit(undo);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 2u);
  auto reverted = guardian.revert("io7", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["workersInThisProcess"], false);
  EXPECT_EQ((*reverted)["filesRemoved"], 2);
  EXPECT_TRUE(ourFiles(dir).empty());
  EXPECT_LE(availBefore - availBlocks(dir), 1u);
  EXPECT_TRUE(guardian.audit(undo)->empty());
}

}  // namespace
}  // namespace chaosd
