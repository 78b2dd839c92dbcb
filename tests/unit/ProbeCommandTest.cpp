#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "chaosd/engine/probes/BoundedCommand.h"
#include "chaosd/engine/probes/Probe.h"
#include "tests/support/TestHttpServer.h"

namespace chaosd {
namespace {

using std::chrono::milliseconds;

ProbeSpec commandSpec(std::vector<std::string> argv, milliseconds timeout = milliseconds(5000)) {
  ProbeSpec spec;
  spec.name = "check";
  spec.kind = ProbeKind::kCommand;
  spec.command.argv = std::move(argv);
  spec.timeout = timeout;
  return spec;
}

ProbeSample sampleOnce(const ProbeSpec& spec) {
  auto probe = makeProbe(spec);
  EXPECT_TRUE(probe.ok()) << (probe.ok() ? "" : probe.error().describe());
  return (*probe)->sample(Phase::kDuring);
}

ValueMatch equals(std::string v) {
  ValueMatch m;
  m.values = {std::move(v)};
  return m;
}

// No child of ours is left as a zombie (other children may be running; none has exited).
void expectNoZombieChild() {
  int status = 0;
  const pid_t reaped = ::waitpid(-1, &status, WNOHANG);
  EXPECT_LE(reaped, 0) << "a zombie child was left: pid " << reaped;
}

// Gone, or a zombie of someone else's (reparented and not yet reaped): not running.
bool processIsDead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close == std::string::npos || text.size() < close + 3 || text[close + 2] == 'Z' ||
         text[close + 2] == 'X';
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/chaosd-probe-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

pid_t readPid(const std::string& path) {
  pid_t pid = 0;
  testing::waitUntil([&] {
    std::ifstream in(path);
    return static_cast<bool>(in >> pid) && pid > 0;
  });
  return pid;
}

TEST(ProbeCommandTest, ExitCodes) {
  auto ok = sampleOnce(commandSpec({"/bin/true"}));
  EXPECT_TRUE(ok.ok) << ok.detail;
  EXPECT_EQ(ok.detail, "exit 0");
  EXPECT_EQ(ok.value, 0);

  auto bad = sampleOnce(commandSpec({"/bin/false"}));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.detail, "exit 1 (expected == 0)");
  EXPECT_EQ(bad.value, 1);

  auto spec = commandSpec({"false"});  // looked up in PATH
  spec.tolerance.exitCode = equals("1");
  EXPECT_TRUE(sampleOnce(spec).ok);
  expectNoZombieChild();
}

TEST(ProbeCommandTest, StdoutRegexAndEnvironment) {
  auto spec = commandSpec({"/bin/sh", "-c", "echo \"state=$PROBE_STATE\""});
  spec.command.env = {{"PROBE_STATE", "ok"}};
  spec.tolerance.stdoutRegex = "^state=ok$";
  auto s = sampleOnce(spec);
  EXPECT_TRUE(s.ok) << s.detail;

  spec.tolerance.stdoutRegex = "healthy";
  s = sampleOnce(spec);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "exit 0, stdout did not match /healthy/");
  expectNoZombieChild();
}

TEST(ProbeCommandTest, InheritsOurEnvironment) {
  ::setenv("CHAOSD_PROBE_TEST_INHERITED", "yes", 1);
  auto spec = commandSpec({"/bin/sh", "-c", "echo $CHAOSD_PROBE_TEST_INHERITED"});
  spec.tolerance.stdoutRegex = "yes";
  EXPECT_TRUE(sampleOnce(spec).ok);
  ::unsetenv("CHAOSD_PROBE_TEST_INHERITED");
}

TEST(ProbeCommandTest, MissingProgram) {
  auto s = sampleOnce(commandSpec({"/nonexistent/probe"}));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "spawn /nonexistent/probe: No such file or directory");
  expectNoZombieChild();
}

TEST(ProbeCommandTest, KilledBySignal) {
  auto s = sampleOnce(commandSpec({"/bin/sh", "-c", "kill -TERM $$"}));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "killed by SIGTERM");
  expectNoZombieChild();
}

