// scale_bench: one run whose parallel group holds many faults at once, through the engine as
// `chaosctl run` drives it (OwnedRun: the run and its targets journalled, a guardian started,
// every intent journalled before its fault is applied, reverts at the deadline, the audit).
//
//   PARTITIONS `network.partition` faults, one TCP port each (20000, 20001, ...), both
//              directions, on one veth inside a network namespace of the bench's own;
//   FILLS      `disk.fill` faults of 4 KiB, each on a path target of its own (a folder in a
//              scratch tmpfs folder under /dev/shm).
//
// 1. Held and reverted by the owner: the CPU time of the engine's thread (the thread that
//    prepares, journals, applies and reverts; probes run on threads of their own) and the wall
//    time from the group's start to its last fault applied, and from the first revert to the
//    last; the process's whole CPU time. The journal alone for as many faults (one intents
//    transaction, then a commit per applied and per reverted mark, as the engine does) on a
//    journal of its own, for its share.
// 2. The owner killed with SIGKILL once every fault is applied: the time until its guardian has
//    reverted them all (the journal shows none held, the namespace's tables hold no rule of
//    ours, no filler file is left).
// 3. The peers' mechanisms for the same rules in the same run: one `nft -f` process loading
//    every rule (and one deleting the table): the cheapest a tool shelling out to nft can be;
//    `iptables` processes, two per port (a rule each way) added and deleted, for the first
//    IPTABLES ports (default 100; the per-fault cost is multiplied out); `fallocate -l 4K`
//    processes for the fills, and `rm` for their removal.
//
// Needs root. `scale_bench [PARTITIONS=500] [FILLS=500] [IPTABLES=100]`. The guardian is
// `chaosctl __guardian` from the build folder (../chaosd/chaosctl from this program; $CHAOSCTL
// overrides).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kFirstPort = 20000;
constexpr const char* kFaultDuration = "6s";

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double threadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double processCpuMs() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string experimentYaml(const std::string& ns, const std::string& fillRoot, int partitions,
                           int fills) {
  std::string y =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: scale-bench}\ntargets:\n"
      "  link: {interface: {name: cscale0, netns: " +
      ns + "}}\n";
  for (int i = 0; i < fills; ++i) {
    y += "  fill" + std::to_string(i) + ": {path: " + fillRoot + "/d" + std::to_string(i) + "}\n";
  }
  y += "steadyState:\n  baseline: {duration: 1s}\n  recovery: {duration: 1s}\n  probes:\n"
       "    - {name: init, process: {pid: 1}, every: 1s}\n"
       "method:\n  - name: group\n    parallel:\n";
  for (int i = 0; i < partitions; ++i) {
    y += "      - {name: p" + std::to_string(i) + ", fault: network.partition, target: link, " +
         "args: {ports: [" + std::to_string(kFirstPort + i) +
         "], protocol: tcp, direction: both}, duration: " + kFaultDuration + "}\n";
  }
  for (int i = 0; i < fills; ++i) {
    y += "      - {name: f" + std::to_string(i) + ", fault: disk.fill, target: fill" +
         std::to_string(i) + ", args: {size: 4KiB}, duration: " + kFaultDuration + "}\n";
  }
  y += "guardrails: {maxFaults: " + std::to_string(partitions + fills + 1) +
       ", maxDuration: 1m}\nreport: {formats: [json]}\n";
  return y;
}

// What the engine's thread did, marked from the observer's callbacks (on that thread).
struct Marks {
  double groupStartWall = 0, lastAppliedWall = 0, firstRevertedWall = 0, lastRevertedWall = 0;
  double groupStartCpu = 0, lastAppliedCpu = 0, lastRevertedCpu = 0;
  double processCpu = 0;
  int applied = 0, reverted = 0, exitCode = -1;
};

class Timing : public chaosd::EngineObserver {
 public:
  Timing(int total, int notifyFd) : total_(total), notifyFd_(notifyFd) {}
  void phaseStarted(chaosd::Phase phase, chaosd::Duration /*length*/) override {
    if (phase != chaosd::Phase::kDuring) return;
    marks.groupStartWall = msSince(t0_);
    marks.groupStartCpu = threadCpuMs();
  }
  void faultApplied(const chaosd::FaultRecordOut& /*fault*/) override {
    if (++marks.applied != total_) return;
    marks.lastAppliedWall = msSince(t0_);
    marks.lastAppliedCpu = threadCpuMs();
    if (notifyFd_ >= 0) (void)!::write(notifyFd_, "A", 1);
  }
  void faultReverted(const chaosd::FaultRecordOut& /*fault*/) override {
    if (++marks.reverted == 1) marks.firstRevertedWall = msSince(t0_);
    if (marks.reverted != total_) return;
    marks.lastRevertedWall = msSince(t0_);
    marks.lastRevertedCpu = threadCpuMs();
  }
  Marks marks;

