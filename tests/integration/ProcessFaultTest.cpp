// process.kill and process.pause against real processes: children of this test with
// distinctive names, a supervisor loop, a child cgroup, and `chaosctl run` with its guardian.
// Every process started here is killed and reaped, and every cgroup removed, in TearDown.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Pidfd.h"
#include "chaosd/base/ProcessTable.h"
#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "injectors/process/KillInjector.h"
#include "injectors/process/PauseInjector.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/process/Selection.h"

extern char** environ;

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Polls a condition (state in /proc, a process appearing) until it holds or the limit passes.
bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
}

char stateOf(pid_t pid) {
  auto info = readProcess(pid);
  return info ? info->state : '?';
}

std::vector<pid_t> victimPids(const nlohmann::json& undo, const char* key = "victims") {
  std::vector<pid_t> pids;
  for (const auto& v : undo[key]) pids.push_back(v["pid"].get<pid_t>());
  return pids;
}

std::string regexEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::strchr("\\^$.|?*+()[]{}", c) != nullptr) out += '\\';
    out += c;
  }
  return out;
}

class ProcessFaultTest : public ::testing::Test {
 protected:
  struct Child {
    pid_t pid = 0;
    std::string argv0;
    bool reaped = false;
  };

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    token_ = std::to_string(::getpid());
    comm_ = "cpf" + token_;  // at most 10 characters: comm keeps 15
    std::string pattern = (fs::temp_directory_path() / "chaosd-pf-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    program_ = dir_ + "/" + comm_;
    fs::create_symlink("/bin/sleep", program_);
  }

