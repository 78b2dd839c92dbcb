// syscall.error and syscall.delay on a real started process (python3 doing real writes and
// fsyncs to real files): the filter installed before exec, the supervisor answering, the
// rule applied and reverted by the injector.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "injectors/process/ExecTarget.h"
#include "injectors/syscall/SyscallInjector.h"
#include "injectors/syscall/SyscallSupervisor.h"
#include "tests/support/FreePort.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::readReport;
using chaosd::testing::runDirIn;
using chaosd::testing::runShell;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The target: waits for `go1`, does N writes of one byte to out.bin and M to other.bin,
// counting failures by errno, writes the counts to result1; then the same after `go2` into
// result2; then fsyncs (timed) after `go3` into result3; then sleeps until stopped.
constexpr const char* kScript = R"PY(
import os, sys, time, errno
d = sys.argv[1]
def wait(name):
    while not os.path.exists(os.path.join(d, name)):
        time.sleep(0.002)
def burst(tag, n, m):
    out = os.open(os.path.join(d, "out.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    other = os.open(os.path.join(d, "other.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    counts = {"out_eio": 0, "out_other_err": 0, "other_err": 0}
    for _ in range(n):
        try:
            os.write(out, b"x")
        except OSError as e:
            counts["out_eio" if e.errno == errno.EIO else "out_other_err"] += 1
    for _ in range(m):
        try:
            os.write(other, b"y")
        except OSError:
            counts["other_err"] += 1
    os.close(out); os.close(other)
    tmp = os.path.join(d, tag + ".tmp")
    with open(tmp, "w") as f:
        f.write("%d %d %d" % (counts["out_eio"], counts["out_other_err"], counts["other_err"]))
    os.rename(tmp, os.path.join(d, tag))
wait("go1"); burst("result1", 2000, 500)
wait("go2"); burst("result2", 500, 100)
wait("go3")
fd = os.open(os.path.join(d, "sync.bin"), os.O_WRONLY | os.O_CREAT, 0o600)
times = []
for _ in range(5):
    t0 = time.monotonic(); os.fsync(fd); times.append(time.monotonic() - t0)
with open(os.path.join(d, "result3.tmp"), "w") as f:
    f.write(" ".join("%.6f" % t for t in times))
os.rename(os.path.join(d, "result3.tmp"), os.path.join(d, "result3"))
time.sleep(600)
)PY";

std::string waitFile(const std::string& path, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    std::ifstream in(path);
    if (in) return std::string((std::istreambuf_iterator<char>(in)), {});
    std::this_thread::sleep_for(5ms);  // the target writes it: poll
  }
  return "";
}

void touch(const std::string& path) { std::ofstream(path) << "go"; }

class SyscallFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaosd-syscall-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ExecSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", kScript, dir_};
    ExecOptions options;
    for (const char* name : {"write", "fsync"}) {
      options.notifySyscalls.push_back(seccomp_syscall_resolve_name(name));
    }
    auto started = startExec(spec, dir_ + "/target.log", nullptr, options);
    ASSERT_TRUE(started.ok()) << started.error().describe();
    ASSERT_TRUE(started->listener);
    pid_ = started->pid;
    undo_ = execUndo(*started, 2000ms);
    supervisor_ = std::make_unique<SyscallSupervisor>(started->pid, started->startTime,
                                                      std::move(started->listener));
    supervisor_->setFiltered({options.notifySyscalls.begin(), options.notifySyscalls.end()});
    supervisors_->add(pid_, *supervisor_);
    target_.name = "app";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = pid_;
  }
  void TearDown() override {
    if (pid_ > 0) (void)stopExec(undo_);
    if (supervisor_) supervisors_->remove(pid_, *supervisor_);
    supervisor_.reset();
    fs::remove_all(dir_);
  }

  FaultRequest request(const std::string& id, const std::string& type, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.stepName = id;
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    r.duration = 10s;
    return r;
  }

  std::string dir_;
  pid_t pid_ = 0;
  nlohmann::json undo_;
  // The registry the injectors find the supervisor in (registerSyscallFaults makes one).
  std::shared_ptr<SupervisorRegistry> supervisors_ = std::make_shared<SupervisorRegistry>();
  std::unique_ptr<SyscallSupervisor> supervisor_;
  TargetSpec target_;
};

