// process_bench: the process-fault paths against the peers' mechanisms, in the same run.
//
//  1. Decision to reaped: a target chosen, killed, and reaped by its parent. Our path (pidfd
//     opened, start time re-read to prove the pid was not reused, pidfd_send_signal) against
//     a bare kill(2), a `kill -9 PID` process (what shell-based tools run) and a
//     `pkill -9 -f PATTERN` process (what ChaosBlade-style tools run). Target: ours within
//     1.5x of the bare kill(2).
//  2. Selection among 10,000 processes in a fixture /proc tree: scan, match, protect, choose.
//     Target: under 100 ms. Also the same with a full scan (every /proc file of every
//     process), the way the table was read before the scan learned to read only what the
//     selector needs.
//
// Run as root or not; prints medians and ratios. `process_bench [N]` (default 200 kills each).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "chaosd/base/ProcessTable.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/process/Selection.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using chaosd::Fd;

double usSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// This process's CPU time: on a machine shared with other builds the wall time mostly measures
// them, the CPU time only us.
double cpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

pid_t spawnArgv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

void reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

// A target whose command line is unique, so pkill -f finds exactly it. Waits until it has
// exec'd and sleeps (state S), so every method kills the same quiet process.
pid_t startTarget(int i) {
  const std::string marker = std::to_string(100000 + i) + ".5";
  pid_t pid = spawnArgv({"sleep", marker});
  for (int tries = 0; tries < 20000; ++tries) {
    std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(cmd)), {});
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string st((std::istreambuf_iterator<char>(stat)), {});
    const size_t close = st.rfind(')');
    if (text.find(marker) != std::string::npos && close != std::string::npos &&
        close + 2 < st.size() && st[close + 2] == 'S') {
      break;
    }
    ::usleep(100);
  }
  ::usleep(500);  // let it settle into its nanosleep
  return pid;
}

// The decision names the target by pid and start time (what prepare() journals); the timer
// starts once it is made.
using KillMethod = std::function<bool(pid_t pid, uint64_t startTime, int i)>;

std::vector<double> measure(int n, const KillMethod& method) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = startTarget(i);
    if (pid <= 0) continue;
    auto start = chaosd::readStartTime(pid);
    if (!start) continue;
    const auto t0 = Clock::now();
    const bool ok = method(pid, *start, i);
    reap(pid);
    if (ok) out.push_back(usSince(t0));
  }
  return out;
}

bool ourPath(pid_t pid, uint64_t startTime, int) {
  chaosd::Victim v{pid, startTime, "sleep"};
  // pidfd first, then the start time again: the pidfd is proven to hold the decided process.
  auto reached = chaosd::reachVictim(v);
  if (!reached || reached->state != chaosd::VictimState::kLive) return false;
  return chaosd::signalVictim(reached->pidfd, SIGKILL, v).ok();
}

bool bareKill(pid_t pid, uint64_t, int) { return ::kill(pid, SIGKILL) == 0; }

bool killProcess(pid_t pid, uint64_t, int) {
  pid_t k = spawnArgv({"kill", "-9", std::to_string(pid)});
  if (k <= 0) return false;
  reap(k);
  return true;
}

bool pkillProcess(pid_t, uint64_t, int i) {
  pid_t k = spawnArgv({"pkill", "-9", "-f", "^sleep " + std::to_string(100000 + i) + "\\.5$"});
  if (k <= 0) return false;
  reap(k);
  return true;
}

void benchKill(int n) {
  std::printf("== decision to reaped, %d targets each (median, microseconds)\n", n);
  const auto ours = median(measure(n, ourPath));
  const auto bare = median(measure(n, bareKill));
  const auto kill = median(measure(n, killProcess));
  const auto pkill = median(measure(n, pkillProcess));
  std::printf("  chaosd (pidfd_open + start-time check + pidfd_send_signal): %8.1f us\n", ours);
  std::printf("  bare kill(2) + waitpid:                                     %8.1f us\n", bare);
  std::printf("  `kill -9 PID` process:                                      %8.1f us\n", kill);
  std::printf("  `pkill -9 -f PATTERN` process:                              %8.1f us\n", pkill);
  std::printf("  ratio chaosd / bare kill(2): %.2fx (target <= 1.5x)\n", ours / bare);
  std::printf("  ratio kill process / chaosd: %.1fx; pkill process / chaosd: %.1fx\n", kill / ours,
              pkill / ours);
}

