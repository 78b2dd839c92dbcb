#pragma once

// FakeProcesses: a process table in memory behind the ProcessKernel interface, so the process
// injectors' apply, revert and failure paths run without root and without a real victim.
//
// What it models: processes with a pid, a start time (clock ticks on a boot clock the test
// moves), a state letter, a process group and a parent. Signals act as the kernel's default
// actions do: SIGKILL ends a process; SIGTERM, SIGINT, SIGHUP, ... end it unless it handles
// them; SIGSTOP stops it (T) and SIGCONT resumes it. An ended process is reaped at once by its
// parent, or stays a zombie (Z) until reapChild. A pid freed can be taken by a new process
// with a later start time. A supervisor restarts a process of a given name some time after it
// died. A pidfd is an eventfd, readable once its process has exited, so the injectors poll it
// with their other descriptors exactly as they poll a real pidfd. The Nth call of a kind
// (scan, pidfd open, signal, read) can fail with a given errno.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chaosd/base/ProcessKernel.h"

namespace chaosd {

class FakeProcesses final : public ProcessKernel {
 public:
  enum class Call { kScan, kRead, kOpenPidfd, kSignal };

  struct Spawn {
    std::string comm{};
    pid_t pid = 0;   // 0: the next free pid
    pid_t ppid = 1;  // 1: init reaps it at once when it dies
    pid_t pgid = 0;  // 0: a group of its own
    char state = 'S';
    std::vector<std::string> cmdline{};  // empty: {comm}
    uid_t uid = 1000;
    std::string cgroup = "/test.slice";
    std::set<int> handles{};    // signals it catches instead of dying of them
    bool leavesZombie = false;  // its parent does not reap it: a zombie until reapChild
    bool stopsLate = false;     // in uninterruptible sleep (D): a stop waits for wake()
  };

  static constexpr int64_t kBootStartNs = 1000LL * 1'000'000'000;  // "1000 s after boot"

  // ---- the test's side: building and changing the table ----------------------------------

  pid_t spawn(Spawn s) {
    std::lock_guard lock(mutex_);
    return spawnLocked(std::move(s), nowNs_);
  }
  // (const char*: a braced Spawn must never read as a string)
  pid_t spawn(const char* comm) { return spawn(Spawn{.comm = comm}); }

  // A new process takes `pid`, which must be free (its old holder reaped), with a start time
  // later than any process before it: what the kernel does when pids wrap.
  pid_t reusePid(pid_t pid, const std::string& comm) {
    std::lock_guard lock(mutex_);
    nowNs_ += nsPerTick();  // a later tick than the pid's previous holder
    return spawnLocked(Spawn{.comm = comm, .pid = pid}, nowNs_);
  }