TEST(ProbeCommandTest, TimeoutKillsAndReaps) {
  TempDir dir;
  const std::string pidFile = dir.file("pid");
  auto probe = makeProbe(commandSpec({"/bin/sh", "-c", "echo $$ > " + pidFile + "; exec sleep 30"},
                                     milliseconds(300)));
  ASSERT_TRUE(probe.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto s = (*probe)->sample(Phase::kDuring);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "timeout after 300ms (process group killed)");
  EXPECT_GE(elapsed, milliseconds(300));
  EXPECT_LT(elapsed, milliseconds(500));
  const pid_t pid = readPid(pidFile);
  ASSERT_GT(pid, 0);
  // Reaped by the probe: not even a zombie is left, so the pid is gone.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  expectNoZombieChild();
}

TEST(ProbeCommandTest, TimeoutKillsTheWholeGroup) {
  TempDir dir;
  const std::string pidFile = dir.file("pid");
  auto s = sampleOnce(commandSpec({"/bin/sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"},
                                  milliseconds(300)));
  EXPECT_FALSE(s.ok);
  const pid_t grandchild = readPid(pidFile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(testing::waitUntil([&] { return processIsDead(grandchild); }))
      << "the background sleep outlived the probe";
  expectNoZombieChild();
}

TEST(ProbeCommandTest, ExitWhileABackgroundChildHoldsStdout) {
  // sh exits at once; its background sleep keeps the stdout pipe open. The probe must not
  // wait for the pipe to close, and must not leave the sleep running.
  TempDir dir;
  const std::string pidFile = dir.file("pid");
  auto spec = commandSpec({"/bin/sh", "-c", "sleep 30 & echo $! > " + pidFile + "; echo done"},
                          milliseconds(5000));
  spec.tolerance.stdoutRegex = "done";
  const auto t0 = std::chrono::steady_clock::now();
  auto s = sampleOnce(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));
  EXPECT_TRUE(s.ok) << s.detail;
  const pid_t grandchild = readPid(pidFile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(testing::waitUntil([&] { return processIsDead(grandchild); }));
  expectNoZombieChild();
}

TEST(ProbeCommandTest, StdoutIsBounded) {
  CommandRequest request;
  request.argv = {"/bin/sh", "-c", "head -c 1000000 /dev/zero; echo; echo tail"};
  request.maxStdout = 4096;
  auto out = runBoundedCommand(request);
  ASSERT_TRUE(out.ok()) << out.error().describe();
  EXPECT_EQ(out->exitCode, 0);
  EXPECT_EQ(out->stdoutText.size(), 4096u);
  EXPECT_TRUE(out->stdoutTruncated);
  EXPECT_FALSE(out->timedOut);
}

TEST(ProbeCommandTest, ChildGetsItsOwnGroupAndNoExtraDescriptors) {
  CommandRequest request;
  // Its pid, its process group (field 5 of stat), then the descriptors `ls` holds.
  request.argv = {"/bin/sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat; ls /proc/self/fd"};
  auto out = runBoundedCommand(request);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->exitCode, 0);
  const std::string pid = std::to_string(out->pid);
  // A group of its own; stdin, stdout, stderr and the directory ls reads (3), nothing of ours.
  EXPECT_EQ(out->stdoutText, pid + "\n" + pid + "\n0\n1\n2\n3\n");
}

TEST(ProbeCommandTest, ChildStartsWithAnEmptySignalMask) {
  // The engine may block signals in its threads (signalfd); the child must not inherit that.
  sigset_t term;
  sigset_t old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto s = sampleOnce(commandSpec({"/bin/sh", "-c", "kill -TERM $$; echo survived"}));
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(s.detail, "killed by SIGTERM");
}

TEST(ProbeCommandTest, RefusesAnEmptyArgv) {
  EXPECT_FALSE(makeProbe(commandSpec({})).ok());
  EXPECT_FALSE(makeProbe(commandSpec({""})).ok());
}

}  // namespace
}  // namespace chaosd