void writeFixture(const std::string& root, int count) {
  for (int i = 0; i < count; ++i) {
    const int pid = 1000 + i;
    const std::string dir = root + "/" + std::to_string(pid);
    std::filesystem::create_directory(dir);
    std::ofstream(dir + "/stat") << pid << " (worker-" << i % 100 << ") S 1 " << pid << " " << pid
                                 << " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " << 100000 + pid
                                 << " 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0\n";
    std::ofstream(dir + "/status")
        << "Name:\tworker\nPid:\t" << pid << "\nPPid:\t1\nUid:\t1000\t1000\t1000\t1000\n";
    std::string cmd = "/usr/bin/worker";
    cmd += '\0';
    cmd += "--id";
    cmd += '\0';
    cmd += std::to_string(i);
    cmd += '\0';
    std::ofstream(dir + "/cmdline", std::ios::binary) << cmd;
    std::ofstream(dir + "/cgroup") << "0::/system.slice/pool-" << i % 10 << ".service\n";
  }
}

void benchSelection() {
  constexpr int kCount = 10000;
  const std::string root = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string dir = root + "/chaosd-bench-proc-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return;
  writeFixture(dir, kCount);
  chaosd::ProtectionContext protection = chaosd::defaultProtection();
  chaosd::Selection one;
  one.mode = chaosd::SelectionMode::kOne;

  // Median wall and CPU milliseconds of 7 selections.
  struct Cost {
    double wall = 0, cpu = 0;
  };
  auto measure = [&](const std::function<void()>& select) {
    std::vector<double> wall, cpu;
    for (int r = 0; r < 7; ++r) {
      const auto t0 = Clock::now();
      const double c0 = cpuMs();
      select();
      wall.push_back(usSince(t0) / 1000.0);
      cpu.push_back(cpuMs() - c0);
    }
    return Cost{median(wall), median(cpu)};
  };
  auto run = [&](const chaosd::ProcessSelector& sel) {
    return measure([&] {
      auto c = chaosd::findCandidates(sel, protection, dir);
      if (!c) {
        std::printf("  error: %s\n", c.error().describe().c_str());
        return;
      }
      (void)chaosd::selectProcesses(c->eligible, one, 42);
    });
  };
  auto fullScan = [&](const chaosd::ProcessSelector& sel) {
    return measure([&] {
      auto t = chaosd::ProcessTable::scan(dir, chaosd::kScanAll);
      auto m = t->match(sel);
      (void)chaosd::selectProcesses(*m, one, 42);
    });
  };
  chaosd::ProcessSelector byName;
  byName.name = "worker-7";
  chaosd::ProcessSelector byCmdline;
  byCmdline.cmdline = "--id 4[0-9]{3}$";
  chaosd::ProcessSelector byCgroupUser;
  byCgroupUser.cgroup = "/system.slice/pool-3.service";
  byCgroupUser.user = "1000";
  std::printf("== selection among %d processes (fixture /proc on %s; median of 7, ms)\n", kCount,
              root.c_str());
  for (auto& [label, sel] : std::vector<std::pair<std::string, chaosd::ProcessSelector>>{
           {"name", byName}, {"cmdline regex", byCmdline}, {"cgroup + user", byCgroupUser}}) {
    const Cost ours = run(sel);
    const Cost full = fullScan(sel);
    std::printf(
        "  by %-14s wall %7.1f ms, CPU %7.1f ms (full scan: wall %7.1f, CPU %7.1f ms, "
        "%.1fx) %s\n",
        (label + ":").c_str(), ours.wall, ours.cpu, full.wall, full.cpu, full.cpu / ours.cpu,
        ours.wall < 100.0 ? "under 100 ms" : "OVER 100 ms");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  benchKill(n);
  benchSelection();
  return 0;
}
