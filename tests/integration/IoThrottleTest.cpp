// io.throttle against the real kernel: an ext4 image on a loop device of the test's own, a
// cgroup of the test's own (cgroup v1 blkio on hybrid machines, v2 where io is enabled), a
// user's rule on the device that must come back byte for byte, a writer whose O_DIRECT writes
// the throttle slows down, and the guardian's revert after the owner's SIGKILL. TearDown kills
// the children, removes the cgroup (its rules go with it) and unmounts (detaching the loop).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessKernel.h"
#include "experiments/model/Experiment.h"
#include "injectors/resource/IoThrottleFiles.h"
#include "injectors/resource/IoThrottleInjector.h"
#include "tests/support/DirectWrite.h"
#include "tests/support/ScratchFs.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::waitUntil;

constexpr uint64_t kMiB = 1 << 20;

std::string slurp(const std::string& file) {
  auto text = readKernelFile(file);
  return text ? *text : "<" + text.error().message() + ">";
}

class IoThrottleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount, loop devices, cgroups)";
    auto mounts = ioCgroupMounts();
    ASSERT_TRUE(mounts.ok()) << mounts.error().describe();
    id_ = "iot" + std::to_string(::getpid());
    const std::string name = "chaosd-test-" + std::to_string(::getpid());
    if (!mounts->blkioV1.empty() && mounts->blkioRoot == "/") {
      mode_ = "v1";
      cgroup_ = mounts->blkioV1 + "/" + name;
    } else if (!mounts->v2.empty()) {
      const std::string control = slurp(mounts->v2 + "/cgroup.subtree_control");
      if (control.find("io") == std::string::npos) {
        GTEST_SKIP() << "the io controller is not enabled in " << mounts->v2
                     << "/cgroup.subtree_control and no cgroup v1 hierarchy has blkio";
      }
      mode_ = "v2";
      cgroup_ = mounts->v2 + "/" + name;
    } else {
      GTEST_SKIP() << "neither cgroup2 nor a blkio v1 hierarchy is mounted";
    }
    char tmpl[] = "/tmp/chaosd-iothrottle-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    scratch_ = std::make_unique<ScratchFs>(root_ / "ext4");
    const std::string why =
        scratch_->mountImage(root_ / "ext4.img", 64 * kMiB, "mkfs.ext4 -q -F -b 4096", "ext4");
    ASSERT_EQ(why, "");
    struct stat st {};
    ASSERT_EQ(::stat(scratch_->dir().c_str(), &st), 0);
    device_ = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    ASSERT_TRUE(makeCgroup(cgroup_).ok());
    if (mode_ == "v1") {
      files_ = {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
    } else {
      files_ = {"io.max"};
    }
  }

  void TearDown() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!cgroup_.empty()) {
      // Its processes are reaped; the kernel lets the directory go once they have left it.
      EXPECT_TRUE(waitUntil([&] { return ::rmdir(cgroup_.c_str()) == 0 || errno == ENOENT; }))
          << "rmdir " << cgroup_ << ": " << std::strerror(errno);
    }
    scratch_.reset();  // unmounts; the loop device auto-clears
    if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  // A sleeping child in the test's cgroup: the target.
  pid_t startTarget() {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    children_.push_back(pid);
    EXPECT_TRUE(moveToCgroup(cgroup_, pid).ok());
    return pid;
  }

  TargetSpec target(pid_t pid) const {
    TargetSpec t;
    t.name = "app";
    t.kind = TargetKind::kProcess;
    t.process.pid = pid;
    return t;
  }

  FaultRequest request(const TargetSpec& t, nlohmann::json args) const {
    FaultRequest r;
    r.runId = "iothrottle";
    r.faultId = id_;
    r.stepName = "throttle";
    r.faultType = "io.throttle";
    r.target = &t;
    r.args = std::move(args);
    r.duration = 60s;
    return r;
  }

  // The user's own rule on the device, before the fault: read at 10 MiB/s.
  void putUsersRule() {
    const std::string rule = mode_ == "v1" ? device_ + " 10485760" : device_ + " rbps=10485760";
    const std::string file = cgroup_ + "/" + files_[0];  // read_bps_device, or io.max
    ASSERT_TRUE(writeKernelFile(file, rule).ok());
  }

  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> out;
    for (const auto& f : files_) out[f] = slurp(cgroup_ + "/" + f);
    return out;
  }

  // A child that joins the cgroup and writes `bytes` with O_DIRECT into a preallocated file;
  // returns the seconds the writes took (negative on failure).
  double timedDirectWrite(uint64_t bytes) {
    return testing::timedDirectWrite(cgroup_, (scratch_->dir() / "written").string(), bytes,
                                     children_, 60000);
  }

  std::string id_;
  std::string mode_;
  std::string cgroup_;
  std::string device_;
  std::vector<std::string> files_;
  fs::path root_;
  std::unique_ptr<ScratchFs> scratch_;
  std::vector<pid_t> children_;
};

