// Commands run as another user (chaosd/base/Credentials.h): what the daemon does for a caller
// that is not root. A command (probes, rollbacks) and an exec target, with and without a
// seccomp listener, as `nobody`: the kernel's view of the child (/proc) shows the user's ids,
// no supplementary groups of root's, no_new_privs, and uid 0 cannot be regained.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "chaosd/base/Credentials.h"
#include "chaosd/engine/probes/BoundedCommand.h"
#include "injectors/process/ExecTarget.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

Credentials nobody() { return Credentials{65534, 65534, {65534}, "nobody"}; }

std::string statusLine(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

std::string squeeze(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\t' || c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  return out;
}

class RunAsCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
  }
};

TEST_F(RunAsCommandTest, ABoundedCommandRunsAsTheUserWithNoNewPrivs) {
  CommandRequest req;
  req.argv = {"/bin/sh", "-c",
              "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status; echo HOME=$HOME"};
  req.timeout = 5s;
  req.runAs = nobody();
  auto out = runBoundedCommand(req);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(out->exitCode, 0);
  EXPECT_EQ(out->stdoutText, "65534\n65534\n65534\nNoNewPrivs:\t1\nHOME=/nonexistent\n");
  // As this process: root, as before.
  req.runAs.reset();
  req.argv = {"/usr/bin/id", "-u"};
  auto root = runBoundedCommand(req);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->stdoutText, "0\n");
}

TEST_F(RunAsCommandTest, AProgramTheUserMayNotRunIsAnErrorNamingTheUser) {
  CommandRequest req;
  req.argv = {"/root/../nonexistent-chaosd-program"};
  req.runAs = nobody();
  auto out = runBoundedCommand(req);
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().describe().find("as uid=65534(nobody)"), std::string::npos)
      << out.error().describe();
}

TEST_F(RunAsCommandTest, AnExecTargetRunsAsTheUserAlsoWithASeccompListener) {
  for (bool filter : {false, true}) {
    ExecSpec spec;
    spec.argv = {"/bin/sleep", "30"};
    ExecOptions options;
    options.runAs = nobody();
    if (filter) options.notifySyscalls = {static_cast<int>(SYS_getppid)};
    auto started = startExec(spec, "", nullptr, options);
    ASSERT_TRUE(started) << started.error().describe();
    EXPECT_EQ(squeeze(statusLine(started->pid, "Uid")), "65534 65534 65534 65534");
    EXPECT_EQ(squeeze(statusLine(started->pid, "Gid")), "65534 65534 65534 65534");
    EXPECT_EQ(squeeze(statusLine(started->pid, "Groups")), "65534");
    EXPECT_EQ(squeeze(statusLine(started->pid, "NoNewPrivs")), "1");
    EXPECT_EQ(started->listener.valid(), filter);
    if (filter) {
      EXPECT_EQ(squeeze(statusLine(started->pid, "Seccomp")), "2");
    }
    auto stopped = stopExec(execUndo(*started, 1s));
    ASSERT_TRUE(stopped) << stopped.error().describe();
  }
}

TEST_F(RunAsCommandTest, ThePeersGroupsComeFromProc) {
  auto self = credentialsOfProcess(::getpid());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->uid, 0u);
  auto peer = credentialsOfPeer(::getpid(), 0, 0);
  EXPECT_EQ(peer.user, "root");
  EXPECT_EQ(peer.groups, self->groups);
  // A pid whose process has other ids lends no groups.
  auto other = credentialsOfPeer(::getpid(), 65534, 65534);
  EXPECT_TRUE(other.groups.empty());
  EXPECT_EQ(other.describe(), "uid=65534(nobody) gid=65534");
}

}  // namespace
}  // namespace chaosd
