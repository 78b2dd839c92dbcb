// cpu.stress and memory.stress against stress-ng, the mechanism Chaos Mesh's chaosd and Litmus
// spawn, measured the same way in the same run:
//   - CPU: the load achieved against the load asked, 25/50/75/100% on 1 and 2 workers, from the
//     kernel's accounting (cpu.stat usage_usec of a cgroup holding only the load) over a
//     window after a warm-up;
//   - memory: time until 1 GiB is resident, and until it is released after the kill;
//   - revert: from the revert call until the load is gone, 20 runs, median and max.
// Root, cgroup v2 and stress-ng (scripts/bootstrap installs it). Prints a table and ratios.
//
//   build/tests/stress_bench [--seconds 3] [--runs 20]
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/ProcessKernel.h"
#include "experiments/model/Experiment.h"
#include "injectors/resource/StressInjector.h"

extern char** environ;

namespace {

using namespace chaosd;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint64_t kGiB = 1ULL << 30;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU share per worker in `cg` over `seconds`, after `warmup`.
double measureShare(const std::string& cg, int workers, double warmup, double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  auto u0 = cgroupCpuUsageUsec(cg);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  auto u1 = cgroupCpuUsageUsec(cg);
  double wall = secondsSince(t0);
  if (!u0 || !u1) return -1;
  return static_cast<double>(*u1 - *u0) / 1e6 / wall / workers;
}

FaultRequest request(const std::string& id, const char* type, nlohmann::json args) {
  FaultRequest r;
  r.runId = "bench";
  r.faultId = id;
  r.stepName = "bench";
  r.faultType = type;
  r.args = std::move(args);
  r.duration = 600s;
  return r;
}

// stress-ng with `args`, started inside `cg` (it is moved there before it forks its workers:
// it is spawned stopped by a shell that waits for the move).
pid_t spawnInCgroup(const std::string& cg, const std::vector<std::string>& args) {
  std::string cmd = "kill -STOP $$; exec";
  for (const auto& a : args) cmd += " " + a;
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    return -1;
  }
  int st = 0;
  ::waitpid(pid, &st, WUNTRACED);  // stopped itself
  if (!moveToCgroup(cg, pid)) return -1;
  ::kill(pid, SIGCONT);
  return pid;
}

// Sum of RssAnon of every process in a cgroup.
uint64_t cgroupRss(const std::string& cg) {
  uint64_t total = 0;
  auto procs = cgroupProcs(cg);
  if (!procs) return 0;
  for (pid_t pid : *procs) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("RssAnon:", 0) == 0) {
        std::istringstream v(line.substr(8));
        uint64_t kb = 0;
        v >> kb;
        total += kb * 1024;
      }
    }
  }
  return total;
}

