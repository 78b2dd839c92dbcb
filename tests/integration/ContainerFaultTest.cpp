// Container targets end to end with real podman containers (a busybox-static rootfs, no
// registry; tests/support/PodmanContainer.h): `chaosctl run` finds the container through the
// podman API on a socket of the test's own, and each fault family hits the container and nothing
// else (the host's ruleset, processes and files unchanged), then is reverted; kill -9 of the run
// mid-fault is reverted by the guardian; `chaosctl plan` shows what matched and how.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "chaosd/base/Cgroup.h"
#include "tests/support/JournalHeld.h"
#include "tests/support/PodmanContainer.h"
#include "tests/support/ReportFixtures.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere in C++

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::BusyboxRootfs;
using testing::ContainerLink;
using testing::PodmanContainer;
using testing::PodmanRunOptions;
using testing::PodmanService;
using testing::readFile;
using testing::runShell;
using testing::shellStatus;
using testing::waitUntil;

char procState(pid_t pid) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

// The cgroup2 mount, found through mountinfo (/sys/fs/cgroup/unified on this hybrid machine).
std::string cgroup2() {
  auto mount = cgroup2Mount();
  return mount ? *mount : "/sys/fs/cgroup";
}

std::set<pid_t> cgroupProcs(const std::string& cgroupPath) {
  std::set<pid_t> out;
  std::istringstream in(readFile(cgroup2() + cgroupPath + "/cgroup.procs"));
  for (pid_t p = 0; in >> p;) out.insert(p);
  return out;
}

// A network namespace pinned under /run/netns (`ip netns add`), as a pod's infra container,
// a Kubernetes sandbox or CNI pins one; deleted with the object.
class PinnedNetns {
 public:
  explicit PinnedNetns(std::string name) : name_(std::move(name)) {
    ok_ = shellStatus("ip netns add " + name_) == 0;
  }
  PinnedNetns(const PinnedNetns&) = delete;
  PinnedNetns& operator=(const PinnedNetns&) = delete;
  ~PinnedNetns() {
    if (ok_) runShell("ip netns del " + name_);
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

class ContainerFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::podmanUsable()) GTEST_SKIP() << "needs root, podman and runc";
    ASSERT_TRUE(rootfs_.ok());
    root_ = ::testing::TempDir() + "/chaosd-ctr-" + std::to_string(::getpid());
    fs::create_directories(root_);
    socket_ = root_ + "/podman.sock";
    ASSERT_EQ(service_.start(socket_), "");
    name_ = "chaosd-ctr-" + std::to_string(::getpid());
  }
  void TearDown() override {
    if (runPid_ > 0) {
      ::kill(runPid_, SIGKILL);
      ::waitpid(runPid_, nullptr, 0);
    }
    if (!root_.empty()) fs::remove_all(root_);
  }

  std::string chaosctl(const std::string& verb, const std::string& file) const {
    if (verb == "plan") return std::string(CHAOSCTL_PATH) + " plan " + file;
    return std::string(CHAOSCTL_PATH) + " " + verb + " --state-dir " + root_ + "/state" +
           " --report-dir " + root_ + "/reports " + file;
  }
  // An experiment with one fault step on the container target `ctr`.
  std::string experiment(const std::string& containerExtra, const std::string& step) const {
    const std::string file = root_ + "/exp.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: ctr}\n"
                           "targets:\n  ctr:\n    container: {name: "
                        << name_ << ", runtime: podman, socket: " << socket_ << containerExtra
                        << "}\n"
                           "steadyState: {baseline: {duration: 100ms}, "
                           "recovery: {duration: 100ms}, probes: []}\n"
                           "method:\n  - "
                        << step << "\n";
    return file;
  }
  // Starts `chaosctl run` in the background; its output goes to root_/run.log.
  void startRun(const std::string& file) {
    const std::string cmd = "exec " + chaosctl("run", file) + " >" + root_ + "/run.log 2>&1";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    ASSERT_EQ(
        ::posix_spawn(&runPid_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  }
  int waitRun() {
    int st = 0;
    ::waitpid(runPid_, &st, 0);
    runPid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string log() const { return readFile(root_ + "/run.log"); }
  nlohmann::json report() const {
    if (!fs::exists(root_ + "/reports")) return nullptr;
    return testing::readReport(testing::runDirIn(root_ + "/reports"));
  }

  BusyboxRootfs rootfs_;
  PodmanService service_;
  std::string root_, socket_, name_;
  pid_t runPid_ = -1;
};

TEST_F(ContainerFaultTest, PartitionActsInTheContainersNamespaceOnly) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  ContainerLink link;
  ASSERT_EQ(link.create("np", c.pid(), "10.233.0.2/24", "10.233.0.1/24"), "");
  const std::string ctrNs = "nsenter -t " + std::to_string(c.pid()) + " -n ";
  auto pingsFromPeer = [&] {
    return shellStatus("ip netns exec " + link.peerNs() + " ping -c 1 -W 1 10.233.0.2") == 0;
  };
  ASSERT_TRUE(pingsFromPeer());
  const std::string hostRulesBefore = runShell("nft list ruleset");
  const std::string peerRulesBefore =
      runShell("ip netns exec " + link.peerNs() + " nft list ruleset");

  startRun(experiment("",
                      "{name: cut, fault: network.partition, target: ctr, duration: 4s, "
                      "args: {cidr: [10.233.0.1/32]}}"));
  ASSERT_TRUE(waitUntil(
      [&] { return runShell(ctrNs + "nft list ruleset").find("chaosd") != std::string::npos; },
      20s))
      << log();
  EXPECT_FALSE(pingsFromPeer()) << "the container is cut off from its peer";
  EXPECT_EQ(runShell("nft list ruleset"), hostRulesBefore) << "the host's ruleset is untouched";
  EXPECT_EQ(runShell("ip netns exec " + link.peerNs() + " nft list ruleset"), peerRulesBefore);
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(runShell(ctrNs + "nft list ruleset"), "") << "reverted";
  EXPECT_TRUE(pingsFromPeer());
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["state"], "reverted");
  EXPECT_EQ(f["observed"]["container"]["id"], c.id()) << f.dump();
  EXPECT_EQ(f["observed"]["container"]["foundBy"], "podman API on " + socket_);
  EXPECT_NE(
      f["description"].get<std::string>().find("/proc/" + std::to_string(c.pid()) + "/ns/net"),
      std::string::npos)
      << f.dump();
}