  // The process execs another program: a new command, the same pid and start time.
  void exec(pid_t pid, const std::string& comm) {
    std::lock_guard lock(mutex_);
    if (auto* p = findLocked(pid)) {
      p->info.comm = comm;
      p->info.cmdline = {comm};
      p->info.commandLine = comm;
    }
  }
  // Someone else ends the process (SIGKILL outside the injector's view).
  void killBySomeoneElse(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (auto* p = findLocked(pid)) exitLocked(*p);
  }
  // Someone else stops it (a SIGSTOP from a shell, a debugger): state T.
  void stopBySomeoneElse(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (auto* p = findLocked(pid); p != nullptr && p->info.state != 'Z') p->info.state = 'T';
  }
  // A tracer holds it stopped (t): SIGCONT does not resume it.
  void traceStop(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (auto* p = findLocked(pid)) p->info.state = 't';
  }
  // A process in uninterruptible sleep returns from its call: a pending stop takes effect.
  void wake(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (auto* p = findLocked(pid)) {
      p->stopsLate = false;
      p->info.state = p->stopPending ? 'T' : 'S';
      p->stopPending = false;
    }
  }
  // When a process named `comm` dies, a supervisor (pid `supervisor`) starts a new one
  // `after` later on the boot clock (advance() makes it happen).
  void supervise(const std::string& comm, std::chrono::nanoseconds after, pid_t supervisor = 1) {
    std::lock_guard lock(mutex_);
    supervised_[comm] = {after, supervisor};
  }
  // Moves the boot clock; restarts that fall due start with the start time they fell due at.
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mutex_);
    nowNs_ += d.count();
    std::vector<Restart> due;
    std::erase_if(restarts_, [&](const Restart& r) {
      if (r.atNs > nowNs_) return false;
      due.push_back(r);
      return true;
    });
    for (const Restart& r : due) {
      restarted_.push_back(spawnLocked(Spawn{.comm = r.comm, .ppid = r.supervisor}, r.atNs));
    }
  }
  // The `nth` call of this kind from now (1: the next) fails with `err`; with `andAfter`,
  // every later one too.
  void failNth(Call call, int nth, int err, bool andAfter = false) {
    std::lock_guard lock(mutex_);
    failures_.push_back(Failure{call, calls_[call] + nth, err, andAfter});
  }
  void clearFailures() {
    std::lock_guard lock(mutex_);
    failures_.clear();
  }

  // ---- the test's side: looking -------------------------------------------------------------

  // The process holding `pid` now (a zombie too), or nullopt.
  std::optional<ProcessInfo> process(pid_t pid) const {
    std::lock_guard lock(mutex_);
    auto it = procs_.find(pid);
    if (it == procs_.end()) return std::nullopt;
    return it->second.info;
  }
  char state(pid_t pid) const {
    auto p = process(pid);
    return p ? p->state : '-';  // '-': no such process
  }
  bool alive(pid_t pid) const {
    char s = state(pid);
    return s != '-' && s != 'Z';
  }
  // Every signal sent through a pidfd, in order: (pid, signal).
  std::vector<std::pair<pid_t, int>> signals() const {
    std::lock_guard lock(mutex_);
    return signals_;
  }
  std::vector<pid_t> signalledWith(int signal) const {
    std::vector<pid_t> out;
    for (const auto& [pid, sig] : signals()) {
      if (sig == signal) out.push_back(pid);
    }
    return out;
  }
  int calls(Call call) const {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(call);
    return it == calls_.end() ? 0 : it->second;
  }
  std::vector<pid_t> restarted() const {
    std::lock_guard lock(mutex_);
    return restarted_;
  }
  std::vector<pid_t> reaped() const {
    std::lock_guard lock(mutex_);
    return reaped_;
  }
  static int64_t nsPerTick() { return 1'000'000'000 / std::max<long>(1, ::sysconf(_SC_CLK_TCK)); }

  // ---- ProcessKernel -------------------------------------------------------------------------

  Result<ProcessTable> scan(unsigned fields, const ProcessSelector*) override {
    std::lock_guard lock(mutex_);
    if (int err = failing(Call::kScan)) return Error::fromErrno("opening /fake/proc", err);
    std::vector<ProcessInfo> all;
    for (const auto& [pid, p] : procs_) all.push_back(p.info);
    return ProcessTable::fromProcesses(std::move(all), fields, "/fake/proc");
  }
  std::set<pid_t> listPids() override {
    std::lock_guard lock(mutex_);
    std::set<pid_t> pids;
    for (const auto& [pid, p] : procs_) pids.insert(pid);
    return pids;
  }
  Result<ProcessInfo> readProcess(pid_t pid) override {
    std::lock_guard lock(mutex_);
    if (int err = failing(Call::kRead)) return Error::fromErrno("reading /fake/proc", err);
    auto* p = findLocked(pid);
    if (p == nullptr)
      return Error(ErrorCode::kNotFound, "no process " + std::to_string(pid), ESRCH);
    return p->info;
  }
  Result<uint64_t> readStartTime(pid_t pid) override {
    auto info = readProcess(pid);
    if (!info) return std::move(info).error();
    return info->startTime;
  }
  Result<Fd> openPidfd(pid_t pid) override {
    std::lock_guard lock(mutex_);
    if (int err = failing(Call::kOpenPidfd)) return Error::fromErrno("pidfd_open", err);
    auto* p = findLocked(pid);
    if (p == nullptr) return Error::fromErrno("pidfd_open", ESRCH);
    // The caller's pidfd shares the process's eventfd: readable once it exits.
    Fd fd(::fcntl(p->exitEvent.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return Error::fromErrno("pidfd_open", errno);
    pidfds_[fd.get()] = {pid, p->info.startTime};
    return fd;
  }
  Result<void> sendSignal(const Fd& pidfd, int signal) override {
    std::lock_guard lock(mutex_);
    if (int err = failing(Call::kSignal)) return Error::fromErrno("pidfd_send_signal", err);
    auto it = pidfds_.find(pidfd.get());
    if (it == pidfds_.end()) return Error::fromErrno("pidfd_send_signal", EBADF);
    auto* p = findLocked(it->second.first);
    // Reaped (or the pid now someone else's): the pidfd's process is gone.
    if (p == nullptr || p->info.startTime != it->second.second) {
      return Error::fromErrno("pidfd_send_signal", ESRCH);
    }
    signals_.emplace_back(p->info.pid, signal);
    deliverLocked(*p, signal);
    return success();
  }
  bool hasExited(const Fd& pidfd) override {
    return SystemProcessKernel().hasExited(pidfd);  // the same poll as a real pidfd's
  }
  void reapChild(pid_t pid) override {
    std::lock_guard lock(mutex_);
    auto it = procs_.find(pid);
    if (it == procs_.end() || it->second.info.state != 'Z') return;
    reaped_.push_back(pid);
    procs_.erase(it);
  }
  int64_t bootTimeNs() override {
    std::lock_guard lock(mutex_);
    return nowNs_;
  }

 private:
  struct Proc {
    ProcessInfo info;
    std::set<int> handles;
    bool leavesZombie = false;
    bool stopsLate = false;
    bool stopPending = false;
    bool termPending = false;  // a fatal signal that waits for SIGCONT
    Fd exitEvent;
  };
  struct Restart {
    std::string comm{};
    int64_t atNs = 0;
    pid_t supervisor = 1;
  };
  struct Failure {
    Call call;
    int at = 0;
    int err = 0;
    bool andAfter = false;
  };

  Proc* findLocked(pid_t pid) {
    auto it = procs_.find(pid);
    return it == procs_.end() ? nullptr : &it->second;
  }

  // Counts the call; the errno it must fail with, or 0.
  int failing(Call call) {
    const int n = ++calls_[call];
    for (const Failure& f : failures_) {
      if (f.call == call && (n == f.at || (f.andAfter && n > f.at))) return f.err;
    }
    return 0;
  }

  pid_t spawnLocked(Spawn s, int64_t atNs) {
    pid_t pid = s.pid;
    if (pid == 0) {
      while (procs_.contains(nextPid_) || nextPid_ == ::getpid()) ++nextPid_;
      pid = nextPid_++;
    }
    Proc p;
    p.info.pid = pid;
    p.info.ppid = s.ppid;
    p.info.pgid = s.pgid == 0 ? pid : s.pgid;
    p.info.comm = s.comm;
    p.info.state = s.stopsLate ? 'D' : s.state;
    p.info.startTime = static_cast<uint64_t>(atNs / nsPerTick());
    p.info.uid = s.uid;
    p.info.cmdline = s.cmdline.empty() ? std::vector<std::string>{s.comm} : s.cmdline;
    for (const auto& a : p.info.cmdline) {
      p.info.commandLine += (p.info.commandLine.empty() ? "" : " ") + a;
    }
    p.info.cgroup = s.cgroup;
    p.handles = std::move(s.handles);
    p.leavesZombie = s.leavesZombie;
    p.stopsLate = s.stopsLate;
    p.exitEvent = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    procs_[pid] = std::move(p);
    return pid;
  }

  static bool isFatalByDefault(int signal) {
    switch (signal) {
      case SIGHUP:
      case SIGINT:
      case SIGQUIT:
      case SIGTERM:
      case SIGUSR1:
      case SIGUSR2:
      case SIGALRM:
      case SIGPIPE:
      case SIGABRT:
        return true;
      default:
        return false;
    }
  }

  void deliverLocked(Proc& p, int signal) {
    if (p.info.state == 'Z') return;  // a zombie takes signals and does nothing
    const bool stopped = p.info.state == 'T' || p.info.state == 't';
    if (signal == SIGKILL) {
      exitLocked(p);
    } else if (signal == SIGSTOP) {
      if (p.stopsLate) {
        p.stopPending = true;
      } else if (p.info.state != 't') {
        p.info.state = 'T';
      }
    } else if (signal == SIGCONT) {
      p.stopPending = false;
      if (p.info.state == 'T') p.info.state = p.stopsLate ? 'D' : 'S';
      if (p.termPending && p.info.state != 't') exitLocked(p);
    } else if (isFatalByDefault(signal) && !p.handles.contains(signal)) {
      if (stopped) {
        p.termPending = true;  // delivered when it runs again
      } else {
        exitLocked(p);
      }
    }
  }

  void exitLocked(Proc& p) {
    if (p.info.state == 'Z') return;
    const uint64_t one = 1;
    (void)!::write(p.exitEvent.get(), &one, sizeof one);
    if (auto s = supervised_.find(p.info.comm); s != supervised_.end()) {
      restarts_.push_back(Restart{p.info.comm, nowNs_ + s->second.first.count(), s->second.second});
    }
    if (p.leavesZombie) {
      p.info.state = 'Z';
      p.info.cmdline.clear();
      p.info.commandLine.clear();
      return;
    }
    procs_.erase(p.info.pid);  // reaped by its parent at once
  }

  mutable std::mutex mutex_;
  std::map<pid_t, Proc> procs_;
  pid_t nextPid_ = 1000;
  int64_t nowNs_ = kBootStartNs;
  std::map<std::string, std::pair<std::chrono::nanoseconds, pid_t>> supervised_;
  std::vector<Restart> restarts_;
  std::vector<pid_t> restarted_;
  std::vector<pid_t> reaped_;
  std::map<int, std::pair<pid_t, uint64_t>> pidfds_;  // caller's fd -> (pid, start time)
  std::vector<std::pair<pid_t, int>> signals_;
  std::map<Call, int> calls_;
  std::vector<Failure> failures_;
};

}  // namespace chaosd
