#include "injectors/resource/StressProcess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Pidfd.h"

namespace chaosd {
namespace {

constexpr int kLifelineFd = 3;                   // where a child keeps the read end of its lifeline
constexpr int64_t kLifelineCheckNs = 5'000'000;  // how often a busy worker looks at it
constexpr int kCacheFileFd = 4;                  // memory.stress mode cache: the file it fills

int64_t monoNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t cpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);  // the child has one thread
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Waits up to timeoutNs (negative: forever) for the lifeline to close. True when it did: the
// owner has gone (or reverted), and the child must end.
bool ownerGone(int64_t timeoutNs) {
  pollfd p{kLifelineFd, POLLIN, 0};
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeoutNs >= 0) {
    ts.tv_sec = timeoutNs / 1'000'000'000;
    ts.tv_nsec = timeoutNs % 1'000'000'000;
    tsp = &ts;
  }
  int n = ::ppoll(&p, 1, tsp, nullptr);
  return n > 0;  // POLLHUP (no writer left) or unexpected data: either way, stop
}

// About 20 us of work the compiler cannot remove.
void spin() {
  volatile uint64_t x = 0;
  for (int i = 0; i < 4000; ++i) x = x + static_cast<uint64_t>(i) * 2654435761u;
}

void runCpu(const CpuDuty& d, StressShared& sh) {
  const int64_t period = d.period.count();
  const int64_t start = monoNs();
  const int64_t end = d.duration.count() > 0 ? start + d.duration.count() : INT64_MAX;
  int64_t periodStart = start;
  for (;;) {
    int64_t now = monoNs();
    if (now >= end) return;
    double load = d.load;
    if (d.climb.count() > 0) {
      load *=
          std::min(1.0, static_cast<double>(now - start) / static_cast<double>(d.climb.count()));
    }
    const auto busy = static_cast<int64_t>(load * static_cast<double>(period));
    const int64_t cpu0 = cpuNs();
    int64_t used = 0;
    int64_t nextCheck = kLifelineCheckNs;
    while (used < busy) {
      spin();
      used = cpuNs() - cpu0;
      if (used >= nextCheck) {  // the owner may die mid-period: look every 5 ms of work
        if (ownerGone(0)) return;
        nextCheck = used + kLifelineCheckNs;
      }
    }
    sh.busyNs.fetch_add(static_cast<uint64_t>(used), std::memory_order_relaxed);
    sh.periods.fetch_add(1, std::memory_order_relaxed);
    const int64_t periodEnd = periodStart + period;
    now = monoNs();
    const int64_t wake = std::min(periodEnd, end);
    if (ownerGone(std::max<int64_t>(0, wake - now))) return;
    // Behind schedule (the CPU was taken from us): start afresh, do not catch up.
    periodStart = now > periodEnd ? now : periodEnd;
  }
}

// mlock/munlock as the system calls themselves: AddressSanitizer intercepts the libc wrappers
// and makes them no-ops that return 0, so a sanitized build would hold no locked page at all.
bool lockPages(void* at, uint64_t n, bool lock) {
  return ::syscall(lock ? SYS_mlock : SYS_munlock, at, n) == 0;
}

// Gives back the top of the touched region until MemAvailable is at the reserve again.
void giveBack(const MemoryHog& h, char* region, uint64_t chunk, StressShared& sh) {
  uint64_t touched = sh.touched.load();
  while (touched > 0) {
    uint64_t avail = memAvailableBytes(h.meminfo.c_str());
    if (avail >= h.reserve) break;
    uint64_t n = std::min(chunk, touched);
    char* at = region + (touched - n);
    if (h.mode == MemoryHog::Mode::kLocked) lockPages(at, n, false);
    ::madvise(at, n, MADV_DONTNEED);
    touched -= n;
    sh.touched.store(touched);
    sh.state.store(StressShared::kAtFloor);
  }
}

// At `rate`, waits until `done` bytes are due (not past `end`). True when the owner went.
bool paceGone(const MemoryHog& h, int64_t start, int64_t end, uint64_t done) {
  if (h.rate == 0) return false;
  const int64_t due =
      start + static_cast<int64_t>(static_cast<double>(done) / static_cast<double>(h.rate) * 1e9);
  const int64_t now = monoNs();
  return due > now && ownerGone(std::min(due, end) - now);
}