TEST_F(ContainerFaultTest, PauseHitsTheContainersProcessesButNotItsInitNorTheHost) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(),
                  {"/bin/sh", "-c", "sleep 1001 & sleep 1002 & while :; do wait; sleep 1; done"}),
            "");
  const pid_t init = c.pid();
  ASSERT_GT(init, 0);
  // A host process with the same name as the container's workers, killed even on failure.
  const pid_t hostSleep = ::fork();
  if (hostSleep == 0) {
    ::execl("/bin/sleep", "sleep", "1003", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{hostSleep};
  std::set<pid_t> workers;
  ASSERT_TRUE(waitUntil([&] {
    workers.clear();
    for (pid_t p : cgroupProcs("/libpod_parent/libpod-" + c.id())) {
      if (p != init) workers.insert(p);
    }
    return workers.size() >= 2;
  }));
  startRun(experiment("", "{name: freeze, fault: process.pause, target: ctr, duration: 3s}"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return std::all_of(workers.begin(), workers.end(),
                           [](pid_t w) { return procState(w) == 'T'; });
      },
      20s))
      << log();
  EXPECT_NE(procState(init), 'T') << "the container's init is protected by default";
  EXPECT_NE(procState(hostSleep), 'T') << "the host's sleep is not the container's";
  EXPECT_EQ(waitRun(), 0) << log();
  for (pid_t w : workers) EXPECT_NE(procState(w), 'T') << "resumed: " << w;
}

TEST_F(ContainerFaultTest, KillHitsOnlyTheInitWhenAsked) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const pid_t init = c.pid();
  startRun(experiment(", init: only", "{name: kill, fault: process.kill, target: ctr}"));
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_TRUE(waitUntil([&] { return ::kill(init, 0) != 0; }, 10s)) << "the init was killed";
  EXPECT_TRUE(waitUntil([&] { return c.pid() == 0; }, 10s)) << "and the container stopped";
}

