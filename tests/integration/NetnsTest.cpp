#include <gtest/gtest.h>
#include <net/if.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"

// Every namespace, interface and process here is the test's own: interfaces are created
// with `ip -n NAME`, inside the namespace, so the host's are never touched.
namespace chaosd {
namespace {

ino_t inodeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

int shell(const std::string& command) { return std::system(command.c_str()); }

NetnsRef byName(std::string name) {
  NetnsRef ref;
  ref.name = std::move(name);
  return ref;
}
NetnsRef byPath(std::string path) {
  NetnsRef ref;
  ref.path = std::move(path);
  return ref;
}
NetnsRef byPid(int pid) {
  NetnsRef ref;
  ref.pid = pid;
  return ref;
}

std::vector<std::string> namesOf(const std::vector<InterfaceInfo>& interfaces) {
  std::vector<std::string> names;
  for (const auto& i : interfaces) names.push_back(i.name);
  std::sort(names.begin(), names.end());
  return names;
}

const InterfaceInfo* findInterface(const std::vector<InterfaceInfo>& list, const std::string& n) {
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& i) { return i.name == n; });
  return it == list.end() ? nullptr : &*it;
}

template <typename Predicate>
bool waitFor(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (shell("ip -V >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs iproute2 (ip)";
    static int counter = 0;
    name_ = "chaosd-t-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    ASSERT_EQ(shell("ip netns add " + name_), 0);
    created_ = true;
    ASSERT_EQ(shell("ip -n " + name_ + " link add cdt-a type veth peer name cdt-b"), 0);
    ASSERT_EQ(shell("ip -n " + name_ + " address add 10.251.0.1/24 dev cdt-a"), 0);
    ASSERT_EQ(shell("ip -n " + name_ + " link set cdt-a up"), 0);
  }

  // Runs even when an assertion failed: processes first, so the namespace can go away.
  void TearDown() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (created_) shell("ip netns delete " + name_);
  }

  // `ip netns exec NAME sleep 1000`; ip execs the command in place, so the pid is sleep's.
  pid_t startSleeperInside() {
    std::string name = name_;
    const char* argv[] = {"ip", "netns", "exec", name.c_str(), "sleep", "1000", nullptr};
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphan if the test crashes
      if (::getppid() != parent) ::_exit(1);
      ::execvp("ip", const_cast<char* const*>(argv));
      ::_exit(127);
    }
    if (pid > 0) children_.push_back(pid);
    return pid;
  }

  std::string nsFile() const { return "/run/netns/" + name_; }

  std::string name_;
  bool created_ = false;
  std::vector<pid_t> children_;
};

TEST_F(NetnsTest, ListsOnlyTheInterfacesInside) {
  auto inside = listInterfaces(byName(name_));
  ASSERT_TRUE(inside.ok()) << inside.error().describe();
  EXPECT_EQ(namesOf(*inside), (std::vector<std::string>{"cdt-a", "cdt-b", "lo"}));

  const InterfaceInfo* a = findInterface(*inside, "cdt-a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->up);
  EXPECT_GT(a->ifindex, 1U);
  EXPECT_EQ(a->mac.size(), 17U);
  EXPECT_EQ(a->addresses, (std::vector<std::string>{"10.251.0.1/24"}));
  const InterfaceInfo* b = findInterface(*inside, "cdt-b");
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->up);
  EXPECT_TRUE(b->addresses.empty());
  EXPECT_EQ(findInterface(*inside, "lo")->ifindex, 1U);

  auto host = listInterfaces(NetnsRef{});
  ASSERT_TRUE(host.ok()) << host.error().describe();
  EXPECT_NE(findInterface(*host, "lo"), nullptr);
  EXPECT_EQ(findInterface(*host, "cdt-a"), nullptr);
  for (const auto& i : *host) {
    if (i.name != "lo") {
      EXPECT_EQ(findInterface(*inside, i.name), nullptr) << i.name;
    }
  }
}

TEST_F(NetnsTest, InterfaceExistsLooksInsideTheNamespace) {
  EXPECT_TRUE(*interfaceExists(byName(name_), "cdt-b"));
  EXPECT_FALSE(*interfaceExists(byName(name_), "cdt-c"));
  EXPECT_FALSE(*interfaceExists(NetnsRef{}, "cdt-b"));
  EXPECT_TRUE(*interfaceExists(NetnsRef{}, "lo"));
  EXPECT_EQ(interfaceExists(byName(name_), "").error().code(), ErrorCode::kInvalid);
}