// Growth ended by itself (not at the reserve, not failed): holding from now.
void markHolding(const MemoryHog& h, StressShared& sh) {
  if (sh.state.load() == StressShared::kRunning) {
    sh.availableAtStop.store(memAvailableBytes(h.meminfo.c_str()));
    sh.state.store(StressShared::kHolding);
  }
}

// Holds until revert, the duration or the owner's end, checking every 100 ms.
template <typename Check>
void holdUntil(int64_t end, Check check) {
  for (;;) {
    const int64_t now = monoNs();
    if (now >= end) return;
    if (ownerGone(std::min<int64_t>(100'000'000, end - now))) return;
    check();
  }
}

// mode cache: write the file in steps (its pages stay in the page cache, charged to the
// cgroup), the same reserve check and pacing; held until the end; given back (written out
// and dropped) from the top when the machine falls below the reserve.
void runCache(const MemoryHog& h, StressShared& sh, uint64_t chunk, int64_t start, int64_t end) {
  void* mapped = ::mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    sh.failedErrno.store(errno);
    sh.state.store(StressShared::kFailed);
    (void)ownerGone(-1);
    return;
  }
  char* buf = static_cast<char*>(mapped);
  for (uint64_t i = 0; i < chunk; ++i) buf[i] = static_cast<char>(i * 131 + 7);
  uint64_t written = 0;
  while (written < h.size) {
    if (ownerGone(0) || monoNs() >= end) return;
    const uint64_t n = std::min(chunk, h.size - written);
    const uint64_t avail = memAvailableBytes(h.meminfo.c_str());
    if (avail < h.reserve + n) {
      sh.availableAtStop.store(avail);
      sh.state.store(StressShared::kAtFloor);
      break;
    }
    ssize_t w = ::pwrite(kCacheFileFd, buf, n, static_cast<off_t>(written));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      sh.failedErrno.store(w < 0 ? errno : ENOSPC);
      sh.state.store(StressShared::kFailed);
      break;
    }
    written += static_cast<uint64_t>(w);
    sh.touched.store(written);
    if (paceGone(h, start, end, written)) return;
  }
  markHolding(h, sh);
  holdUntil(end, [&] {
    while (written > 0 && memAvailableBytes(h.meminfo.c_str()) < h.reserve) {
      const uint64_t n = std::min(chunk, written);
      const auto off = static_cast<off_t>(written - n);
      ::sync_file_range(
          kCacheFileFd, off, static_cast<off_t>(n),
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      ::posix_fadvise(kCacheFileFd, off, static_cast<off_t>(n), POSIX_FADV_DONTNEED);
      written -= n;
      sh.touched.store(written);
      sh.state.store(StressShared::kAtFloor);
    }
  });
}

void runMemory(const MemoryHog& h, StressShared& sh) {
  const int64_t start = monoNs();
  const int64_t end = h.duration.count() > 0 ? start + h.duration.count() : INT64_MAX;
  const auto page = static_cast<uint64_t>(::getpagesize());
  // 8 MiB per step, or 50 ms worth at a slow rate; whole pages.
  uint64_t chunk = 8ULL << 20;
  if (h.rate > 0) chunk = std::clamp<uint64_t>(h.rate / 20, page, chunk);
  chunk = std::max(page, chunk / page * page);
  if (h.mode == MemoryHog::Mode::kCache) {
    runCache(h, sh, chunk, start, end);
    return;
  }
  void* mapped = ::mmap(nullptr, h.size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapped == MAP_FAILED) {
    sh.failedErrno.store(errno);
    sh.state.store(StressShared::kFailed);
    (void)ownerGone(-1);
    return;
  }
  char* region = static_cast<char*>(mapped);
  uint64_t touched = 0;
  while (touched < h.size) {
    if (ownerGone(0) || monoNs() >= end) return;
    const uint64_t n = std::min(chunk, h.size - touched);
    const uint64_t avail = memAvailableBytes(h.meminfo.c_str());
    if (avail < h.reserve + n) {  // also when meminfo cannot be read (0): stop, safe
      sh.availableAtStop.store(avail);
      sh.state.store(StressShared::kAtFloor);
      break;
    }
    for (uint64_t off = 0; off < n; off += page) {
      region[touched + off] = static_cast<char>(((touched + off) / page) | 1);  // not a zero page
    }
    if (h.mode == MemoryHog::Mode::kLocked && !lockPages(region + touched, n, true)) {
      sh.failedErrno.store(errno);
      sh.state.store(StressShared::kFailed);
      break;
    }
    touched += n;
    sh.touched.store(touched);
    if (paceGone(h, start, end, touched)) return;
  }
  markHolding(h, sh);
  // Give memory back when the machine falls below the reserve (someone else needs it), so
  // the floor holds while we hold.
  holdUntil(end, [&] { giveBack(h, region, chunk, sh); });
}