TEST_F(ContainerFaultTest, DiskFillFillsTheVolumeTheContainerSees) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"},
                  {.extra = {"--mount", "type=tmpfs,destination=/var/lib/app,tmpfs-size=16m"}}),
            "");
  auto usedKb = [&] {
    // df -k in the container: the tmpfs only it sees.
    std::istringstream in(c.exec("df -k /var/lib/app"));
    std::string line, fsName;
    std::getline(in, line);
    long total = 0, used = 0;
    in >> fsName >> total >> used;
    return used;
  };
  ASSERT_LT(usedKb(), 1024);
  const auto hostAppBefore =
      fs::exists(rootfs_.dir() + "/var/lib/app")
          ? std::distance(fs::directory_iterator(rootfs_.dir() + "/var/lib/app"),
                          fs::directory_iterator{})
          : -1;
  startRun(
      experiment(", path: /var/lib/app",
                 "{name: fill, fault: disk.fill, target: ctr, duration: 3s, args: {usage: 75%}}"));
  ASSERT_TRUE(waitUntil([&] { return usedKb() >= 12 * 1024; }, 20s)) << log();
  EXPECT_EQ(std::distance(fs::directory_iterator(rootfs_.dir() + "/var/lib/app"),
                          fs::directory_iterator{}),
            hostAppBefore)
      << "the rootfs folder under the tmpfs (what the host sees there) is untouched";
  EXPECT_FALSE(fs::exists("/var/lib/app") && !fs::is_empty("/var/lib/app") &&
               runShell("ls /var/lib/app").find("chaosd") != std::string::npos)
      << "nothing in the host's own /var/lib/app";
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_LT(usedKb(), 1024) << "the filler is deleted";
}

TEST_F(ContainerFaultTest, CpuStressRunsInTheContainersCgroup) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const std::string cg = "/libpod_parent/libpod-" + c.id();
  const std::set<pid_t> before = cgroupProcs(cg);
  ASSERT_EQ(before.size(), 1u);
  startRun(experiment("",
                      "{name: cpu, fault: cpu.stress, target: ctr, duration: 3s, "
                      "args: {workers: 1, load: 20%}}"));
  // The workers run in a group of the fault's own under the container's: its limits apply.
  auto workerGroups = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(cgroup2() + cg)) {
      if (e.is_directory() && e.path().filename().string().starts_with("chaosd-")) {
        out.push_back(cg + "/" + e.path().filename().string());
      }
    }
    return out;
  };
  ASSERT_TRUE(waitUntil(
      [&] {
        auto groups = workerGroups();
        return groups.size() == 1 && !cgroupProcs(groups[0]).empty();
      },
      20s))
      << log();
  EXPECT_EQ(cgroupProcs(cg), before) << "the container's own processes are where they were";
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_TRUE(workerGroups().empty()) << "the workers' group is gone";
  EXPECT_EQ(cgroupProcs(cg), before);
}

TEST_F(ContainerFaultTest, KillNineOfTheRunMidFaultIsRevertedByTheGuardian) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const std::string ctrNs = "nsenter -t " + std::to_string(c.pid()) + " -n ";
  startRun(experiment("",
                      "{name: cut, fault: network.partition, target: ctr, duration: 60s, "
                      "args: {cidr: [10.234.0.1/32]}}"));
  ASSERT_TRUE(waitUntil(
      [&] { return runShell(ctrNs + "nft list ruleset").find("chaosd") != std::string::npos; },
      20s))
      << log();
  const auto killedAt = std::chrono::steady_clock::now();
  ::kill(runPid_, SIGKILL);
  waitRun();
  ASSERT_TRUE(waitUntil([&] { return runShell(ctrNs + "nft list ruleset").empty(); }, 10s))
      << runShell(ctrNs + "nft list ruleset");
  std::printf("[ measure  ] kill -9 of chaosctl run to the container's table gone: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killedAt)
                  .count());
  EXPECT_TRUE(waitUntil([&] { return testing::journalHoldsNothing(root_ + "/state"); }, 10s));
}

// A container restarted while a partition is held (a new init, a new network namespace): the
// fault follows it into the new namespace and the report times the restart.
TEST_F(ContainerFaultTest, AFaultFollowsARestartedContainer) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const pid_t first = c.pid();
  auto rules = [](pid_t pid) {
    return runShell("nsenter -t " + std::to_string(pid) + " -n nft list ruleset");
  };
  startRun(experiment(", interface: lo",
                      "{name: cut, fault: network.partition, target: ctr, duration: 6s, "
                      "args: {cidr: [127.0.0.2/32]}}"));
  ASSERT_TRUE(waitUntil([&] { return rules(first).find("chaosd") != std::string::npos; }, 20s))
      << log();
  ASSERT_EQ(shellStatus("podman restart -t 0 " + name_), 0);
  pid_t second = 0;
  ASSERT_TRUE(waitUntil([&] { return (second = c.pid()) != 0 && second != first; }, 10s));
  EXPECT_TRUE(waitUntil([&] { return rules(second).find("chaosd") != std::string::npos; }, 5s))
      << "the fault is applied again in the new namespace\n"
      << log();
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(rules(second), "") << "and reverted at the step's end";
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["state"], "reverted") << f.dump();
  ASSERT_TRUE(f["observed"].contains("containerEvents")) << f.dump();
  const auto& events = f["observed"]["containerEvents"];
  const auto& last = events.back();
  EXPECT_EQ(last["event"], "restarted") << events.dump();
  EXPECT_EQ(last["pid"], second);
  EXPECT_EQ(last["oldPid"], first);
  EXPECT_TRUE(last["followed"].get<bool>()) << events.dump();
  std::printf("[ measure  ] restart seen %lld ms after the fault's apply: %s\n",
              static_cast<long long>(last["atMs"].get<int64_t>()), events.dump().c_str());
}