bool stressNgPresent() { return ::access("/usr/bin/stress-ng", X_OK) == 0; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int runs = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[i + 1]);
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "stress_bench: needs root\n");
    return 2;
  }
  auto mount = cgroup2Mount();
  if (!mount) {
    std::fprintf(stderr, "stress_bench: %s\n", mount.error().describe().c_str());
    return 2;
  }
  const bool peer = stressNgPresent();
  if (!peer) std::fprintf(stderr, "stress_bench: no /usr/bin/stress-ng: chaosd only\n");
  const std::string peerCg = *mount + "/chaosd-bench-stress-ng";
  auto kernel = systemProcessKernel();

  std::printf("CPU load achieved (cpu.stat over %.1f s after 1 s), %d usable CPU(s)\n", seconds,
              usableCpus());
  std::printf("%-8s %-8s %10s %10s %12s %12s\n", "workers", "asked", "chaosd", "stress-ng",
              "chaosd err", "stress-ng err");
  double worstChaosd = 0, worstPeer = 0;
  int n = 0;
  for (int workers : {1, 2}) {
    for (int load : {25, 50, 75, 100}) {
      const std::string id = "bench-cpu-" + std::to_string(n++);
      StressInjector injector(StressInjector::Kind::kCpu, kernel);
      auto prepared = injector.prepare(request(
          id, "cpu.stress", {{"load", load / 100.0}, {"workers", std::to_string(workers)}}));
      if (!prepared) {
        std::fprintf(stderr, "%s\n", prepared.error().describe().c_str());
        return 1;
      }
      if (auto a = injector.apply(id, prepared->undo); !a) {
        std::fprintf(stderr, "%s\n", a.error().describe().c_str());
        return 1;
      }
      const std::string cg = prepared->undo["cgroups"][0];
      const double ours = measureShare(cg, workers, 1.0, seconds);
      (void)injector.revert(id, prepared->undo);

      double theirs = -1;
      if (peer) {
        (void)makeCgroup(peerCg);
        pid_t pid = spawnInCgroup(peerCg, {"/usr/bin/stress-ng", "--cpu", std::to_string(workers),
                                           "--cpu-load", std::to_string(load), "--quiet"});
        if (pid > 0) {
          theirs = measureShare(peerCg, workers, 1.0, seconds);
          ::kill(pid, SIGTERM);
          ::waitpid(pid, nullptr, 0);
        }
        (void)killAndRemoveCgroup(peerCg, 5000ms);
      }
      const double errOurs = std::abs(ours * 100 - load);
      const double errTheirs = theirs < 0 ? 0 : std::abs(theirs * 100 - load);
      worstChaosd = std::max(worstChaosd, errOurs);
      worstPeer = std::max(worstPeer, errTheirs);
      const std::string asked = std::to_string(load) + "%";
      std::printf("%-8d %-8s %9.1f%% %9.1f%% %9.1f pp %10.1f pp\n", workers, asked.c_str(),
                  ours * 100, theirs * 100, errOurs, errTheirs);
    }
  }
  std::printf("worst error: chaosd %.1f pp, stress-ng %.1f pp\n\n", worstChaosd, worstPeer);

  // Memory: 1 GiB resident, then released.
  {
    const std::string id = "bench-mem";
    StressInjector injector(StressInjector::Kind::kMemory, kernel);
    auto prepared = injector.prepare(request(id, "memory.stress", {{"size", kGiB}}));
    if (!prepared) {
      std::fprintf(stderr, "%s\n", prepared.error().describe().c_str());
      return 1;
    }
    const std::string cg = prepared->undo["cgroups"][0];
    auto t0 = Clock::now();
    (void)injector.apply(id, prepared->undo);
    while (cgroupRss(cg) < kGiB && secondsSince(t0) < 60) std::this_thread::sleep_for(1ms);
    const double oursUp = secondsSince(t0);
    auto t1 = Clock::now();
    (void)injector.revert(id, prepared->undo);
    const double oursDown = secondsSince(t1);

    double theirsUp = -1, theirsDown = -1;
    if (peer) {
      (void)makeCgroup(peerCg);
      auto t2 = Clock::now();
      pid_t pid = spawnInCgroup(peerCg, {"/usr/bin/stress-ng", "--vm", "1", "--vm-bytes", "1g",
                                         "--vm-keep", "--vm-hang", "0", "--quiet"});
      while (pid > 0 && cgroupRss(peerCg) < kGiB && secondsSince(t2) < 60) {
        std::this_thread::sleep_for(1ms);
      }
      theirsUp = secondsSince(t2);
      auto t3 = Clock::now();
      (void)killAndRemoveCgroup(peerCg, 10000ms);
      theirsDown = secondsSince(t3);
      if (pid > 0) ::waitpid(pid, nullptr, 0);
    }
    std::printf(
        "Memory, 1 GiB: resident after %.0f ms (stress-ng --vm %.0f ms, ratio %.2f); "
        "released %.0f ms after the revert call (stress-ng, killed as a cgroup: %.0f ms)\n\n",
        oursUp * 1e3, theirsUp * 1e3, theirsUp > 0 ? oursUp / theirsUp : 0, oursDown * 1e3,
        theirsDown * 1e3);
  }

  // Revert: from the call until the load is gone (the cgroup empty and removed).
  std::vector<double> cpuRevert, memRevert;
  for (int i = 0; i < runs; ++i) {
    for (bool cpu : {true, false}) {
      const std::string id = std::string("bench-rv-") + (cpu ? "c" : "m") + std::to_string(i);
      StressInjector injector(cpu ? StressInjector::Kind::kCpu : StressInjector::Kind::kMemory,
                              kernel);
      auto prepared =
          injector.prepare(cpu ? request(id, "cpu.stress", {{"load", 0.5}, {"workers", "2"}})
                               : request(id, "memory.stress", {{"size", 256ULL << 20}}));
      if (!prepared || !injector.apply(id, prepared->undo)) return 1;
      if (!cpu) {
        while (injector.progress(id)->memoryState != StressShared::kHolding) {
          std::this_thread::sleep_for(1ms);
        }
      } else {
        std::this_thread::sleep_for(200ms);
      }
      auto t = Clock::now();
      (void)injector.revert(id, prepared->undo);
      (cpu ? cpuRevert : memRevert).push_back(secondsSince(t) * 1e3);
    }
  }
  std::printf(
      "Revert until the load is gone, %d runs: cpu.stress (2 workers) median %.2f ms, max "
      "%.2f ms; memory.stress (256 MiB held) median %.2f ms, max %.2f ms\n",
      runs, median(cpuRevert), *std::max_element(cpuRevert.begin(), cpuRevert.end()),
      median(memRevert), *std::max_element(memRevert.begin(), memRevert.end()));

  // The owner's SIGKILL: the load ends by itself (its lifeline closes), before any guardian.
  std::vector<double> killGone;
  for (int i = 0; i < runs; ++i) {
    const std::string id = "bench-kill-" + std::to_string(i);
    StressInjector planner(StressInjector::Kind::kCpu, kernel);
    auto prepared = planner.prepare(request(id, "cpu.stress", {{"load", 0.5}, {"workers", "2"}}));
    if (!prepared) return 1;
    const std::string cg = prepared->undo["cgroups"][0];
    int ready[2];
    if (::pipe(ready) != 0) return 1;
    pid_t owner = ::fork();
    if (owner == 0) {
      ::close(ready[0]);
      StressInjector injector(StressInjector::Kind::kCpu, kernel);
      char c = injector.apply(id, prepared->undo).ok() ? 'y' : 'n';
      if (::write(ready[1], &c, 1) != 1) ::_exit(2);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    if (::read(ready[0], &c, 1) != 1 || c != 'y') return 1;
    ::close(ready[0]);
    std::this_thread::sleep_for(200ms);  // into the duty cycle
    auto t = Clock::now();
    ::kill(owner, SIGKILL);
    while (secondsSince(t) < 10) {
      auto procs = cgroupProcs(cg);
      if (!procs || procs->empty()) break;
      std::this_thread::sleep_for(100us);
    }
    killGone.push_back(secondsSince(t) * 1e3);
    ::waitpid(owner, nullptr, 0);
    StressInjector guardian(StressInjector::Kind::kCpu, kernel);
    (void)guardian.revert(id, prepared->undo);
  }
  std::printf(
      "Owner SIGKILLed until its load is gone (no guardian), %d runs: cpu.stress (2 "
      "workers at 50%%) median %.2f ms, max %.2f ms\n",
      runs, median(killGone), *std::max_element(killGone.begin(), killGone.end()));
  return 0;
}