 private:
  Clock::time_point t0_ = Clock::now();
  int total_;
  int notifyFd_;
};

struct Setup {
  std::string ns, dir, fillRoot, journalPath, chaosctl, yaml;
  int partitions = 0, fills = 0;
};

// The owner: a child process running the experiment through OwnedRun; writes its Marks to
// `out` at the end, and "A" to `out` the moment every fault is applied.
[[noreturn]] void runOwner(const Setup& s, int out) {
  (void)chaosd::log::setup(chaosd::log::Format::kText, "warn");
  chaosd::FaultRegistry registry;
  chaosd::registerBuiltinFaults(registry);
  chaosd::ParseOptions options;
  options.registry = &registry;
  auto parsed = chaosd::parseExperimentText(s.yaml, "scale.yaml", options);
  if (!parsed.ok()) {
    for (const auto& d : parsed.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
    ::_exit(2);
  }
  auto journal = chaosd::openJournal(s.journalPath);
  if (!journal) ::_exit(3);
  Timing timing(s.partitions + s.fills, out);
  chaosd::OwnedRunConfig config;
  config.journal = &*journal;
  config.registry = &registry;
  config.runId = "scale-" + std::to_string(::getpid());
  config.runDir = s.dir + "/" + config.runId;
  config.guardian.executable = s.chaosctl;
  config.guardian.logLevel = "warn";
  config.observer = &timing;
  chaosd::OwnedRun run(*parsed.experiment, std::move(config));
  auto result = run.run();
  timing.marks.exitCode = result ? result->exitCode() : 5;
  timing.marks.processCpu = processCpuMs();
  if (!result) std::fprintf(stderr, "run: %s\n", result.error().describe().c_str());
  (void)!::write(out, &timing.marks, sizeof timing.marks);
  ::_exit(0);
}

pid_t startOwner(const Setup& s, int& readFd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    runOwner(s, fds[1]);
  }
  ::close(fds[1]);
  readFd = fds[0];
  return pid;
}

bool readAll(int fd, void* buffer, size_t size) {
  auto* p = static_cast<char*>(buffer);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

size_t fillerFiles(const std::string& root) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
    if (e.path().filename().string().starts_with(".chaosd-fill-")) ++n;
  }
  return n;
}

// Rules of ours in the namespace: chaosd's tables are named chaosd_*.
bool chaosdTablesIn(const std::string& ns) {
  return sh("ip netns exec " + ns + " nft list tables | grep -q chaosd") == 0;
}

size_t heldInJournal(const std::string& path) {
  auto journal = chaosd::openJournal(path, chaosd::JournalOpen::kExisting);
  if (!journal) return 0;
  auto held = journal->unreverted();
  return held ? held->size() : 0;
}

void benchOwner(const Setup& s) {
  int fd = -1;
  const pid_t pid = startOwner(s, fd);
  char a = 0;
  Marks m;
  const bool ok = readAll(fd, &a, 1) && readAll(fd, &m, sizeof m);
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const int n = s.partitions + s.fills;
  std::printf(
      "== %d faults in one parallel group (%d partitions by port, %d fills), owner "
      "reverts at the deadline\n",
      n, s.partitions, s.fills);
  if (!ok) {
    std::printf("  the run did not complete (applied %d)\n", m.applied);
    return;
  }
  const double applyCpu = m.lastAppliedCpu - m.groupStartCpu;
  const double revertCpu = m.lastRevertedCpu - m.lastAppliedCpu;
  std::printf(
      "  prepare + journal + apply: wall %7.1f ms, engine thread CPU %7.1f ms (%.3f ms "
      "per fault)\n",
      m.lastAppliedWall - m.groupStartWall, applyCpu, applyCpu / n);
  std::printf(
      "  revert (first to last):    wall %7.1f ms, engine thread CPU %7.1f ms (%.3f ms "
      "per fault)\n",
      m.lastRevertedWall - m.firstRevertedWall, revertCpu, revertCpu / n);
  std::printf(
      "  apply + revert CPU: %.1f ms (target: under 1000 ms); the process in all, "
      "run included: %.1f ms; exit code %d\n",
      applyCpu + revertCpu, m.processCpu, m.exitCode);
  std::printf("  left: %zu held in the journal, %zu filler files, chaosd tables: %s\n",
              heldInJournal(s.journalPath), fillerFiles(s.fillRoot),
              chaosdTablesIn(s.ns) ? "YES" : "none");
}