// The child's side of the start: everything but stdio and the lifeline closed, its own process
// group (a terminal's Ctrl-C is for the owner, which reverts), default signal handling, and
// nothing runs until the owner has moved it into the cgroup and says go.
[[noreturn]] void childMain(int readEnd, const char* name, StressShared& sh, const CpuDuty* cpu,
                            const MemoryHog* hog) {
  // Out of the way first (either may sit on 3 or 4), then into place; close the rest.
  const int lifeline = ::fcntl(readEnd, F_DUPFD, 10);
  const int file = hog && hog->fileFd >= 0 ? ::fcntl(hog->fileFd, F_DUPFD, 10) : -1;
  if (lifeline < 0 || ::dup2(lifeline, kLifelineFd) < 0) ::_exit(120);
  if (file >= 0 && ::dup2(file, kCacheFileFd) < 0) ::_exit(121);
  ::syscall(SYS_close_range, file >= 0 ? kCacheFileFd + 1 : kLifelineFd + 1, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD}) {
    ::signal(sig, SIG_DFL);
  }
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, name, 0, 0, 0);
  char go = 0;
  ssize_t n;
  do {
    n = ::read(kLifelineFd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(0);  // the owner gave up (or died) before go
  sh.state.store(StressShared::kRunning);
  if (cpu) runCpu(*cpu, sh);
  if (hog) runMemory(*hog, sh);
  if (sh.state.load() == StressShared::kRunning) sh.state.store(StressShared::kEnded);
  ::_exit(0);
}

StressShared* mapShared() {
  void* page = ::mmap(nullptr, sizeof(StressShared), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return nullptr;
  return new (page) StressShared();
}

}  // namespace

StressGroup::~StressGroup() {
  lifeline_.reset();  // the children see their lifeline close and end
  for (auto& p : procs_) {
    if (p.ended || !p.pidfd) continue;
    ::pidfd_send_signal(p.pidfd.get(), SIGKILL, nullptr, 0);
    siginfo_t info{};
    ::waitid(P_PIDFD, static_cast<id_t>(p.pidfd.get()), &info, WEXITED);
  }
  for (StressShared* s : shared_) {
    s->~StressShared();
    ::munmap(s, sizeof(StressShared));
  }
}

Result<std::unique_ptr<StressGroup>> StressGroup::startCpu(
    const std::string& cgroupDir, int workers, const CpuDuty& duty,
    const std::vector<std::string>& alsoJoin) {
  return spawn(cgroupDir, workers, alsoJoin, "chaosd-cpu", 0, &duty, nullptr);
}

Result<std::unique_ptr<StressGroup>> StressGroup::startMemory(
    const std::string& cgroupDir, const MemoryHog& hog, const std::vector<std::string>& alsoJoin) {
  return spawn(cgroupDir, 1, alsoJoin, "chaosd-memory", 1000, nullptr, &hog);
}

std::vector<StressGroup::Ending> StressGroup::reap(bool wait) {
  std::vector<Ending> out;
  for (auto& p : procs_) {
    if (!p.ended) {
      siginfo_t info{};
      int rc = ::waitid(P_PIDFD, static_cast<id_t>(p.pidfd.get()), &info,
                        WEXITED | (wait ? 0 : WNOHANG));
      if (rc == 0 && info.si_pid != 0) {
        Ending e;
        e.pid = p.pid;
        e.beforeRevert = !wait;
        if (info.si_code == CLD_EXITED) {
          e.how = "exited " + std::to_string(info.si_status);
        } else {
          const char* abbrev = ::sigabbrev_np(info.si_status);
          e.how = std::string("killed by SIG") + (abbrev ? abbrev : std::to_string(info.si_status));
        }
        p.ended = e;
      } else if (rc != 0 && errno == ECHILD) {  // reaped by someone else
        p.ended = Ending{p.pid, "reaped elsewhere", !wait};
      }
    }
    out.push_back(p.ended ? *p.ended : Ending{p.pid, "running", false});
  }
  return out;
}

std::vector<pid_t> StressGroup::pids() const {
  std::vector<pid_t> out;
  for (const auto& p : procs_) out.push_back(p.pid);
  return out;
}

int StressGroup::running() {
  int n = 0;
  for (const auto& e : reap(false)) n += e.how == "running" ? 1 : 0;
  return n;
}

Result<std::unique_ptr<StressGroup>> StressGroup::spawn(const std::string& cgroupDir, int count,
                                                        const std::vector<std::string>& alsoJoin,
                                                        const char* name, int oomScoreAdj,
                                                        const CpuDuty* cpu, const MemoryHog* hog) {
  auto group = std::make_unique<StressGroup>();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::fromErrno("creating a lifeline pipe", errno);
  group->lifeline_.reset(fds[1]);
  Fd readEnd(fds[0]);
  for (int i = 0; i < count; ++i) {
    StressShared* sh = mapShared();
    if (!sh) return Error::fromErrno("mapping a shared page", errno);
    group->shared_.push_back(sh);
    pid_t pid = ::fork();
    if (pid < 0) return Error::fromErrno("fork", errno);
    if (pid == 0) {
      ::close(fds[1]);  // the child's copy of the write end: only the owner may hold one
      childMain(readEnd.get(), name, *sh, cpu, hog);
    }
    Proc proc;
    proc.pid = pid;
    proc.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!proc.pidfd) {
      int err = errno;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return Error::fromErrno("pidfd_open of a stress process", err);
    }
    group->procs_.push_back(std::move(proc));
  }
  readEnd.reset();
  for (const auto& p : group->procs_) {
    if (auto moved = moveToCgroup(cgroupDir, p.pid); !moved) {
      return std::move(moved).error();  // the destructor kills what was started
    }
    for (const auto& v1 : alsoJoin) {
      if (auto joined = moveToCgroup(v1, p.pid); !joined) return std::move(joined).error();
    }
    if (oomScoreAdj != 0) {
      std::string file = "/proc/" + std::to_string(p.pid) + "/oom_score_adj";
      Fd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
      std::string v = std::to_string(oomScoreAdj);
      if (!fd || ::write(fd.get(), v.data(), v.size()) < 0) {
        return Error::fromErrno("setting " + file, errno);
      }
    }
  }
  group->startedAt_ = std::chrono::steady_clock::now();
  std::string go(static_cast<size_t>(count), 'g');
  if (::write(group->lifeline_.get(), go.data(), go.size()) != static_cast<ssize_t>(go.size())) {
    return Error::fromErrno("starting the stress processes", errno);
  }
  return group;
}

uint64_t memAvailableBytes(const char* meminfo) {
  int fd = ::open(meminfo, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  size_t len = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
    if (len == sizeof buf - 1) break;
  }
  ::close(fd);
  buf[len] = '\0';
  const char* at = std::strstr(buf, "MemAvailable:");
  if (!at) return 0;
  at += std::strlen("MemAvailable:");
  while (*at == ' ' || *at == '\t') ++at;
  uint64_t kb = 0;
  while (*at >= '0' && *at <= '9') kb = kb * 10 + static_cast<uint64_t>(*at++ - '0');
  return kb * 1024;
}

}  // namespace chaosd