TEST_F(SyscallFaultTest, ErrorsHitTheirShareOfMatchingCallsOnlyAndStopAtRevert) {
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(request(
      "eio", "syscall.error",
      {{"syscalls", {"write"}}, {"errno", "EIO"}, {"probability", 0.3}, {"path", "*/out.bin"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto applied = injector.apply("eio", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "seccomp-notify");

  touch(dir_ + "/go1");
  std::istringstream r1(waitFile(dir_ + "/result1", 60s));
  int outEio = -1, outOther = -1, otherErr = -1;
  r1 >> outEio >> outOther >> otherErr;
  ASSERT_GE(outEio, 0) << "no result from the target";
  // 2000 writes at p = 0.3: mean 600, sd 20.5; five sd either way.
  EXPECT_GT(outEio, 600 - 103);
  EXPECT_LT(outEio, 600 + 103);
  EXPECT_EQ(outOther, 0) << "only EIO was injected";
  EXPECT_EQ(otherErr, 0) << "the path glob must spare other.bin";

  auto reverted = injector.revert("eio", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["matched"].get<int>(), 2000);
  EXPECT_EQ((*reverted)["hit"].get<int>(), outEio);
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());

  touch(dir_ + "/go2");
  std::istringstream r2(waitFile(dir_ + "/result2", 60s));
  r2 >> outEio >> outOther >> otherErr;
  EXPECT_EQ(outEio, 0) << "after the revert the target runs normally";
  EXPECT_EQ(otherErr, 0);
  EXPECT_EQ(fs::file_size(dir_ + "/other.bin"), 600u);
}

TEST_F(SyscallFaultTest, DelayAddsTheConfiguredLatencyToListedCallsOnly) {
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(
      request("slow", "syscall.delay", {{"syscalls", {"fsync"}}, {"delay", 50'000'000}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("slow", prepared->undo).ok());
  touch(dir_ + "/go1");
  ASSERT_FALSE(waitFile(dir_ + "/result1", 60s).empty());
  touch(dir_ + "/go2");
  ASSERT_FALSE(waitFile(dir_ + "/result2", 60s).empty());
  touch(dir_ + "/go3");
  std::istringstream r3(waitFile(dir_ + "/result3", 60s));
  double t = 0;
  int n = 0;
  while (r3 >> t) {
    ++n;
    EXPECT_GE(t, 0.050) << "fsync " << n << " was not delayed";
    EXPECT_LT(t, 0.500);
  }
  EXPECT_EQ(n, 5);
  auto reverted = injector.revert("slow", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["hit"].get<int>(), 5);
  // The 2,600 writes were intercepted (listed in the filter) but not delayed or failed.
  EXPECT_EQ(fs::file_size(dir_ + "/out.bin"), 2500u);
}

TEST_F(SyscallFaultTest, AfterAndFirstBoundWhichMatchingCallsAreHit) {
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(request("bounded", "syscall.error",
                                           {{"syscalls", {"write"}},
                                            {"errno", "ENOSPC"},
                                            {"path", "*/out.bin"},
                                            {"after", 100},
                                            {"first", 50}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(injector.apply("bounded", prepared->undo).ok());
  touch(dir_ + "/go1");
  std::istringstream r1(waitFile(dir_ + "/result1", 60s));
  int outEio = -1, outOther = -1, otherErr = -1;
  r1 >> outEio >> outOther >> otherErr;
  EXPECT_EQ(outEio, 0) << "ENOSPC, not EIO, was injected";
  EXPECT_EQ(outOther, 50) << "calls 101 to 150 fail, no others";
  EXPECT_EQ(otherErr, 0);
  auto reverted = injector.revert("bounded", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["hit"].get<int>(), 50);
  EXPECT_EQ((*reverted)["passed"].get<int>(), 1950);
  // 2000 writes attempted, 50 refused.
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/out.bin"), 1950u);
}

TEST_F(SyscallFaultTest, WithoutAFaultEveryInterceptedCallRuns) {
  touch(dir_ + "/go1");
  std::istringstream r1(waitFile(dir_ + "/result1", 60s));
  int outEio = -1, outOther = -1, otherErr = -1;
  r1 >> outEio >> outOther >> otherErr;
  EXPECT_EQ(outEio, 0);
  EXPECT_EQ(otherErr, 0);
  EXPECT_GE(supervisor_->answered(), 2500u);
}

// The syscall example, for real through chaosctl: the WAL demo refuses cleanly while half its
// log writes fail with EIO, and stores everything again afterwards.
TEST(SyscallExampleTest, SyscallDemoExampleRunsForReal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/chaosd-syscall-demo-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const uint16_t port = chaosd::testing::freeLoopbackPorts();
  ASSERT_NE(port, 0);
  const std::string cmd =
      std::string(CHAOSCTL_PATH) + " run --state-dir " + root + "/state --report-dir " + root +
      "/reports --var window=2s --var port=" + std::to_string(port) + " --var workdir=" + root +
      "/wal " + CHAOSD_SOURCE_DIR + "/experiments/examples/syscall-demo.yaml";
  int st = -1;
  const std::string out = runShell(cmd, &st);
  EXPECT_EQ(st, 0) << out;
  const auto report = readReport(runDirIn(root + "/reports"));
  ASSERT_FALSE(report.is_discarded()) << out;
  const auto& fault = report["faults"][0];
  EXPECT_EQ(fault["state"], "reverted");
  EXPECT_EQ(fault["backend"], "seccomp-notify");
  EXPECT_GT(fault["observed"]["hit"].get<int>(), 0) << fault.dump();
  int refused = 0;
  for (const auto& probe : report["probes"]) {
    for (const auto& s : probe["samples"]) {
      if (s["phase"] == "during" && s["detail"] == "status 503") ++refused;
    }
  }
  EXPECT_GT(refused, 0) << "the demo never saw an injected EIO";
  EXPECT_EQ(report["execs"][0]["state"], "stopped");
  EXPECT_FALSE(fs::exists(root + "/wal")) << "the demo removes its log when it is stopped";
  fs::remove_all(root);
}

}  // namespace
}  // namespace chaosd
