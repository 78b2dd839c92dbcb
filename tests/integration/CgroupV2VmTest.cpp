// io.throttle through cgroup v2's io.max, on a kernel whose cgroup2 tree has the io controller:
// Debian's stock kernel in scripts/vm-test (pure v2 there). The development and CI machines
// bind blkio to cgroup v1, so on them this skips and IoThrottleTest covers the v1 files.
// A loop device over a file in /tmp is the disk; the fault's path is its device node.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessKernel.h"
#include "experiments/model/Experiment.h"
#include "injectors/resource/IoThrottleInjector.h"
#include "tests/support/DirectWrite.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using testing::waitUntil;

constexpr uint64_t kMiB = 1 << 20;

std::string slurp(const std::string& file) {
  std::ifstream in(file);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool writeTo(const std::string& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

class CgroupV2VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto mount = cgroup2Mount();
    if (!mount) GTEST_SKIP() << mount.error().describe();
    mount_ = *mount;
    if (slurp(mount_ + "/cgroup.controllers").find("io") == std::string::npos) {
      GTEST_SKIP() << "the io controller is not in cgroup v2 here (bound to v1): "
                      "scripts/vm-test runs this on Debian's stock kernel";
    }
    if (slurp(mount_ + "/cgroup.subtree_control").find("io") == std::string::npos) {
      ASSERT_TRUE(writeTo(mount_ + "/cgroup.subtree_control", "+io"));
    }
    cgroup_ = mount_ + "/chaosd-vm-io-" + std::to_string(::getpid());
    ASSERT_TRUE(makeCgroup(cgroup_).ok());
    ASSERT_TRUE(slurp(cgroup_ + "/io.max").empty()) << "io.max exists and is empty";

    // The disk: a loop device over a 64 MiB file, detached when loop_ closes.
    image_ = "/tmp/chaosd-vm-io-" + std::to_string(::getpid()) + ".img";
    Fd img(::open(image_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    ASSERT_TRUE(img && ::ftruncate(img.get(), 64 * kMiB) == 0) << std::strerror(errno);
    Fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(ctl) << "/dev/loop-control: " << std::strerror(errno);
    const int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    ASSERT_GE(n, 0) << std::strerror(errno);
    device_ = "/dev/loop" + std::to_string(n);
    loop_.reset(::open(device_.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(loop_) << device_ << ": " << std::strerror(errno);
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(img.get());
    cfg.block_size = 512;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    ASSERT_EQ(::ioctl(loop_.get(), LOOP_CONFIGURE, &cfg), 0) << std::strerror(errno);
    struct stat st {};
    ASSERT_EQ(::stat(device_.c_str(), &st), 0);
    majMin_ = std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  }

  void TearDown() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!cgroup_.empty()) {
      EXPECT_TRUE(waitUntil([&] { return ::rmdir(cgroup_.c_str()) == 0 || errno == ENOENT; }));
    }
    loop_.reset();
    if (!image_.empty()) ::unlink(image_.c_str());
  }

  pid_t childInCgroup() {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    children_.push_back(pid);
    EXPECT_TRUE(moveToCgroup(cgroup_, pid).ok());
    return pid;
  }

  // A child in the cgroup writing `bytes` with O_DIRECT to the device; the seconds it took.
  double timedDirectWrite(uint64_t bytes) {
    return testing::timedDirectWrite(cgroup_, device_, bytes, children_);
  }

  std::string mount_;
  std::string cgroup_;
  std::string image_;
  std::string device_;
  std::string majMin_;
  Fd loop_;
  std::vector<pid_t> children_;
};

TEST_F(CgroupV2VmTest, IoThrottleLimitsWritesThroughIoMaxAndRestoresTheUsersLine) {
  const pid_t target = childInCgroup();
  // The user's own limit on the device: reads at 10 MiB/s. It must come back byte for byte.
  ASSERT_TRUE(writeTo(cgroup_ + "/io.max", majMin_ + " rbps=10485760"));
  const std::string before = slurp(cgroup_ + "/io.max");
  ASSERT_NE(before.find("rbps=10485760"), std::string::npos) << before;
  const double free = timedDirectWrite(4 * kMiB);

  TargetSpec t;
  t.name = "app";
  t.kind = TargetKind::kProcess;
  t.process.pid = target;
  FaultRequest r;
  r.runId = "vm";
  r.faultId = "vmio" + std::to_string(::getpid());
  r.stepName = "throttle";
  r.faultType = "io.throttle";
  r.target = &t;
  r.args = {{"path", device_}, {"writeBps", 1 * kMiB}};
  r.duration = 60s;
  IoThrottleInjector injector(systemProcessKernel());
  auto prepared = injector.prepare(r);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->undo["mode"], "v2") << prepared->undo.dump();
  EXPECT_EQ(prepared->undo["device"], majMin_);
  ASSERT_TRUE(injector.apply(r.faultId, prepared->undo).ok());
  const std::string during = slurp(cgroup_ + "/io.max");
  EXPECT_NE(during.find("wbps=1048576"), std::string::npos) << during;
  EXPECT_NE(during.find("rbps=10485760"), std::string::npos) << "the user's key is kept";

  const double throttled = timedDirectWrite(4 * kMiB);
  std::printf(
      "[ measure  ] io.max (v2): 4 MiB O_DIRECT to %s: %.3f s free, %.3f s at wbps 1 MiB/s "
      "(%.2f MiB/s)\n",
      device_.c_str(), free, throttled, throttled > 0 ? 4.0 / throttled : 0.0);
  EXPECT_GE(throttled, 2.5);
  EXPECT_LT(throttled, 30.0);

  auto reverted = injector.revert(r.faultId, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(slurp(cgroup_ + "/io.max"), before) << "restored byte for byte";
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
  ASSERT_TRUE(injector.revert(r.faultId, prepared->undo).ok());
  EXPECT_EQ(slurp(cgroup_ + "/io.max"), before);
}

}  // namespace
}  // namespace chaosd