TEST_F(NetnsTest, GuardSwitchesOnlyThisThreadAndReturnsIt) {
  const std::string self = "/proc/thread-self/ns/net";
  ino_t before = inodeOf(self);
  ASSERT_NE(before, 0U);
  ASSERT_NE(inodeOf(nsFile()), before);

  // A thread started before the switch must stay where it was.
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false, checked = false;
  ino_t otherThread = 0;
  std::thread other([&] {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return entered; });
    otherThread = inodeOf(self);
    checked = true;
    changed.notify_all();
  });
  {
    auto guard = NetnsGuard::enter(byName(name_));
    // No ASSERT here: returning early would leave `other` waiting and unjoined.
    EXPECT_TRUE(guard.ok()) << guard.error().describe();
    if (guard.ok()) {
      EXPECT_TRUE(guard->switched());
      EXPECT_EQ(inodeOf(self), inodeOf(nsFile()));
      EXPECT_NE(::if_nametoindex("cdt-a"), 0U);  // a socket opened now lives inside
    }
    std::unique_lock lock(mutex);
    entered = true;
    changed.notify_all();
    changed.wait(lock, [&] { return checked; });
  }
  other.join();
  EXPECT_EQ(otherThread, before);
  EXPECT_EQ(inodeOf(self), before);
  EXPECT_EQ(::if_nametoindex("cdt-a"), 0U);
}

TEST_F(NetnsTest, HostReferenceSwitchesNothing) {
  auto fd = openNetns(NetnsRef{});
  ASSERT_TRUE(fd.ok());
  EXPECT_FALSE(fd->valid());
  ino_t before = inodeOf("/proc/thread-self/ns/net");
  {
    auto guard = NetnsGuard::enter(NetnsRef{});
    ASSERT_TRUE(guard.ok());
    EXPECT_FALSE(guard->switched());
    EXPECT_EQ(inodeOf("/proc/thread-self/ns/net"), before);
  }
  EXPECT_EQ(inodeOf("/proc/thread-self/ns/net"), before);
}

TEST_F(NetnsTest, EntersByPidAndByPath) {
  pid_t sleeper = startSleeperInside();
  ASSERT_GT(sleeper, 0);
  std::string pidNs = "/proc/" + std::to_string(sleeper) + "/ns/net";
  ASSERT_TRUE(waitFor([&] { return inodeOf(pidNs) == inodeOf(nsFile()); }))
      << "the sleeper never entered " << name_;

  auto byItsPid = listInterfaces(byPid(sleeper));
  ASSERT_TRUE(byItsPid.ok()) << byItsPid.error().describe();
  EXPECT_EQ(namesOf(*byItsPid), (std::vector<std::string>{"cdt-a", "cdt-b", "lo"}));

  auto byItsPath = listInterfaces(byPath(nsFile()));
  ASSERT_TRUE(byItsPath.ok()) << byItsPath.error().describe();
  EXPECT_EQ(namesOf(*byItsPath), namesOf(*byItsPid));

  ino_t before = inodeOf("/proc/thread-self/ns/net");
  {
    auto guard = NetnsGuard::enter(byPid(sleeper));
    ASSERT_TRUE(guard.ok()) << guard.error().describe();
    EXPECT_EQ(inodeOf("/proc/thread-self/ns/net"), inodeOf(nsFile()));
  }
  EXPECT_EQ(inodeOf("/proc/thread-self/ns/net"), before);
}

TEST_F(NetnsTest, MissingNamespaceIsNotFound) {
  std::string missing = "chaosd-t-missing-" + std::to_string(::getpid());
  auto opened = openNetns(byName(missing));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(opened.error().message().find("'" + missing + "' does not exist"), std::string::npos)
      << opened.error().message();

  EXPECT_EQ(NetnsGuard::enter(byName(missing)).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(listInterfaces(byName(missing)).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(interfaceExists(byName(missing), "lo").error().code(), ErrorCode::kNotFound);
  // Above PID_MAX_LIMIT (4194304): no process ever has this pid.
  auto noProcess = listInterfaces(byPid(4194305));
  ASSERT_FALSE(noProcess.ok());
  EXPECT_EQ(noProcess.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(noProcess.error().message().find("no process 4194305"), std::string::npos);
  EXPECT_EQ(openNetns(byPath("/run/netns/" + missing)).error().code(), ErrorCode::kNotFound);
}

TEST_F(NetnsTest, RejectsWhatIsNotANetworkNamespace) {
  EXPECT_EQ(openNetns(byPath("/etc/hostname")).error().code(), ErrorCode::kInvalid);
  auto uts = openNetns(byPath("/proc/self/ns/uts"));
  ASSERT_FALSE(uts.ok());
  EXPECT_EQ(uts.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(uts.error().message().find("not a network namespace"), std::string::npos);
  EXPECT_EQ(openNetns(byName("../" + name_)).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(openNetns(byPid(0)).error().code(), ErrorCode::kInvalid);
  NetnsRef both = byName(name_);
  both.pid = 1;
  EXPECT_EQ(openNetns(both).error().code(), ErrorCode::kInvalid);
  // The thread is where it was after every refusal.
  EXPECT_EQ(inodeOf("/proc/thread-self/ns/net"), inodeOf("/proc/self/ns/net"));
}

TEST_F(NetnsTest, RunInNetnsPassesErrorsBack) {
  auto result = runInNetns(byName(name_),
                           [] { return Result<void>(Error(ErrorCode::kKernel, "inner failure")); });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), ErrorCode::kKernel);
  EXPECT_EQ(result.error().describe(), "in netns " + name_ + ": inner failure");
}

}  // namespace
}  // namespace chaosd
