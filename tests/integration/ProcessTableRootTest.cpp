#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/ProcessTable.h"
#include "experiments/model/Experiment.h"

// Real children with distinctive argv, found again through /proc. The children are sleep(1)
// started through a symlink named cdt<pid>, so their comm is ours and no other process's.
namespace chaosd {
namespace {

struct Child {
  pid_t pid = 0;
  std::string argv0;
};

std::vector<pid_t> pidsOf(const Result<std::vector<ProcessInfo>>& found) {
  EXPECT_TRUE(found.ok()) << found.error().describe();
  std::vector<pid_t> pids;
  if (found.ok()) {
    for (const auto& p : *found) pids.push_back(p.pid);
  }
  return pids;
}

std::vector<pid_t> sorted(std::vector<pid_t> pids) {
  std::sort(pids.begin(), pids.end());
  return pids;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

class ProcessTableRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    token_ = std::to_string(::getpid());
    comm_ = "cdt" + token_;
    std::string pattern = (std::filesystem::temp_directory_path() / "chaosd-t-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ::chmod(dir_.c_str(), 0755);  // a child running as nobody must reach the symlink
    program_ = dir_ + "/" + comm_;
    std::filesystem::create_symlink("/bin/sleep", program_);
  }

  // Runs even when an assertion failed: children, then cgroups (empty only once they are
  // reaped), then files.
  void TearDown() override {
    for (const Child& child : children_) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, nullptr, 0);
    }
    for (auto it = cgroupDirs_.rbegin(); it != cgroupDirs_.rend(); ++it) {
      // The kernel empties a cgroup shortly after its last process is reaped.
      for (int i = 0; i < 200 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      EXPECT_FALSE(std::filesystem::exists(*it)) << "could not remove " << *it;
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // sleep 1000 with argv[0] = "chaosd-t-<pid>-<suffix>", as `uid` when set.
  Child spawn(const std::string& suffix, std::optional<passwd> user = std::nullopt) {
    Child child;
    child.argv0 = "chaosd-t-" + token_ + "-" + suffix;
    const char* argv[] = {child.argv0.c_str(), "1000", nullptr};
    pid_t parent = ::getpid();
    child.pid = ::fork();
    if (child.pid == 0) {
      if (user && (::setgroups(0, nullptr) != 0 || ::setgid(user->pw_gid) != 0 ||
                   ::setuid(user->pw_uid) != 0)) {
        ::_exit(126);
      }
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // after setuid, which clears it
      if (::getppid() != parent) ::_exit(1);
      ::execv(program_.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
    if (child.pid > 0) children_.push_back(child);
    return child;
  }

  // Rescans until the condition holds for the table (a child has exec'd, moved, ...).
  ProcessTable waitForTable(const std::function<bool(const ProcessTable&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      auto table = ProcessTable::scan();
      EXPECT_TRUE(table.ok());
      if (table.ok() && (done(*table) || std::chrono::steady_clock::now() > deadline)) {
        return std::move(*table);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  bool hasExeced(const ProcessTable& table, const Child& child) const {
    const ProcessInfo* p = table.find(child.pid);
    return p != nullptr && p->comm == comm_ && !p->cmdline.empty() && p->cmdline[0] == child.argv0;
  }

  ProcessSelector byName() const {
    ProcessSelector s;
    s.name = comm_;
    return s;
  }

  std::string token_, comm_, dir_, program_;
  std::vector<Child> children_;
  std::vector<std::string> cgroupDirs_;
};

TEST_F(ProcessTableRootTest, FindsChildrenByNameCmdlinePidAndPidFile) {
  Child a = spawn("a"), b = spawn("b");
  ASSERT_GT(a.pid, 0);
  ASSERT_GT(b.pid, 0);
  ProcessTable table =
      waitForTable([&](const ProcessTable& t) { return hasExeced(t, a) && hasExeced(t, b); });
  ASSERT_TRUE(hasExeced(table, a) && hasExeced(table, b)) << "children never showed up";

  const ProcessInfo* info = table.find(a.pid);
  EXPECT_EQ(info->ppid, ::getpid());
  EXPECT_EQ(info->uid, 0U);
  EXPECT_EQ(info->cmdline, (std::vector<std::string>{a.argv0, "1000"}));
  EXPECT_FALSE(info->isKernelThread);

  EXPECT_EQ(sorted(pidsOf(table.match(byName()))), sorted({a.pid, b.pid}));

  ProcessSelector byCmdline;
  byCmdline.cmdline = "^chaosd-t-" + token_ + "-a 1000$";
  EXPECT_EQ(pidsOf(table.match(byCmdline)), (std::vector<pid_t>{a.pid}));

  ProcessSelector byPid;
  byPid.pid = b.pid;
  EXPECT_EQ(pidsOf(table.match(byPid)), (std::vector<pid_t>{b.pid}));

  ProcessSelector byPidFile;
  byPidFile.pidFile = dir_ + "/b.pid";
  ASSERT_TRUE(writeFile(byPidFile.pidFile, std::to_string(b.pid) + "\n"));
  EXPECT_EQ(pidsOf(table.match(byPidFile)), (std::vector<pid_t>{b.pid}));

  auto start = readStartTime(a.pid);
  ASSERT_TRUE(start.ok()) << start.error().describe();
  EXPECT_EQ(*start, info->startTime);
}

TEST_F(ProcessTableRootTest, FindsChildByUser) {
  passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
  passwd user = *nobody;
  Child mine = spawn("root"), theirs = spawn("nobody", user);
  ASSERT_GT(theirs.pid, 0);
  ProcessTable table = waitForTable(
      [&](const ProcessTable& t) { return hasExeced(t, mine) && hasExeced(t, theirs); });
  ASSERT_TRUE(hasExeced(table, theirs)) << "child never showed up";
  EXPECT_EQ(table.find(theirs.pid)->uid, user.pw_uid);

  for (std::string who : {std::string("nobody"), std::to_string(user.pw_uid)}) {
    ProcessSelector s = byName();
    s.user = who;
    EXPECT_EQ(pidsOf(table.match(s)), (std::vector<pid_t>{theirs.pid})) << who;
  }
  ProcessSelector asRoot = byName();
  asRoot.user = "root";
  EXPECT_EQ(pidsOf(table.match(asRoot)), (std::vector<pid_t>{mine.pid}));
}

TEST_F(ProcessTableRootTest, FindsChildrenByCgroupAndItsDescendants) {
  auto mount = cgroup2Mount();
  if (!mount.ok()) GTEST_SKIP() << mount.error().describe();
  std::string outer = "/chaosd-t-" + token_, inner = outer + "/inner";
  for (const std::string& path : {outer, inner}) {
    std::string dir = *mount + path;
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
    cgroupDirs_.push_back(dir);
  }
  Child a = spawn("a"), b = spawn("b"), c = spawn("c");
  ASSERT_TRUE(writeFile(*mount + outer + "/cgroup.procs", std::to_string(a.pid)));
  ASSERT_TRUE(writeFile(*mount + inner + "/cgroup.procs", std::to_string(b.pid)));

  ProcessTable table = waitForTable([&](const ProcessTable& t) {
    const ProcessInfo* pa = t.find(a.pid);
    const ProcessInfo* pb = t.find(b.pid);
    return hasExeced(t, a) && hasExeced(t, b) && hasExeced(t, c) && pa->cgroup == outer &&
           pb->cgroup == inner;
  });
  ASSERT_NE(table.find(b.pid), nullptr);
  ASSERT_EQ(table.find(b.pid)->cgroup, inner);

  ProcessSelector s;
  s.cgroup = outer;
  EXPECT_EQ(sorted(pidsOf(table.match(s))), sorted({a.pid, b.pid}));
  s.cgroup = inner + "/";
  EXPECT_EQ(pidsOf(table.match(s)), (std::vector<pid_t>{b.pid}));
  EXPECT_EQ(sorted(pidsOf(table.match(byName()))), sorted({a.pid, b.pid, c.pid}));
}

TEST_F(ProcessTableRootTest, ProtectsInitSelfAndTheShellThatStartedUs) {
  Child a = spawn("a");
  ProcessTable table = waitForTable([&](const ProcessTable& t) { return hasExeced(t, a); });
  ASSERT_TRUE(hasExeced(table, a));

  ProtectionContext context;  // chaosctl run in-process: we are both chaosd and the invoker
  EXPECT_TRUE(table.checkNotProtected(*table.find(a.pid), context).ok());
  EXPECT_FALSE(table.checkNotProtected(*table.find(::getpid()), context).ok());
  EXPECT_FALSE(table.checkNotProtected(*table.find(1), context).ok());

  const ProcessInfo* parent = table.find(::getppid());
  ASSERT_NE(parent, nullptr);
  auto refused = table.checkNotProtected(*parent, context);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "pid " + std::to_string(parent->pid) + " (" + parent->comm +
                ") is protected: it is an ancestor of chaosctl (the shell or session that "
                "started it)");

  auto chain = table.ancestorsOf(a.pid);
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(chain.front(), ::getpid());
  EXPECT_EQ(chain.back(), 1);

  ProcessSelector kthreadd;
  kthreadd.pid = 2;
  MatchContext withKernelThreads;
  withKernelThreads.includeKernelThreads = true;
  auto kthreads = table.match(kthreadd, withKernelThreads);
  if (kthreads.ok() && !kthreads->empty()) {  // kthreadd is visible unless in a pid namespace
    EXPECT_NE(
        table.checkNotProtected(kthreads->front(), context).error().message().find("kernel thread"),
        std::string::npos);
  }
}

}  // namespace
}  // namespace chaosd