void benchGuardian(const Setup& s) {
  int fd = -1;
  const pid_t pid = startOwner(s, fd);
  char a = 0;
  const bool applied = readAll(fd, &a, 1);
  const auto killedAt = Clock::now();
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd);
  const int n = s.partitions + s.fills;
  std::printf("== the owner SIGKILLed with %d faults applied: the guardian reverts them\n", n);
  if (!applied) {
    std::printf("  the run did not reach every fault applied\n");
    return;
  }
  // Poll the journal every millisecond: its held count falls to zero as the guardian marks
  // each revert.
  double allMarked = -1;
  while (msSince(killedAt) < 30000) {
    if (heldInJournal(s.journalPath) == 0) {
      allMarked = msSince(killedAt);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("  kill -9 to every fault reverted (journal): %.1f ms (target: under 1000 ms)\n",
              allMarked);
  // The guardian removes the run's table after the faults; wait for it (or give up at 10 s).
  const auto t = Clock::now();
  while (chaosdTablesIn(s.ns) && msSince(t) < 10000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("  left: %zu filler files, chaosd tables: %s\n", fillerFiles(s.fillRoot),
              chaosdTablesIn(s.ns) ? "YES" : "none");
}

// The journal's part, on a journal of its own: the intents in one transaction (FULL, as a
// group holding a fill is durable), then the applied and reverted marks one commit per fault
// (how the engine wrote them before) and in one commit per group (markAppliedAll,
// markRevertedAll: how it writes them now), in the same run.
void benchJournal(const Setup& s) {
  const int n = s.partitions + s.fills;
  std::printf("== the journal alone, %d faults\n", n);
  for (const bool batched : {false, true}) {
    const std::string path = s.dir + (batched ? "/journal-batched.db" : "/journal-single.db");
    auto journal = chaosd::openJournal(path);
    chaosd::RunRecord run;
    run.runId = "alone";
    run.experiment = "scale_bench";
    run.ownerPid = ::getpid();
    if (!journal || !journal->beginRun(run)) return;
    std::vector<chaosd::FaultIntent> intents(static_cast<size_t>(n));
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto& f = intents[static_cast<size_t>(i)];
      f.faultId = "alone-" + std::to_string(i);
      f.step = "s" + std::to_string(i);
      f.faultType = i < s.partitions ? "network.partition" : "disk.fill";
      f.undo = {{"faultId", f.faultId}, {"port", kFirstPort + i}, {"pad", std::string(200, 'x')}};
      f.durable = i >= s.partitions;
      ids.push_back(f.faultId);
    }
    const double c0 = processCpuMs();
    const auto t0 = Clock::now();
    (void)journal->recordIntents("alone", intents);
    const double intentsMs = msSince(t0);
    if (batched) {
      (void)journal->markAppliedAll(ids);
    } else {
      for (const auto& id : ids) (void)journal->markApplied(id);
    }
    const double appliedMs = msSince(t0) - intentsMs;
    if (batched) {
      (void)journal->markRevertedAll(ids);
    } else {
      for (const auto& id : ids) (void)journal->markReverted(id);
    }
    const double revertedMs = msSince(t0) - intentsMs - appliedMs;
    const double cpu = processCpuMs() - c0;
    std::printf(
        "  %-22s intents (one transaction, FULL) %6.1f ms; applied marks %6.1f ms; "
        "reverted marks %6.1f ms; CPU %6.1f ms\n",
        batched ? "marks in one commit:" : "marks, a commit each:", intentsMs, appliedMs,
        revertedMs, cpu);
  }
}

void benchPeers(const Setup& s, int iptablesPorts) {
  const std::string exec = "ip netns exec " + s.ns + " ";
  // One nft process loading every rule: the table, two base chains, two rules per port.
  const std::string file = s.dir + "/rules.nft";
  {
    std::ofstream out(file);
    out << "table inet peer {\n chain o { type filter hook output priority 0; }\n"
        << " chain i { type filter hook input priority 0; }\n}\n";
    for (int i = 0; i < s.partitions; ++i) {
      out << "add rule inet peer o oifname \"cscale0\" tcp dport " << kFirstPort + i << " drop\n";
      out << "add rule inet peer i iifname \"cscale0\" tcp sport " << kFirstPort + i << " drop\n";
    }
  }
  auto t = Clock::now();
  int failures = sh(exec + "nft -f " + file);
  const double nftLoad = msSince(t);
  t = Clock::now();
  failures += sh(exec + "nft delete table inet peer");
  const double nftDelete = msSince(t);
  const int ports = std::min(iptablesPorts, s.partitions);
  t = Clock::now();
  for (int i = 0; i < ports; ++i) {
    const std::string p = std::to_string(kFirstPort + i);
    failures += sh(exec + "iptables -A OUTPUT -o cscale0 -p tcp --dport " + p + " -j DROP");
    failures += sh(exec + "iptables -A INPUT -i cscale0 -p tcp --sport " + p + " -j DROP");
  }
  const double iptAdd = msSince(t);
  t = Clock::now();
  for (int i = 0; i < ports; ++i) {
    const std::string p = std::to_string(kFirstPort + i);
    failures += sh(exec + "iptables -D OUTPUT -o cscale0 -p tcp --dport " + p + " -j DROP");
    failures += sh(exec + "iptables -D INPUT -i cscale0 -p tcp --sport " + p + " -j DROP");
  }
  const double iptDel = msSince(t);
  const int fills = std::min(iptablesPorts, s.fills);
  t = Clock::now();
  for (int i = 0; i < fills; ++i) {
    failures += sh("fallocate -l 4K " + s.fillRoot + "/d" + std::to_string(i) + "/peer-fill");
  }
  const double fallocate = msSince(t);
  t = Clock::now();
  for (int i = 0; i < fills; ++i) {
    failures += sh("rm -f " + s.fillRoot + "/d" + std::to_string(i) + "/peer-fill");
  }
  const double rm = msSince(t);
  std::printf("== the peers' mechanisms, same rules\n");
  std::printf("  one `nft -f` process, %d rules: load %.1f ms, delete the table %.1f ms\n",
              2 * s.partitions, nftLoad, nftDelete);
  if (ports > 0) {
    const double per = (iptAdd + iptDel) / ports;
    std::printf(
        "  iptables processes, %d ports (4 per port): %.1f + %.1f ms, %.2f ms per fault; "
        "for %d: %.0f ms\n",
        ports, iptAdd, iptDel, per, s.partitions, per * s.partitions);
  }
  if (fills > 0) {
    const double per = (fallocate + rm) / fills;
    std::printf(
        "  fallocate + rm processes, %d fills: %.1f + %.1f ms, %.2f ms per fault; for "
        "%d: %.0f ms\n",
        fills, fallocate, rm, per, s.fills, per * s.fills);
  }
  if (failures != 0) std::printf("  %d peer commands failed\n", failures);
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "scale_bench needs root (it creates a network namespace)\n");
    return 1;
  }
  Setup s;
  s.partitions = argc > 1 ? std::atoi(argv[1]) : 500;
  s.fills = argc > 2 ? std::atoi(argv[2]) : 500;
  const int iptablesPorts = argc > 3 ? std::atoi(argv[3]) : 100;
  const char* env = std::getenv("CHAOSCTL");
  s.chaosctl =
      env != nullptr
          ? env
          : (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "chaosctl").string();
  if (!fs::exists(s.chaosctl)) {
    std::fprintf(stderr, "no chaosctl at %s (set CHAOSCTL)\n", s.chaosctl.c_str());
    return 1;
  }
  s.ns = "chaosd-scale-" + std::to_string(::getpid());
  if (sh("ip netns add " + s.ns) != 0 ||
      sh("ip -n " + s.ns + " link add cscale0 type veth peer name cscale1") != 0 ||
      sh("ip -n " + s.ns + " link set cscale0 up") != 0 ||
      sh("ip -n " + s.ns + " link set cscale1 up") != 0) {
    std::fprintf(stderr, "cannot set up namespace %s\n", s.ns.c_str());
    sh("ip netns del " + s.ns);
    return 1;
  }
  std::string tmpl = "/dev/shm/chaosd-scale-XXXXXX";
  s.dir = ::mkdtemp(tmpl.data());
  s.fillRoot = s.dir + "/fills";
  for (int i = 0; i < s.fills; ++i) fs::create_directories(s.fillRoot + "/d" + std::to_string(i));
  s.journalPath = s.dir + "/journal.db";
  s.yaml = experimentYaml(s.ns, s.fillRoot, s.partitions, s.fills);

  benchOwner(s);
  benchGuardian(s);
  benchJournal(s);
  benchPeers(s, iptablesPorts);

  sh("ip netns del " + s.ns);
  std::error_code ec;
  fs::remove_all(s.dir, ec);
  return 0;
}
