#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chaosd/engine/probes/Probe.h"
#include "tests/support/TestHttpServer.h"

extern char** environ;

namespace chaosd {
namespace {

char stateOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close == std::string::npos || text.size() < close + 3 ? '?' : text[close + 2];
}

// A copy of sleep under a name no other process has, started as our child.
class ProbeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "chz" + std::to_string(::getpid());  // comm holds at most 15 bytes
    dir_ = std::filesystem::temp_directory_path() / ("chaosd-proc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const auto exe = dir_ / name_;
    std::filesystem::copy_file("/bin/sleep", exe,
                               std::filesystem::copy_options::overwrite_existing);
    std::string path = exe.string();
    std::string arg = "60";
    char* argv[] = {path.data(), arg.data(), nullptr};
    ASSERT_EQ(::posix_spawn(&pid_, path.c_str(), nullptr, nullptr, argv, environ), 0);
    // Until exec is done, the child still has our comm.
    ASSERT_TRUE(testing::waitUntil([&] {
      std::ifstream comm("/proc/" + std::to_string(pid_) + "/comm");
      std::string c;
      return std::getline(comm, c) && c == name_;
    }));
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  ProbeSpec spec() const {
    ProbeSpec s;
    s.name = "worker";
    s.kind = ProbeKind::kProcess;
    s.timeout = std::chrono::seconds(2);
    return s;
  }
  ProbeSample sampleOnce(const ProbeSpec& s) {
    auto probe = makeProbe(s);
    EXPECT_TRUE(probe.ok()) << (probe.ok() ? "" : probe.error().describe());
    return (*probe)->sample(Phase::kDuring);
  }

  std::string name_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

ValueMatch equals(std::string v) {
  ValueMatch m;
  m.values = {std::move(v)};
  return m;
}

TEST_F(ProbeProcessTest, ByPidAndByName) {
  auto s = spec();
  s.process.selector.pid = pid_;
  auto byPid = sampleOnce(s);
  EXPECT_TRUE(byPid.ok) << byPid.detail;
  EXPECT_EQ(byPid.detail, "1 process matches");
  EXPECT_EQ(byPid.value, 1);

  s = spec();
  s.process.selector.name = name_;
  auto byName = sampleOnce(s);
  EXPECT_TRUE(byName.ok) << byName.detail;
  EXPECT_EQ(byName.value, 1);

  s.tolerance.count = equals("1");
  EXPECT_TRUE(sampleOnce(s).ok);
  s.tolerance.count = equals("2");
  auto two = sampleOnce(s);
  EXPECT_FALSE(two.ok);
  EXPECT_EQ(two.detail, "1 process matches (expected == 2)");
}

TEST_F(ProbeProcessTest, StoppedIsNotRunning) {
  auto s = spec();
  s.process.selector.name = name_;
  ASSERT_EQ(::kill(pid_, SIGSTOP), 0);
  ASSERT_TRUE(testing::waitUntil([&] { return stateOf(pid_) == 'T'; }));
  auto stopped = sampleOnce(s);
  EXPECT_FALSE(stopped.ok);
  EXPECT_EQ(stopped.detail,
            "1 process matches; pid " + std::to_string(pid_) + " (" + name_ + ") is stopped");

  // count alone does not care whether it runs.
  auto counted = spec();
  counted.process.selector.name = name_;
  counted.tolerance.count = equals("1");
  EXPECT_TRUE(sampleOnce(counted).ok);

  ASSERT_EQ(::kill(pid_, SIGCONT), 0);
  ASSERT_TRUE(testing::waitUntil([&] { return stateOf(pid_) != 'T'; }));
  EXPECT_TRUE(sampleOnce(s).ok);
}

TEST_F(ProbeProcessTest, GoneOrZombieIsNotRunning) {
  auto s = spec();
  s.process.selector.name = name_;
  ASSERT_EQ(::kill(pid_, SIGKILL), 0);
  // Killed but not reaped yet: a zombie does not count.
  ASSERT_TRUE(testing::waitUntil([&] { return stateOf(pid_) == 'Z'; }));
  auto zombie = sampleOnce(s);
  EXPECT_FALSE(zombie.ok);
  EXPECT_EQ(zombie.detail, "no process matches");
  EXPECT_EQ(zombie.value, 0);

  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  EXPECT_FALSE(sampleOnce(s).ok);

  s.tolerance.running = false;
  EXPECT_TRUE(sampleOnce(s).ok);
  s.tolerance.running.reset();
  s.tolerance.count = equals("0");
  EXPECT_TRUE(sampleOnce(s).ok);
}

}  // namespace
}  // namespace chaosd