TEST_F(IoThrottleTest, ThrottlesWritesAndRestoresTheUsersRulesByteForByte) {
  const pid_t pid = startTarget();
  putUsersRule();
  const auto before = snapshot();
  TargetSpec t = target(pid);
  IoThrottleInjector injector(systemProcessKernel());
  auto prepared =
      injector.prepare(request(t, {{"path", scratch_->dir().string()}, {"writeBps", kMiB}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  std::printf("[ describe ] %s\n", prepared->description.c_str());
  EXPECT_EQ(prepared->undo["mode"], mode_);
  EXPECT_EQ(prepared->undo["device"], device_);
  EXPECT_EQ(prepared->resources,
            std::vector<std::string>{"io.throttle:" + cgroup_ + ":" + device_});
  EXPECT_EQ(snapshot(), before) << "prepare only reads";

  // Unthrottled first, for the comparison.
  const double free = timedDirectWrite(4 * kMiB);
  ASSERT_GT(free, 0);

  auto applied = injector.apply(id_, prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  if (mode_ == "v1") {
    EXPECT_EQ(slurp(cgroup_ + "/blkio.throttle.write_bps_device"), device_ + " 1048576\n");
    EXPECT_EQ(slurp(cgroup_ + "/blkio.throttle.read_bps_device"), before.at(files_[0]))
        << "the user's read rule stays";
  } else {
    EXPECT_EQ(slurp(cgroup_ + "/io.max"),
              device_ + " rbps=10485760 wbps=1048576 riops=max wiops=max\n");
  }

  const double throttled = timedDirectWrite(4 * kMiB);
  std::printf(
      "[ measure  ] 4 MiB O_DIRECT: %.3f s unthrottled, %.3f s at writeBps 1MiB/s "
      "(%.2f MiB/s)\n",
      free, throttled, throttled > 0 ? 4.0 / throttled : 0.0);
  EXPECT_GE(throttled, 2.5);

  auto reverted = injector.revert(id_, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  std::printf("[ observed ] %s\n", reverted->dump().c_str());
  EXPECT_EQ(snapshot(), before) << "every file reads exactly as before";
  EXPECT_EQ((*reverted)["places"][0]["files"][0]["action"], "restored");
  EXPECT_GE((*reverted)["places"][0]["during"]["writeBytes"].get<uint64_t>(), 4 * kMiB);
  auto audit = injector.audit(prepared->undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->empty());

  auto again = injector.revert(id_, prepared->undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["places"][0]["files"][0]["action"], "unchanged");
  EXPECT_EQ(snapshot(), before);
}

TEST_F(IoThrottleTest, TheGuardianRestoresTheFilesAfterTheOwnersSigkill) {
  const pid_t pid = startTarget();
  putUsersRule();
  const auto before = snapshot();
  TargetSpec t = target(pid);
  IoThrottleInjector planner(systemProcessKernel());
  auto prepared = planner.prepare(request(t, {{"path", scratch_->dir().string()},
                                              {"writeBps", kMiB},
                                              {"readBps", 2 * kMiB},
                                              {"writeIops", 100}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  const std::string journalled = prepared->undo.dump();

  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(ready[0]);
    IoThrottleInjector injector(systemProcessKernel());
    char c = injector.apply(id_, nlohmann::json::parse(journalled)).ok() ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    for (;;) ::pause();
  }
  children_.push_back(owner);
  ::close(ready[1]);
  Fd readyFd(ready[0]);
  pollfd p{readyFd.get(), POLLIN, 0};
  char c = 0;
  const bool applied = ::poll(&p, 1, 20000) == 1 && ::read(readyFd.get(), &c, 1) == 1 && c == 'y';
  ::kill(owner, SIGKILL);
  ASSERT_EQ(::waitpid(owner, nullptr, 0), owner);
  ASSERT_TRUE(applied);
  EXPECT_NE(snapshot(), before) << "the rules outlive their owner";

  IoThrottleInjector guardian(systemProcessKernel());
  const auto undo = nlohmann::json::parse(journalled);
  auto leftovers = guardian.audit(undo);
  ASSERT_TRUE(leftovers.ok());
  EXPECT_EQ(leftovers->size(), mode_ == "v1" ? 3u : 1u);
  for (const auto& line : *leftovers) std::printf("[ audit    ] %s\n", line.c_str());
  auto reverted = guardian.revert(id_, undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["statsInThisProcess"], false);
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(guardian.audit(undo)->empty());
}

// kill -9 of `chaosctl run` while the throttle is held: the guardian puts every file back as
// it was, the user's own rule included.
TEST_F(IoThrottleTest, KillNineOfChaosctlRunLeavesTheLimitsAsTheyWere) {
  const pid_t pid = startTarget();
  putUsersRule();
  const auto before = snapshot();
  const std::string file = (root_ / "exp.yaml").string();
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: iokill}\n"
                         "targets: {app: {process: {pid: "
                      << pid
                      << "}}}\n"
                         "steadyState:\n  baseline: {duration: 200ms}\n"
                         "  recovery: {duration: 200ms}\n  probes:\n"
                         "    - {name: alive, command: {argv: [/bin/true]}, every: 100ms}\n"
                         "method:\n"
                         "  - {name: throttle, fault: io.throttle, target: app, args: {path: "
                      << scratch_->dir().string()
                      << ", writeBps: 1MiB}, duration: 60s}\n"
                         "report: {dir: "
                      << root_.string() << "/reports}\n";
  const std::string cmd = std::string("exec ") + CHAOSCTL_PATH + " run --state-dir " +
                          root_.string() + "/state " + file + " >" + root_.string() +
                          "/run.log 2>&1";
  pid_t run = ::fork();
  if (run == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string writeFile = cgroup_ + "/" + (mode_ == "v1" ? files_[1] : files_[0]);
  ASSERT_TRUE(waitUntil([&] { return slurp(writeFile).find("1048576") != std::string::npos; }, 30s))
      << slurp((root_ / "run.log").string());
  const auto killedAt = std::chrono::steady_clock::now();
  ::kill(run, SIGKILL);
  ASSERT_EQ(::waitpid(run, nullptr, 0), run);
  ASSERT_TRUE(waitUntil([&] { return snapshot() == before; }, 10s))
      << "the guardian did not restore the limits: " << slurp(writeFile);
  std::printf("[ measure  ] kill -9 of chaosctl run to the limits restored: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killedAt)
                  .count());
}

TEST_F(IoThrottleTest, RefusesAPathWithoutABlockDevice) {
  const pid_t pid = startTarget();
  ScratchFs tmp(root_ / "tmpfs");
  ASSERT_EQ(tmp.mountTmpfs("size=1m"), "");
  TargetSpec t = target(pid);
  IoThrottleInjector injector(systemProcessKernel());
  auto prepared = injector.prepare(request(t, {{"path", tmp.dir().string()}, {"writeBps", kMiB}}));
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.error().message().find(tmp.dir().string()), std::string::npos)
      << prepared.error().message();
  EXPECT_NE(prepared.error().message().find("tmpfs"), std::string::npos)
      << prepared.error().message();
}

}  // namespace
}  // namespace chaosd
