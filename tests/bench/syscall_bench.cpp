// syscall_bench: what seccomp user notification costs a target, against strace, same run.
//
//  1. 1,000,000 one-byte writes to /dev/null by a target whose filter sends openat (not
//     write) to our supervisor, against the same target with no filter. Target: <= 1.05x.
//  2. Per intercepted call, failed with EIO: our supervisor (filter on write, a
//     syscall.error rule) against `strace -e trace=write -e inject=write:error=EIO` (ptrace)
//     on the same workload. Target: ours at least 4x cheaper.
//
// `syscall_bench [N]` (default 1000000). The target is this program run with --target.
#include <fcntl.h>
#include <seccomp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "injectors/process/ExecTarget.h"
#include "injectors/syscall/SyscallSupervisor.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// The target: N one-byte writes to `sink` (a file, or /dev/null); the loop's nanoseconds go
// to `result` with pwrite (never intercepted here).
int target(long n, const char* result, const char* sink) {
  const int fd = ::open(sink, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) (void)!::write(fd, "x", 1);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  const int r = ::open(result, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const std::string text = std::to_string(ns);
  (void)!::pwrite(r, text.data(), text.size(), 0);
  ::close(r);
  return 0;
}

std::string self() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

double readResult(const std::string& path) {
  std::ifstream in(path);
  double ns = 0;
  in >> ns;
  return ns;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const std::string kResult = "/tmp/chaosd-syscall-bench.result";

const std::string kFile = "/dev/shm/chaosd-syscall-bench.sink";
std::string sink = kFile;

std::vector<std::string> targetArgv(long n) {
  return {self(), "--target", std::to_string(n), kResult, sink};
}

// Plain: posix_spawn, optionally under strace.
double runPlain(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int st = 0;
  ::waitpid(pid, &st, 0);
  return readResult(kResult);
}

// Under our filter (and a rule when `fail` is set) for the given syscalls.
double runOurs(long n, const std::vector<std::string>& syscalls, bool failWrites) {
  chaosd::ExecSpec spec;
  spec.argv = targetArgv(n);
  chaosd::ExecOptions options;
  std::set<int> numbers;
  for (const auto& s : syscalls) numbers.insert(seccomp_syscall_resolve_name(s.c_str()));
  options.notifySyscalls.assign(numbers.begin(), numbers.end());
  auto started = chaosd::startExec(spec, "", nullptr, options);
  if (!started) {
    std::fprintf(stderr, "start: %s\n", started.error().describe().c_str());
    return -1;
  }
  const pid_t pid = started->pid;
  chaosd::SyscallSupervisor sup(pid, started->startTime, std::move(started->listener));
  sup.setFiltered(numbers);
  if (failWrites) {
    chaosd::SyscallRule rule;
    rule.faultId = "bench";
    rule.syscalls = {seccomp_syscall_resolve_name("write")};
    rule.errnoValue = EIO;
    (void)sup.addRule(rule);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return readResult(kResult);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--target") == 0) {
    return target(std::atol(argv[2]), argv[3], argv[4]);
  }
  const long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  const long m = 20000;  // intercepted calls per run
  constexpr int kRuns = 5;

  std::vector<double> bare, openat, bareNull, openatNull, ours, strace, bareM;
  for (int i = 0; i < kRuns; ++i) {
    sink = kFile;
    bare.push_back(runPlain(targetArgv(n)));
    openat.push_back(runOurs(n, {"openat"}, false));
    sink = "/dev/null";
    bareNull.push_back(runPlain(targetArgv(n)));
    openatNull.push_back(runOurs(n, {"openat"}, false));
    bareM.push_back(runPlain(targetArgv(m)));
    ours.push_back(runOurs(m, {"write"}, true));
    strace.push_back(
        runPlain({"strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=write", "-e",
                  "inject=write:error=EIO", self(), "--target", std::to_string(m), kResult, sink}));
  }
  std::remove(kResult.c_str());
  std::remove(kFile.c_str());
  const double b = median(bare), o = median(openat);
  std::printf("== %ld one-byte writes to a file on tmpfs, median of %d runs\n", n, kRuns);
  std::printf("  no filter:                           %8.1f ms (%.0f ns per write)\n", b / 1e6,
              b / static_cast<double>(n));
  std::printf("  filter on openat only (not write):   %8.1f ms (%.0f ns per write)\n", o / 1e6,
              o / static_cast<double>(n));
  std::printf("  ratio: %.3fx (target <= 1.05x)\n", o / b);
  const double bn = median(bareNull), on = median(openatNull);
  std::printf("== the same to /dev/null (the cheapest write there is: the worst case)\n");
  std::printf("  no filter %.0f ns, filter on openat %.0f ns per write: %.3fx\n",
              bn / static_cast<double>(n), on / static_cast<double>(n), on / bn);
  const double base = median(bareM) / static_cast<double>(m);
  const double oursPer = median(ours) / static_cast<double>(m) - base;
  const double stracePer = median(strace) / static_cast<double>(m) - base;
  std::printf("== each of %ld writes failed with EIO, cost per call beyond a bare write\n", m);
  std::printf("  chaosd (seccomp user notification):  %8.2f us\n", oursPer / 1000);
  std::printf("  strace -e inject=write:error=EIO:    %8.2f us\n", stracePer / 1000);
  std::printf("  ratio strace / chaosd: %.1fx (target >= 4x)\n", stracePer / oursPer);
  return 0;
}