// A kill drill: the init killed, podman's restart policy brings the container back; the report
// says when the new init was seen, timed from the kill.
TEST_F(ContainerFaultTest, AKillDrillTimesTheContainersRestart) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}, {.restart = "always"}), "");
  const pid_t first = c.pid();
  const std::string file = root_ + "/drill.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: drill}\n"
                         "targets:\n  ctr:\n    container: {name: "
                      << name_ << ", socket: " << socket_
                      << ", init: only, onRestart: report}\n"
                         "steadyState: {baseline: {duration: 100ms}, "
                         "recovery: {duration: 3s}, probes: []}\n"
                         "method:\n  - {name: kill, fault: process.kill, target: ctr}\n"
                         "  - {name: wait, pause: 2s}\n";
  startRun(file);
  EXPECT_EQ(waitRun(), 0) << log();
  const pid_t second = c.pid();
  EXPECT_NE(second, first);
  EXPECT_GT(second, 0) << "podman restarted it";
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  ASSERT_TRUE(f["observed"].contains("containerEvents")) << f.dump();
  // podman's restart can pass through a short-lived init first (seen once in a clean-checkout
  // run: a "restarted" event 0 ms after the kill with a pid that was gone 200 ms later), so
  // the last restart names the init that stayed.
  const nlohmann::json* last = nullptr;
  for (const auto& e : f["observed"]["containerEvents"]) {
    if (e["event"] != "restarted") continue;
    last = &e;
    EXPECT_NE(e["oldPid"], e["pid"]);
    EXPECT_FALSE(e.contains("followed")) << "a kill holds nothing to follow";
    std::printf("[ measure  ] kill drill: new init seen %lld ms after the kill\n",
                static_cast<long long>(e["atMs"].get<int64_t>()));
  }
  ASSERT_NE(last, nullptr) << f.dump();
  EXPECT_EQ((*last)["pid"], second) << f.dump();
}

// A container removed while a fault is held: the fault ends cleanly, reverted.
TEST_F(ContainerFaultTest, AContainerThatGoesAwayEndsItsFault) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const pid_t pid = c.pid();
  startRun(experiment(", interface: lo",
                      "{name: cut, fault: network.partition, target: ctr, duration: 8s, "
                      "args: {cidr: [127.0.0.2/32]}}"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return runShell("nsenter -t " + std::to_string(pid) + " -n nft list ruleset")
                   .find("chaosd") != std::string::npos;
      },
      20s))
      << log();
  c.remove();
  EXPECT_EQ(waitRun(), 0) << log();
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["state"], "reverted") << f.dump();
  ASSERT_TRUE(f["observed"].contains("containerEvents")) << f.dump();
  const auto& stopped = f["observed"]["containerEvents"][0];
  EXPECT_EQ(stopped["event"], "stopped");
  EXPECT_LT(stopped["atMs"].get<int64_t>(), 7000) << "seen before the step's end, not at it";
  std::printf("[ measure  ] container removed: seen %lld ms after the fault's apply\n",
              static_cast<long long>(stopped["atMs"].get<int64_t>()));
  EXPECT_TRUE(f["leftovers"].empty()) << f.dump();
  EXPECT_TRUE(testing::journalHoldsNothing(root_ + "/state"));
}