  // Runs when an assertion failed too: children (a stopped one dies of SIGKILL as well),
  // supervisor groups with their orphans (we are their subreaper), cgroups, files.
  void TearDown() override {
    for (Child& c : children_) {
      if (c.reaped) continue;
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
      c.reaped = true;
    }
    for (pid_t group : groups_) {
      ::kill(-group, SIGKILL);
      while (::waitpid(-group, nullptr, 0) > 0 || errno == EINTR) {
      }
    }
    if (!groups_.empty()) ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    for (const std::string& dir : cgroups_) {
      // The kernel empties a cgroup shortly after its last process is reaped.
      for (int i = 0; i < 500 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(10ms);
      }
      EXPECT_FALSE(fs::exists(dir)) << "could not remove " << dir;
    }
    // What a failed chaosctl test may have left in its journal, before the files go.
    if (!stateDir_.empty()) {
      std::string cmd = std::string(CHAOSCTL_PATH) + " recover --force --state-dir " + stateDir_ +
                        " >/dev/null 2>&1";
      EXPECT_EQ(std::system(cmd.c_str()), 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // sleep 1000 named comm_, argv[0] "chaosd-pf-<token>-<suffix>"; returns once it has exec'd.
  pid_t spawn(const std::string& suffix) { return spawnProgram(program_, comm_, suffix); }

  // program (a symlink to sleep whose name is comm) with argv[0] "chaosd-pf-<token>-<suffix>".
  pid_t spawnProgram(const std::string& program, const std::string& comm,
                     const std::string& suffix) {
    Child child;
    child.argv0 = "chaosd-pf-" + token_ + "-" + suffix;
    const char* argv[] = {child.argv0.c_str(), "1000", nullptr};
    pid_t parent = ::getpid();
    child.pid = ::fork();
    if (child.pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::execv(program.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
    EXPECT_GT(child.pid, 0);
    if (child.pid <= 0) return -1;
    children_.push_back(child);
    bool execed = waitFor([&] {
      auto info = readProcess(child.pid);
      return info && info->comm == comm && !info->cmdline.empty() &&
             info->cmdline[0] == child.argv0;
    });
    EXPECT_TRUE(execed) << "child " << child.pid << " never exec'd";
    return child.pid;
  }

  std::vector<pid_t> spawnMany(const std::string& prefix, int n) {
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) pids.push_back(spawn(prefix + std::to_string(i)));
    return pids;
  }

  Child* childOf(pid_t pid) {
    for (Child& c : children_) {
      if (c.pid == pid && !c.reaped) return &c;
    }
    return nullptr;
  }

  // Reaps the child if it has exited; true then (and on later calls).
  bool exited(pid_t pid, int* termSignal = nullptr) {
    Child* c = childOf(pid);
    if (c == nullptr) return true;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != pid) return false;
    c->reaped = true;
    if (termSignal != nullptr) *termSignal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return true;
  }

  // Waits for the child's exit through a pidfd, then reaps it.
  bool waitExit(pid_t pid, std::chrono::milliseconds limit = 5000ms, int* termSignal = nullptr) {
    if (childOf(pid) == nullptr) return true;
    Fd pidfd(::pidfd_open(pid, 0));
    if (!pidfd) return exited(pid, termSignal);
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return false;
    childOf(pid)->reaped = true;
    if (termSignal != nullptr) *termSignal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return true;
  }

  // A supervisor: `while true; do /bin/sleep 1000.<token>; done` in its own process group,
  // with this test as subreaper so that every sleep it started comes back to us.
  pid_t startSupervisor() {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::string loop = "while true; do /bin/sleep 1000." + token_ + "; done";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl("/bin/sh", "sh", "-c", loop.c_str(), nullptr);
      ::_exit(127);
    }
    EXPECT_GT(pid, 0);
    if (pid > 0) {
      ::setpgid(pid, pid);  // also here: the group must exist before TearDown kills it
      groups_.push_back(pid);
    }
    return pid;
  }

  ProcessSelector byName() const {
    ProcessSelector s;
    s.name = comm_;
    return s;
  }

  ProcessSelector byCmdline(const std::string& regex) const {
    ProcessSelector s;
    s.cmdline = regex;
    return s;
  }

  static TargetSpec target(ProcessSelector selector, Selection selection = {}) {
    TargetSpec t;
    t.name = "victims";
    t.kind = TargetKind::kProcess;
    t.process = std::move(selector);
    t.selection = selection;
    return t;
  }

  static Selection mode(SelectionMode m, std::optional<uint64_t> seed = std::nullopt,
                        uint64_t count = 0, double fraction = 0) {
    Selection s;
    s.mode = m;
    s.seed = seed;
    s.count = count;
    s.fraction = fraction;
    return s;
  }

  FaultRequest request(const std::string& type, const TargetSpec& t,
                       nlohmann::json args = nlohmann::json::object(),
                       std::chrono::nanoseconds duration = 0ns) {
    FaultRequest r;
    r.runId = "pft-" + token_;
    r.faultId = r.runId + "-" + std::to_string(++faults_);
    r.stepName = "step";
    r.faultType = type;
    r.target = &t;
    r.args = std::move(args);
    if (type == "process.kill" && !r.args.contains("signal")) r.args["signal"] = SIGKILL;
    r.duration = duration;
    return r;
  }

  std::string token_, comm_, dir_, program_, stateDir_;
  std::vector<Child> children_;
  std::vector<pid_t> groups_;
  std::vector<std::string> cgroups_;
  int faults_ = 0;
};

// ---- kill ---------------------------------------------------------------------------------

TEST_F(ProcessFaultTest, KillByNameHitsEveryMatch) {
  auto pids = spawnMany("all", 3);
  TargetSpec t = target(byName());
  KillInjector kill;
  auto req = request("process.kill", t);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_FALSE(prepared->revertible);
  auto victims = victimPids(prepared->undo);
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(victims, pids);
  EXPECT_EQ(prepared->undo["seedSource"], "random");
  ASSERT_EQ(prepared->resources.size(), 3u);
  EXPECT_EQ(prepared->resources[0].rfind("pid:" + std::to_string(pids[0]) + "@", 0), 0u);

  auto applied = kill.apply(req.faultId, prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "pidfd");
  EXPECT_EQ(applied->observed["signalled"], 3);
  EXPECT_EQ(applied->observed["died"], 3) << applied->observed.dump();
  for (pid_t pid : pids) {
    int sig = 0;
    EXPECT_TRUE(waitExit(pid, 5000ms, &sig));
    EXPECT_EQ(sig, SIGKILL);
  }
  auto reverted = kill.revert(req.faultId, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  for (const auto& v : (*reverted)["victims"]) {
    EXPECT_EQ(v["outcome"], "signalled");
    EXPECT_TRUE(v["diedMs"].is_number()) << v.dump();
  }
  auto left = kill.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // A second revert, and one from another instance, have nothing to do.
  EXPECT_TRUE(kill.revert(req.faultId, prepared->undo).ok());
  EXPECT_TRUE(KillInjector().revert(req.faultId, prepared->undo).ok());
}

TEST_F(ProcessFaultTest, SelectionModesKillTheRightNumberAndTheSeededChoice) {
  struct Case {
    std::string name;
    Selection selection;
    size_t expected;
  };
  std::vector<Case> cases = {
      {"one", mode(SelectionMode::kOne, 7), 1},
      {"count", mode(SelectionMode::kCount, 7, 2), 2},
      {"percent", mode(SelectionMode::kPercent, 7, 0, 0.5), 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto pids = spawnMany(c.name, 4);
    TargetSpec t =
        target(byCmdline("^chaosd-pf-" + token_ + "-" + c.name + "[0-9] 1000$"), c.selection);
    // The choice the selection makes on these candidates with this seed.
    auto candidates = findCandidates(t.process, defaultProtection());
    ASSERT_TRUE(candidates.ok());
    ASSERT_EQ(candidates->eligible.size(), 4u);
    std::vector<pid_t> expected;
    for (const auto& p : selectProcesses(candidates->eligible, c.selection, 7)) {
      expected.push_back(p.pid);
    }
    ASSERT_EQ(expected.size(), c.expected);

    KillInjector kill;
    auto req = request("process.kill", t);
    auto prepared = kill.prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    EXPECT_EQ(victimPids(prepared->undo), expected);
    EXPECT_EQ(prepared->undo["seed"], 7u);
    EXPECT_EQ(prepared->undo["seedSource"], "experiment");
    auto applied = kill.apply(req.faultId, prepared->undo);
    ASSERT_TRUE(applied.ok()) << applied.error().describe();
    EXPECT_EQ(applied->observed["seed"], 7u);
    for (pid_t pid : expected) EXPECT_TRUE(waitExit(pid)) << pid;
    for (pid_t pid : pids) {
      bool victim = std::find(expected.begin(), expected.end(), pid) != expected.end();
      if (!victim) {
        EXPECT_FALSE(exited(pid)) << pid << " was not chosen but died";
      }
    }
    ASSERT_TRUE(kill.revert(req.faultId, prepared->undo).ok());
  }
}

TEST_F(ProcessFaultTest, SameSeedSameVictimsAndARandomSeedIsRecordedForReplay) {
  auto pids = spawnMany("seed", 6);
  KillInjector kill;
  TargetSpec seeded = target(byName(), mode(SelectionMode::kCount, 12345, 3));
  auto first = kill.prepare(request("process.kill", seeded));
  auto second = kill.prepare(request("process.kill", seeded));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(victimPids(first->undo), victimPids(second->undo));
  EXPECT_EQ(victimPids(first->undo).size(), 3u);
  std::set<std::vector<pid_t>> choices;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    TargetSpec other = target(byName(), mode(SelectionMode::kCount, seed, 3));
    auto p = kill.prepare(request("process.kill", other));
    ASSERT_TRUE(p.ok());
    choices.insert(victimPids(p->undo));
  }
  EXPECT_GT(choices.size(), 1u) << "the seed does not change the choice";

  TargetSpec unseeded = target(byName(), mode(SelectionMode::kCount, std::nullopt, 3));
  auto drawn = kill.prepare(request("process.kill", unseeded));
  ASSERT_TRUE(drawn.ok());
  EXPECT_EQ(drawn->undo["seedSource"], "random");
  TargetSpec replay =
      target(byName(), mode(SelectionMode::kCount, drawn->undo["seed"].get<uint64_t>(), 3));
  auto replayed = kill.prepare(request("process.kill", replay));
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(victimPids(replayed->undo), victimPids(drawn->undo));
  for (pid_t pid : pids) EXPECT_FALSE(exited(pid)) << "prepare must not touch anything";
}

TEST_F(ProcessFaultTest, KillByPidAndByPidFile) {
  pid_t a = spawn("pid"), b = spawn("pidfile"), bystander = spawn("bystander");
  KillInjector kill;
  ProcessSelector byPid;
  byPid.pid = a;
  TargetSpec t1 = target(byPid);
  auto r1 = request("process.kill", t1, {{"signal", SIGTERM}});
  auto p1 = kill.prepare(r1);
  ASSERT_TRUE(p1.ok()) << p1.error().describe();
  ASSERT_TRUE(kill.apply(r1.faultId, p1->undo).ok());
  int sig = 0;
  EXPECT_TRUE(waitExit(a, 5000ms, &sig));
  EXPECT_EQ(sig, SIGTERM);

  ProcessSelector byFile;
  byFile.pidFile = dir_ + "/b.pid";
  std::ofstream(byFile.pidFile) << b << "\n";
  TargetSpec t2 = target(byFile);
  auto r2 = request("process.kill", t2);
  auto p2 = kill.prepare(r2);
  ASSERT_TRUE(p2.ok()) << p2.error().describe();
  EXPECT_EQ(victimPids(p2->undo), std::vector<pid_t>{b});
  ASSERT_TRUE(kill.apply(r2.faultId, p2->undo).ok());
  EXPECT_TRUE(waitExit(b));
  EXPECT_FALSE(exited(bystander));
  EXPECT_TRUE(kill.revert(r1.faultId, p1->undo).ok());
  EXPECT_TRUE(kill.revert(r2.faultId, p2->undo).ok());
}

TEST_F(ProcessFaultTest, KillByCgroup) {
  auto mount = cgroup2Mount();
  if (!mount.ok()) GTEST_SKIP() << mount.error().describe();
  std::string path = "/chaosd-pf-" + token_;
  std::string dir = *mount + path;
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
  cgroups_.push_back(dir);
  pid_t inside = spawn("cg-in"), outside = spawn("cg-out");
  {
    std::ofstream procs(dir + "/cgroup.procs");
    procs << inside << "\n";
    procs.flush();
    ASSERT_TRUE(static_cast<bool>(procs)) << "moving " << inside << " into " << dir;
  }
  ASSERT_TRUE(waitFor([&] {
    auto info = readProcess(inside);
    return info && info->cgroup == path;
  })) << "the child never showed up in "
      << path;

  ProcessSelector s = byName();
  s.cgroup = path;
  TargetSpec t = target(s);
  KillInjector kill;
  auto req = request("process.kill", t);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(victimPids(prepared->undo), std::vector<pid_t>{inside});
  ASSERT_TRUE(kill.apply(req.faultId, prepared->undo).ok());
  EXPECT_TRUE(waitExit(inside));
  EXPECT_FALSE(exited(outside));
  ASSERT_TRUE(kill.revert(req.faultId, prepared->undo).ok());
}

TEST_F(ProcessFaultTest, IntervalKillsOneTargetPerIntervalForTheDuration) {
  auto pids = spawnMany("iv", 6);
  // Rounds at 0, 250, 500 and 750 ms of a 1 s step: four kills, whatever the scheduling.
  TargetSpec t = target(byName(), mode(SelectionMode::kAll, 42));
  KillInjector kill;
  auto req = request("process.kill", t, {{"interval", 250e6}}, 1000ms);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_EQ(victimPids(prepared->undo).size(), 1u);
  auto applied = kill.apply(req.faultId, prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  auto dead = [&] {
    return std::count_if(pids.begin(), pids.end(), [&](pid_t p) { return exited(p); });
  };
  EXPECT_TRUE(waitFor([&] { return dead() == 4; }, 10000ms)) << dead() << " died";
  auto reverted = kill.revert(req.faultId, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(dead(), 4) << reverted->dump(2);
  const auto& victims = (*reverted)["victims"];
  ASSERT_EQ(victims.size(), 4u) << reverted->dump(2);
  for (size_t i = 0; i < victims.size(); ++i) {
    EXPECT_EQ(victims[i]["round"], i);
    EXPECT_EQ(victims[i]["outcome"], "signalled");
    EXPECT_GE(victims[i]["signalledMs"].get<double>(), 250.0 * static_cast<double>(i) - 1);
  }
  EXPECT_EQ((*reverted)["signalled"], 4);
}

TEST_F(ProcessFaultTest, RestartBySupervisorIsTimed) {
  pid_t supervisor = startSupervisor();
  ASSERT_GT(supervisor, 0);
  TargetSpec t = target(byCmdline("^/bin/sleep 1000\\." + token_ + "$"));
  auto current = [&]() -> pid_t {
    auto c = findCandidates(t.process, defaultProtection());
    return c && c->eligible.size() == 1 ? c->eligible[0].pid : 0;
  };
  pid_t first = 0;
  ASSERT_TRUE(waitFor([&] { return (first = current()) != 0; }))
      << "the supervisor's sleep never showed up";

  // Instantaneous (no duration, as the engine reverts it at once) and timed.
  for (auto duration : {0ms, 3000ms}) {
    SCOPED_TRACE(duration.count());
    KillInjector kill;
    auto req = request("process.kill", t, nlohmann::json::object(), duration);
    auto prepared = kill.prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    ASSERT_EQ(victimPids(prepared->undo), std::vector<pid_t>{first});
    auto applied = kill.apply(req.faultId, prepared->undo);
    ASSERT_TRUE(applied.ok()) << applied.error().describe();
    EXPECT_EQ(applied->observed["died"], 1);
    pid_t next = 0;
    ASSERT_TRUE(waitFor([&] { return (next = current()) != 0 && next != first; }))
        << "the supervisor did not restart its sleep";
    // Revert never waits for the watch; its last look finds the restart that is there.
    const auto before = Clock::now();
    auto reverted = kill.revert(req.faultId, prepared->undo);
    ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
    EXPECT_LT(Clock::now() - before, 1000ms);
    const auto& restarts = (*reverted)["restarts"];
    ASSERT_EQ(restarts.size(), 1u) << reverted->dump(2);
    EXPECT_EQ(restarts[0]["pid"], next);
    EXPECT_EQ(restarts[0]["replaces"], first);
    ASSERT_TRUE(reverted->contains("timeToRestartMs")) << reverted->dump(2);
    double ttr = (*reverted)["timeToRestartMs"].get<double>();
    EXPECT_GE(ttr, 0);
    EXPECT_LE(ttr, restarts[0]["detectedMs"].get<double>());
    first = next;
  }
}

TEST_F(ProcessFaultTest, IntervalKillsOfASupervisedProcessRecordEachRestart) {
  ASSERT_GT(startSupervisor(), 0);
  TargetSpec t = target(byCmdline("^/bin/sleep 1000\\." + token_ + "$"));
  std::set<pid_t> seen;
  auto look = [&] {
    auto c = findCandidates(t.process, defaultProtection());
    if (c) {
      for (const auto& p : c->eligible) seen.insert(p.pid);
    }
    return c && c->eligible.size() == 1;
  };
  ASSERT_TRUE(waitFor(look)) << "the supervisor's sleep never showed up";
  // Rounds at 0, 200, 400 and 600 ms of 700 ms: four kills, each restarted by the loop.
  KillInjector kill;
  auto req = request("process.kill", t, {{"interval", 200e6}}, 700ms);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_TRUE(kill.apply(req.faultId, prepared->undo).ok());
  EXPECT_TRUE(waitFor([&] { return look() && seen.size() >= 5; }, 10000ms))
      << seen.size() << " sleeps seen";
  auto reverted = kill.revert(req.faultId, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["signalled"], 4) << reverted->dump(2);
  const auto& restarts = (*reverted)["restarts"];
  ASSERT_GE(restarts.size(), 3u) << reverted->dump(2);
  std::set<pid_t> victims;
  for (const auto& v : (*reverted)["victims"]) victims.insert(v["pid"].get<pid_t>());
  for (const auto& r : restarts) {
    EXPECT_TRUE(victims.contains(r["replaces"].get<pid_t>())) << r.dump();
    EXPECT_GE(r["restartMs"].get<double>(), 0);
  }
}

TEST_F(ProcessFaultTest, ProtectedTargetsAreRefused) {
  KillInjector kill;
  PauseInjector pause;
  for (pid_t pid : {pid_t{1}, ::getpid()}) {
    SCOPED_TRACE(pid);
    ProcessSelector s;
    s.pid = pid;
    TargetSpec t = target(s);
    for (Injector* injector : {static_cast<Injector*>(&kill), static_cast<Injector*>(&pause)}) {
      auto prepared = injector->prepare(
          request(injector == &kill ? "process.kill" : "process.pause", t, {}, 1s));
      ASSERT_FALSE(prepared.ok());
      EXPECT_EQ(prepared.error().code(), ErrorCode::kPermission);
      EXPECT_NE(prepared.error().message().find("every process matching"), std::string::npos)
          << prepared.error().message();
      EXPECT_NE(prepared.error().message().find(pid == 1 ? "PID 1" : "chaosd itself"),
                std::string::npos)
          << prepared.error().message();
    }
  }
  // A chaosd guardian (any run's), found by its name: `user: root` would match it too.
  std::string guardianProgram = dir_ + "/chaosd-guardian";
  fs::create_symlink("/bin/sleep", guardianProgram);
  pid_t guardian = spawnProgram(guardianProgram, "chaosd-guardian", "guardian");
  ProcessSelector g;
  g.name = "chaosd-guardian";
  g.cmdline = "^chaosd-pf-" + token_ + "-guardian 1000$";
  TargetSpec gt = target(g);
  auto refused = kill.prepare(request("process.kill", gt));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermission);
  EXPECT_NE(refused.error().message().find("guardian"), std::string::npos)
      << refused.error().message();
  EXPECT_FALSE(exited(guardian));

  // A selector matching this process and a child: the child only; the refusal recorded.
  pid_t child = spawn("mixed");
  auto self = readProcess(::getpid());
  ASSERT_TRUE(self.ok());
  TargetSpec t = target(byCmdline("^(?:" + regexEscape(self->commandLine) + "|chaosd-pf-" + token_ +
                                  "-mixed 1000)$"));
  auto req = request("process.kill", t);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(victimPids(prepared->undo), std::vector<pid_t>{child});
  EXPECT_EQ(prepared->undo["matched"], 2);
  ASSERT_EQ(prepared->undo["refused"].size(), 1u);
  EXPECT_NE(prepared->undo["refused"][0].get<std::string>().find(token_), std::string::npos);
  ASSERT_TRUE(kill.apply(req.faultId, prepared->undo).ok());
  EXPECT_TRUE(waitExit(child));
  ASSERT_TRUE(kill.revert(req.faultId, prepared->undo).ok());
}

TEST_F(ProcessFaultTest, VictimGoneBeforeApplyIsReportedAndAReusedPidIsNotSignalled) {
  pid_t gone = spawn("gone"), reused = spawn("reused");
  KillInjector kill;
  ProcessSelector s;
  s.pid = gone;
  TargetSpec t = target(s);
  auto req = request("process.kill", t);
  auto prepared = kill.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  // The victim exits between prepare and apply (and its pid is free for reuse).
  ASSERT_EQ(::kill(gone, SIGKILL), 0);
  ASSERT_TRUE(waitExit(gone));
  auto applied = kill.apply(req.faultId, prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["signalled"], 0);
  EXPECT_EQ(applied->observed["victims"][0]["outcome"], "exited before the signal");
  ASSERT_TRUE(kill.revert(req.faultId, prepared->undo).ok());

  // The pid now names another process: the recorded start time does not match.
  s.pid = reused;
  TargetSpec t2 = target(s);
  auto req2 = request("process.kill", t2);
  auto p2 = kill.prepare(req2);
  ASSERT_TRUE(p2.ok()) << p2.error().describe();
  nlohmann::json undo = p2->undo;
  undo["victims"][0]["startTime"] = undo["victims"][0]["startTime"].get<uint64_t>() + 1;
  auto a2 = kill.apply(req2.faultId, undo);
  ASSERT_TRUE(a2.ok()) << a2.error().describe();
  EXPECT_EQ(a2->observed["signalled"], 0);
  EXPECT_NE(a2->observed["victims"][0]["outcome"].get<std::string>().find("reused"),
            std::string::npos);
  EXPECT_FALSE(exited(reused));
  EXPECT_NE(stateOf(reused), 'T');
  ASSERT_TRUE(kill.revert(req2.faultId, undo).ok());

  // Nor is it resumed by a pause's revert: stopped by us here, left stopped by the revert.
  PauseInjector pause;
  auto req3 = request("process.pause", t2, {}, 1s);
  auto p3 = pause.prepare(req3);
  ASSERT_TRUE(p3.ok()) << p3.error().describe();
  nlohmann::json pauseUndo = p3->undo;
  pauseUndo["stopped"][0]["startTime"] = pauseUndo["stopped"][0]["startTime"].get<uint64_t>() + 1;
  ASSERT_EQ(::kill(reused, SIGSTOP), 0);
  ASSERT_TRUE(waitFor([&] { return stateOf(reused) == 'T'; }));
  auto r3 = pause.revert(req3.faultId, pauseUndo);
  ASSERT_TRUE(r3.ok()) << r3.error().describe();
  EXPECT_EQ((*r3)["pidReused"], nlohmann::json::array({reused}));
  EXPECT_EQ(stateOf(reused), 'T');
  ::kill(reused, SIGCONT);
  EXPECT_TRUE(waitFor([&] { return stateOf(reused) != 'T'; }));
}

TEST_F(ProcessFaultTest, EmptySelectionIsAnErrorOrARecordedNoOp) {
  ProcessSelector s;
  s.name = "cpfnone" + token_.substr(0, 6);
  TargetSpec t = target(s);
  KillInjector kill;
  auto failed = kill.prepare(request("process.kill", t));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(failed.error().message().find("name=" + s.name), std::string::npos)
      << failed.error().message();

  t.emptySkip = true;
  for (const char* type : {"process.kill", "process.pause"}) {
    SCOPED_TRACE(type);
    std::unique_ptr<Injector> injector;
    if (std::string(type) == "process.kill") {
      injector = std::make_unique<KillInjector>();
    } else {
      injector = std::make_unique<PauseInjector>();
    }
    auto req = request(type, t, {}, 1s);
    auto prepared = injector->prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    EXPECT_TRUE(prepared->undo["noop"].get<bool>());
    EXPECT_TRUE(prepared->resources.empty());
    auto applied = injector->apply(req.faultId, prepared->undo);
    ASSERT_TRUE(applied.ok());
    EXPECT_TRUE(applied->observed["noop"].get<bool>());
    EXPECT_TRUE(injector->revert(req.faultId, prepared->undo).ok());
    auto left = injector->audit(prepared->undo);
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(left->empty());
  }
}

// ---- pause --------------------------------------------------------------------------------

TEST_F(ProcessFaultTest, PauseStopsAndRevertResumesIdempotently) {
  pid_t a = spawn("pause-a"), b = spawn("pause-b");
  TargetSpec t = target(byName());
  PauseInjector pause;
  auto req = request("process.pause", t, {}, 5s);
  auto prepared = pause.prepare(req);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_TRUE(prepared->revertible);
  EXPECT_EQ(victimPids(prepared->undo, "stopped"),
            (std::vector<pid_t>{std::min(a, b), std::max(a, b)}));
  auto applied = pause.apply(req.faultId, prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["stopped"], 2) << applied->observed.dump();
  EXPECT_EQ(stateOf(a), 'T');
  EXPECT_EQ(stateOf(b), 'T');
  auto left = pause.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 2u);

  auto reverted = pause.revert(req.faultId, prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["resumed"].size(), 2u);
  for (pid_t pid : {a, b}) {
    char state = stateOf(pid);
    EXPECT_TRUE(state == 'S' || state == 'R') << pid << " is " << state;
  }
  left = pause.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // Idempotent: again, and after a victim has gone.
  EXPECT_TRUE(pause.revert(req.faultId, prepared->undo).ok());
  ::kill(a, SIGKILL);
  ASSERT_TRUE(waitExit(a));
  auto again = pause.revert(req.faultId, prepared->undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)["gone"], nlohmann::json::array({a}));
  EXPECT_FALSE(exited(b));
}

TEST_F(ProcessFaultTest, GuardianRevertsAPauseFromTheUndoRecordAlone) {
  pid_t child = spawn("guardian");
  ProcessSelector s;
  s.pid = child;
  TargetSpec t = target(s);
  std::string journalled;
  std::string faultId;
  {
    PauseInjector owner;
    auto req = request("process.pause", t, {}, 30s);
    faultId = req.faultId;
    auto prepared = owner.prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    journalled = prepared->undo.dump();
    ASSERT_TRUE(owner.apply(req.faultId, prepared->undo).ok());
  }  // the owner is gone
  EXPECT_EQ(stateOf(child), 'T');

  FaultRegistry registry;
  registerBuiltinFaults(registry);
  const FaultType* type = registry.find("process.pause");
  ASSERT_NE(type, nullptr);
  ASSERT_TRUE(type->factory);
  auto guardian = type->factory();
  nlohmann::json undo = nlohmann::json::parse(journalled);
  auto left = guardian->audit(undo);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_NE((*left)[0].find(std::to_string(child)), std::string::npos) << (*left)[0];
  auto reverted = guardian->revert(faultId, undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_NE(stateOf(child), 'T');
  left = guardian->audit(undo);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // Someone else's stopped process is not ours to resume.
  ASSERT_EQ(::kill(child, SIGSTOP), 0);
  ASSERT_TRUE(waitFor([&] { return stateOf(child) == 'T'; }));
  PauseInjector other;
  auto req2 = request("process.pause", t, {}, 1s);
  auto p2 = other.prepare(req2);
  ASSERT_TRUE(p2.ok()) << p2.error().describe();
  EXPECT_TRUE(p2->undo["stopped"].empty());
  EXPECT_EQ(victimPids(p2->undo, "alreadyStopped"), std::vector<pid_t>{child});
  ASSERT_TRUE(other.apply(req2.faultId, p2->undo).ok());
  ASSERT_TRUE(other.revert(req2.faultId, p2->undo).ok());
  EXPECT_EQ(stateOf(child), 'T');
  ::kill(child, SIGCONT);
}

TEST_F(ProcessFaultTest, RefusesStoppingSignalsAndExecTargets) {
  pid_t child = spawn("refuse");
  ProcessSelector s;
  s.pid = child;
  TargetSpec t = target(s);
  KillInjector kill;
  auto stop = kill.prepare(request("process.kill", t, {{"signal", SIGSTOP}}));
  ASSERT_FALSE(stop.ok());
  EXPECT_EQ(stop.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(stop.error().message().find("process.pause"), std::string::npos);

  TargetSpec exec;
  exec.name = "app";
  exec.kind = TargetKind::kExec;
  exec.exec.argv = {"/bin/sleep", "1"};
  for (const char* type : {"process.kill", "process.pause"}) {
    std::unique_ptr<Injector> injector;
    if (std::string(type) == "process.kill") {
      injector = std::make_unique<KillInjector>();
    } else {
      injector = std::make_unique<PauseInjector>();
    }
    auto r = injector->prepare(request(type, exec, {}, 1s));
    ASSERT_FALSE(r.ok());
    // Without the engine (which starts exec targets and passes their pid) there is nothing
    // to hit; the injector never starts or guesses one.
    EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(r.error().message(), "exec target 'app' has no process the engine started");
  }
  EXPECT_FALSE(exited(child));
}

// ---- through chaosctl run: engine, journal and guardian -------------------------------------

class ProcessFaultRunTest : public ProcessFaultTest {
 protected:
  std::string experiment(const std::string& method) {
    stateDir_ = dir_ + "/state";
    std::string file = dir_ + "/exp.yaml";
    std::ofstream(file) << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: pf}\n"
                           "targets: {sleepers: {process: {name: "
                        << comm_
                        << "}}}\n"
                           "steadyState:\n  baseline: {duration: 100ms}\n"
                           "  recovery: {duration: 100ms}\n  probes: []\n"
                           "method:\n"
                        << method << "report: {dir: " << dir_ << "/reports}\n";
    return file;
  }

  pid_t startRun(const std::string& file, int* stdoutFd) {
    std::vector<std::string> args = {CHAOSCTL_PATH, "run", "--state-dir", stateDir_, file};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      return -1;
    }
    *stdoutFd = out[0];
    children_.push_back(Child{pid, "chaosctl", false});
    return pid;
  }

  static std::string readAll(int fd) {
    std::string s;
    std::array<char, 4096> buf{};
    ssize_t n = 0;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      s.append(buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    return s;
  }
};

TEST_F(ProcessFaultRunTest, ChaosctlRunPausesForTheDurationAndResumes) {
  pid_t child = spawn("run");
  std::string file =
      experiment("  - {name: freeze, fault: process.pause, target: sleepers, duration: 300ms}\n");
  int out = -1;
  pid_t run = startRun(file, &out);
  ASSERT_GT(run, 0);
  EXPECT_TRUE(waitFor([&] { return stateOf(child) == 'T'; }, 10000ms)) << "never paused";
  std::string text = readAll(out);
  int status = 0;
  ASSERT_EQ(::waitpid(run, &status, 0), run);
  childOf(run)->reaped = true;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  char state = stateOf(child);
  EXPECT_TRUE(state == 'S' || state == 'R') << state << "\n" << text;
}

TEST_F(ProcessFaultRunTest, OwnerKilledDuringAPauseTheGuardianResumes) {
  pid_t child = spawn("crash");
  std::string file =
      experiment("  - {name: freeze, fault: process.pause, target: sleepers, duration: 60s}\n");
  int out = -1;
  pid_t run = startRun(file, &out);
  ASSERT_GT(run, 0);
  ASSERT_TRUE(waitFor([&] { return stateOf(child) == 'T'; }, 10000ms)) << "never paused";
  ASSERT_EQ(::kill(run, SIGKILL), 0);
  ASSERT_TRUE(waitExit(run));
  ::close(out);
  EXPECT_TRUE(waitFor([&] { return stateOf(child) != 'T'; }, 5000ms))
      << "the guardian did not resume the paused process";
  EXPECT_FALSE(exited(child));
}

}  // namespace
}  // namespace chaosd