// A container in a namespace something else pins (a pod's infra or sandbox, CNI, `ip netns
// add`: here the test's /run/netns file) and removed while a partition is held: its init dies,
// the namespace lives on. The fault is reverted through the pin (durableNetnsPath), not through
// /proc/PID/ns/net, which died with the init and would have left the table in the namespace.
TEST_F(ContainerFaultTest, AFaultInAPinnedNamespaceIsRevertedAfterTheInitDied) {
  PinnedNetns pin("chaosd-pin-" + std::to_string(::getpid()));
  ASSERT_TRUE(pin.ok());
  const std::string& ns = pin.name();
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"},
                  {.extra = {"--network=ns:/run/netns/" + ns}}),
            "");
  const std::string pinned = "ip netns exec " + ns + " nft list ruleset";
  startRun(experiment(", interface: lo",
                      "{name: cut, fault: network.partition, target: ctr, duration: 8s, "
                      "args: {cidr: [127.0.0.2/32]}}"));
  ASSERT_TRUE(waitUntil([&] { return runShell(pinned).find("chaosd") != std::string::npos; }, 20s))
      << log();
  c.remove();  // the init is gone; the namespace is not
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(runShell(pinned), "") << "the table went with the revert, not left behind";
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["state"], "reverted") << f.dump();
  EXPECT_NE(f["description"].get<std::string>().find("/run/netns/" + ns), std::string::npos)
      << f.dump();
  EXPECT_FALSE(f["observed"].contains("note")) << "not 'the namespace is gone': " << f.dump();
  EXPECT_TRUE(f["leftovers"].empty()) << f.dump();
  EXPECT_TRUE(testing::journalHoldsNothing(root_ + "/state"));
}

// A pod's containers in one namespace that something pins (as a pod's infra or sandbox does;
// here the test's /run/netns file): `mode: all` takes one network fault in it. One container
// removed mid-fault is reported; the fault stays (the namespace and the other container live)
// and is reverted through the pin at the step's end.
TEST_F(ContainerFaultTest, APodsContainersInOnePinnedNamespaceTakeOneNetworkFault) {
  PinnedNetns pin("chaosd-podns-" + std::to_string(::getpid()));
  ASSERT_TRUE(pin.ok());
  const std::string& ns = pin.name();
  testing::PodmanPod pod;
  ASSERT_EQ(pod.create(name_ + "-pod"), "");
  PodmanContainer a, b;
  const PodmanRunOptions inNs{.pod = pod.name(), .extra = {"--network=ns:/run/netns/" + ns}};
  ASSERT_EQ(a.run(name_ + "-a", rootfs_.dir(), {"/bin/sleep", "600"}, inNs), "");
  ASSERT_EQ(b.run(name_ + "-b", rootfs_.dir(), {"/bin/sleep", "600"}, inNs), "");
  const std::string file = root_ + "/podns.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: podns}\n"
                         "targets:\n  ctr:\n    container: {pod: "
                      << pod.name() << ", socket: " << socket_
                      << ", interface: lo}\n"
                         "steadyState: {baseline: {duration: 100ms}, "
                         "recovery: {duration: 100ms}, probes: []}\n"
                         "method:\n  - {name: cut, fault: network.partition, target: ctr, "
                         "duration: 4s, args: {cidr: [127.0.0.2/32]}}\n";
  const std::string pinned = "ip netns exec " + ns + " nft list ruleset";
  ASSERT_EQ(shellStatus("ip netns exec " + ns + " ip link set lo up"), 0);
  const std::string ping = "ip netns exec " + ns + " ping -c 1 -W 1 127.0.0.2";
  ASSERT_EQ(shellStatus(ping), 0);
  startRun(file);
  ASSERT_TRUE(waitUntil([&] { return runShell(pinned).find("chaosd") != std::string::npos; }, 20s))
      << log();
  EXPECT_EQ(shellStatus(ping), 1) << "no answer in the pod's namespace";
  a.remove();
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(runShell(pinned), "") << "reverted through the pin";
  EXPECT_EQ(shellStatus(ping), 0);
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["state"], "reverted") << f.dump();
  EXPECT_NE(f["description"].get<std::string>().find("/run/netns/" + ns), std::string::npos)
      << f.dump();
  ASSERT_TRUE(f["observed"].contains("containerEvents")) << f.dump();
  const auto& stopped = f["observed"]["containerEvents"][0];
  EXPECT_EQ(stopped["event"], "stopped") << stopped.dump();
  EXPECT_EQ(stopped["container"], a.name()) << stopped.dump();
  EXPECT_TRUE(f["leftovers"].empty()) << f.dump();
  EXPECT_TRUE(testing::journalHoldsNothing(root_ + "/state"));
}

// experiments/examples/container-kill-drill.yaml as users run it, on a container of the test's.
TEST_F(ContainerFaultTest, KillDrillExampleRunsForReal) {
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}, {.restart = "always"}), "");
  const pid_t first = c.pid();
  int st = -1;
  const std::string out =
      runShell(chaosctl("run", "--var container=" + name_ + " --var socket=" + socket_ + " " +
                                   std::string(CHAOSD_SOURCE_DIR) +
                                   "/experiments/examples/container-kill-drill.yaml"),
               &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(c.pid(), first);
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << out;
  const auto& f = r["faults"][0];
  EXPECT_EQ(f["observed"]["container"]["name"], name_) << f.dump();
  ASSERT_TRUE(f["observed"].contains("containerEvents")) << f.dump();
  EXPECT_EQ(f["observed"]["containerEvents"].back()["event"], "restarted") << f.dump();
}

// A podman pod: the target names the pod, the seeded mode picks one of its containers, and the
// fault acts in that container's namespace only.
// A Kubernetes pod's container, found as on a node: the kubelet's log link names it (made here
// in a folder of the test's own, as the kubelet makes them in /var/log/containers), the
// container's cgroups hold its processes. A partition hits web-0's app only: not web-0 in
// another namespace, not a container without a link; then the kill of its init (a kill drill).
TEST_F(ContainerFaultTest, AKubernetesPodsContainerIsFoundByItsKubeletLogLink) {
  PodmanContainer app;
  PodmanContainer staging;
  PodmanContainer unlinked;
  ASSERT_EQ(app.run(name_ + "-app", rootfs_.dir(), {"/bin/sleep", "600"}), "");
  ASSERT_EQ(staging.run(name_ + "-stg", rootfs_.dir(), {"/bin/sleep", "600"}), "");
  ASSERT_EQ(unlinked.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const std::string logs = root_ + "/containers";
  fs::create_directories(logs);
  std::ofstream(logs + "/web-0_shop_app-" + app.id() + ".log") << "";
  std::ofstream(logs + "/web-0_staging_app-" + staging.id() + ".log") << "";
  const std::string file = root_ + "/k8s.yaml";
  auto write = [&](const std::string& step) {
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: k8s}\n"
                           "targets:\n  ctr:\n    container: {kubernetes: {namespace: shop, "
                           "pod: \"web-*\", container: app, logDir: "
                        << logs
                        << "}, interface: lo, init: only}\n"
                           "steadyState: {baseline: {duration: 100ms}, "
                           "recovery: {duration: 100ms}, probes: []}\n"
                           "method:\n  - "
                        << step << "\n";
  };
  auto rules = [](const PodmanContainer& c) {
    return runShell("nsenter -t " + std::to_string(c.pid()) + " -n nft list ruleset");
  };
  write(
      "{name: cut, fault: network.partition, target: ctr, duration: 2s, "
      "args: {cidr: [127.0.0.2/32]}}");
  const std::string plan = runShell(chaosctl("plan", file) + " 2>&1");
  EXPECT_NE(plan.find("kubelet log link web-0_shop_app-" + app.id().substr(0, 12)),
            std::string::npos)
      << plan;
  startRun(file);
  ASSERT_TRUE(waitUntil([&] { return rules(app).find("chaosd") != std::string::npos; }, 20s))
      << log();
  EXPECT_EQ(rules(staging), "") << "web-0 of another namespace";
  EXPECT_EQ(rules(unlinked), "") << "a container the kubelet does not know";
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(rules(app), "");
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& hit = r["faults"][0]["observed"]["container"];
  EXPECT_EQ(hit["pod"], "shop/web-0") << hit.dump();
  EXPECT_EQ(hit["name"], "app");

  const pid_t init = app.pid();
  write("{name: kill, fault: process.kill, target: ctr}");
  startRun(file);
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_TRUE(waitUntil([&] { return ::kill(init, 0) != 0; }, 10s)) << "its init was killed";
  EXPECT_GT(staging.pid(), 0);
  EXPECT_GT(unlinked.pid(), 0);
}

TEST_F(ContainerFaultTest, APodTargetHitsOneContainerOfThePod) {
  testing::PodmanPod pod;
  ASSERT_EQ(pod.create(name_ + "-pod"), "");
  PodmanContainer a;
  PodmanContainer b;
  PodmanContainer outside;
  ASSERT_EQ(a.run(name_ + "-a", rootfs_.dir(), {"/bin/sleep", "600"}, {.pod = pod.name()}), "");
  ASSERT_EQ(b.run(name_ + "-b", rootfs_.dir(), {"/bin/sleep", "600"}, {.pod = pod.name()}), "");
  ASSERT_EQ(outside.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const std::string file = root_ + "/pod.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: pod}\n"
                         "targets:\n  ctr:\n    container: {pod: "
                      << pod.name() << ", socket: " << socket_
                      << ", interface: lo}\n    mode: one\n    seed: 5\n"
                         "steadyState: {baseline: {duration: 100ms}, "
                         "recovery: {duration: 100ms}, probes: []}\n"
                         "method:\n  - {name: cut, fault: network.partition, target: ctr, "
                         "duration: 3s, args: {cidr: [127.0.0.2/32]}}\n";
  auto rules = [](const PodmanContainer& c) {
    return runShell("nsenter -t " + std::to_string(c.pid()) + " -n nft list ruleset");
  };
  startRun(file);
  ASSERT_TRUE(waitUntil(
      [&] {
        return rules(a).find("chaosd") != std::string::npos ||
               rules(b).find("chaosd") != std::string::npos;
      },
      20s))
      << log();
  const bool hitA = rules(a).find("chaosd") != std::string::npos;
  EXPECT_EQ(rules(hitA ? b : a), "") << "one container of the pod";
  EXPECT_EQ(rules(outside), "") << "not the container outside the pod";
  EXPECT_EQ(waitRun(), 0) << log();
  EXPECT_EQ(rules(a) + rules(b), "");
  const auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  const auto& hit = r["faults"][0]["observed"]["container"];
  EXPECT_EQ(hit["pod"], pod.name()) << hit.dump();
  EXPECT_EQ(hit["name"], hitA ? a.name() : b.name());
}

// `mode: all` over a pod: process.pause stops the workers of both its containers, neither
// init, nothing outside the pod; a network fault on the same target acts in one namespace, so
// it is refused before any fault; a container target that matches nothing with `empty: skip`
// skips its step and the run passes.
TEST_F(ContainerFaultTest, AllOfAPodsContainersForProcessFaultsAndEmptySkip) {
  testing::PodmanPod pod;
  ASSERT_EQ(pod.create(name_ + "-pod"), "");
  const std::vector<std::string> work = {"/bin/sh", "-c",
                                         "sleep 1001 & while :; do wait; sleep 1; done"};
  PodmanContainer a, b, outside;
  ASSERT_EQ(a.run(name_ + "-a", rootfs_.dir(), work, {.pod = pod.name()}), "");
  ASSERT_EQ(b.run(name_ + "-b", rootfs_.dir(), work, {.pod = pod.name()}), "");
  ASSERT_EQ(outside.run(name_, rootfs_.dir(), work), "");
  std::map<pid_t, pid_t> workerOf;  // init -> its sleep
  ASSERT_TRUE(waitUntil([&] {
    workerOf.clear();
    for (const PodmanContainer* c : {&a, &b, &outside}) {
      for (pid_t p : cgroupProcs("/libpod_parent/libpod-" + c->id())) {
        if (p != c->pid()) workerOf[c->pid()] = p;
      }
    }
    return workerOf.size() == 3;
  })) << "each container's worker";
  auto experimentOn = [&](const std::string& target, const std::string& step) {
    const std::string file = root_ + "/all.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: all}\n"
                           "targets:\n  ctr:\n    "
                        << target
                        << "\n"
                           "steadyState: {baseline: {duration: 100ms}, "
                           "recovery: {duration: 100ms}, probes: []}\n"
                           "method:\n  - "
                        << step << "\n";
    return file;
  };
  const std::string podTarget =
      "container: {pod: " + pod.name() + ", socket: " + socket_ + ", interface: lo}";
  startRun(experimentOn(podTarget,
                        "{name: freeze, fault: process.pause, target: ctr, "
                        "duration: 3s}"));
  ASSERT_TRUE(waitUntil(
      [&] { return procState(workerOf[a.pid()]) == 'T' && procState(workerOf[b.pid()]) == 'T'; },
      20s))
      << log();
  EXPECT_NE(procState(a.pid()), 'T') << "each container's init is protected";
  EXPECT_NE(procState(b.pid()), 'T');
  EXPECT_NE(procState(workerOf[outside.pid()]), 'T') << "not the container outside the pod";
  EXPECT_EQ(waitRun(), 0) << log();
  for (const auto& [init, worker] : workerOf) EXPECT_NE(procState(worker), 'T') << worker;
  auto r = report();
  ASSERT_TRUE(r.is_object()) << log();
  EXPECT_EQ(r["faults"][0]["state"], "reverted") << r["faults"][0].dump();
  fs::remove_all(root_ + "/reports");

  int st = 0;
  const std::string refused =
      runShell(chaosctl("run", experimentOn(podTarget,
                                            "{name: cut, fault: network.partition, "
                                            "target: ctr, duration: 3s, "
                                            "args: {cidr: [127.0.0.2/32]}}")) +
                   " 2>&1",
               &st);
  EXPECT_NE(st, 0) << refused;
  EXPECT_NE(refused.find("selects 2 containers"), std::string::npos) << refused;
  EXPECT_NE(refused.find("more than one network namespace"), std::string::npos) << refused;
  for (const PodmanContainer* c : {&a, &b}) {
    EXPECT_EQ(runShell("nsenter -t " + std::to_string(c->pid()) + " -n nft list ruleset"), "")
        << "nothing applied";
  }
  fs::remove_all(root_ + "/reports");

  const std::string skipped =
      runShell(chaosctl("run", experimentOn("container: {name: " + name_ +
                                                "-none, socket: " + socket_ + "}\n    empty: skip",
                                            "{name: kill, fault: process.kill, target: ctr}")) +
                   " 2>&1",
               &st);
  EXPECT_EQ(st, 0) << skipped;
  r = report();
  ASSERT_TRUE(r.is_object()) << skipped;
  EXPECT_EQ(r["faults"][0]["state"], "skipped") << r["faults"][0].dump();
  EXPECT_NE(r["faults"][0]["error"].get<std::string>().find("empty: skip"), std::string::npos)
      << r["faults"][0].dump();
  for (const auto& [init, worker] : workerOf) EXPECT_EQ(procState(worker), 'S') << worker;
}

TEST_F(ContainerFaultTest, PlanShowsWhatMatchedAndHow) {
  PodmanContainer a;
  PodmanContainer b;
  ASSERT_EQ(a.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}, {.labels = {"chaosd-plan=1"}}), "");
  ASSERT_EQ(
      b.run(name_ + "-b", rootfs_.dir(), {"/bin/sleep", "600"}, {.labels = {"chaosd-plan=1"}}), "");
  const std::string file = root_ + "/plan.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: p}\n"
                         "targets:\n  ctr:\n    container: {label: {chaosd-plan: '1'}, socket: "
                      << socket_
                      << "}\n    mode: one\n    seed: 3\n"
                         "steadyState: {probes: []}\n"
                         "method:\n  - {name: cut, fault: network.partition, target: ctr, "
                         "duration: 1s, args: {cidr: [10.0.0.1]}}\n";
  int st = -1;
  const std::string out = runShell(chaosctl("plan", "--output json " + file), &st);
  const auto plan = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out;
  nlohmann::json target;
  for (const auto& t : plan["targets"]) {
    if (t["name"] == "ctr") target = t;
  }
  ASSERT_TRUE(target.is_object()) << out;
  EXPECT_TRUE(target["usable"].get<bool>()) << target.dump();
  ASSERT_EQ(target["containers"].size(), 2u) << target.dump();
  int selected = 0;
  for (const auto& m : target["containers"]) {
    EXPECT_EQ(m["foundBy"], "podman API on " + socket_);
    selected += m["selected"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(selected, 1) << "mode one with a seed picks one now";
  // The same plan again picks the same container.
  const auto again =
      nlohmann::json::parse(runShell(chaosctl("plan", "--output json " + file)), nullptr, false);
  EXPECT_EQ(again["targets"], plan["targets"]);
}

TEST_F(ContainerFaultTest, WithoutTheSocketAnIdIsFoundThroughCgroups) {
  if (fs::exists("/run/podman/podman.sock")) GTEST_SKIP() << "the system's podman socket answers";
  PodmanContainer c;
  ASSERT_EQ(c.run(name_, rootfs_.dir(), {"/bin/sleep", "600"}), "");
  const std::string file = root_ + "/plan.yaml";
  std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: p}\n"
                         "targets:\n  ctr:\n    container: {id: "
                      << c.id().substr(0, 10)
                      << "}\nsteadyState: {probes: []}\n"
                         "method:\n  - {name: cut, fault: network.partition, target: ctr, "
                         "duration: 1s, args: {cidr: [10.0.0.1]}}\n";
  const std::string out = runShell(chaosctl("plan", "--output json " + file));
  const auto plan = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out;
  for (const auto& t : plan["targets"]) {
    if (t["name"] != "ctr") continue;
    ASSERT_EQ(t["containers"].size(), 1u) << t.dump();
    EXPECT_EQ(t["containers"][0]["id"], c.id());
    EXPECT_EQ(t["containers"][0]["pid"], c.pid());
    EXPECT_EQ(t["containers"][0]["foundBy"], "cgroup libpod-" + c.id() + " (cgroupfs driver)");
  }
}

}  // namespace
}  // namespace chaosd
