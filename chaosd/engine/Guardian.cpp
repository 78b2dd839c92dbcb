#include "chaosd/engine/Guardian.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): without it, C++ links fail.
extern "C" {
#include <sys/pidfd.h>
}

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "chaosd/base/Log.h"
#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

constexpr char kReady = 'R';
constexpr char kDone = 'D';
constexpr int kControlFd = 3;
// The guardian re-reads the journal this often, to learn the deadlines of faults journalled
// after its last look.
constexpr auto kRescanInterval = 500ms;
// How long a guardian whose owner died keeps trying to read an unreadable journal.
constexpr auto kJournalPatience = std::chrono::seconds(60);

// Signals of the owner's terminal and pipes: the guardian must outlive a Ctrl-C, a hangup or a
// closed log pipe. SIGTERM keeps its default: only someone who means it sends it.
constexpr int kIgnoredSignals[] = {SIGINT, SIGQUIT, SIGHUP, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};

// Async-signal-safe: runs in the forked child of a possibly multi-threaded owner.
void ignoreTerminalSignals() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  for (int sig : kIgnoredSignals) ::sigaction(sig, &sa, nullptr);
}

// Waits for the child behind pidfd and describes how it ended.
std::string reap(int pidfd) {
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0) {
    return std::string("not reaped: ") + std::strerror(errno);
  }
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  return "killed by signal " + std::to_string(info.si_status);
}

bool exitedZero(int pidfd, std::string& how) {
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0) {
    how = std::string("not reaped: ") + std::strerror(errno);
    return false;
  }
  how = info.si_code == CLD_EXITED ? "exited with status " + std::to_string(info.si_status)
                                   : "killed by signal " + std::to_string(info.si_status);
  return info.si_code == CLD_EXITED && info.si_status == 0;
}

// poll() on one fd with a timeout; true when it reported any of `events` (or HUP/ERR).
bool pollOne(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n >= 0) return n > 0;
    if (errno != EINTR) return false;
  }
}

// An fd moved above the range the child rearranges (0, 1, 3), so dup2 cannot clobber it.
Result<Fd> highFd(int fd) {
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (moved < 0) return Error::fromErrno("duplicating fd", errno);
  return Fd(moved);
}

// ---- the guardian process ------------------------------------------------------------

struct GuardianOptions {
  std::string journalPath;
  std::string runId;
  pid_t ownerPid = 0;
  uint64_t ownerStart = 0;
  int controlFd = -1;
  std::chrono::milliseconds grace{3000};
  std::string logLevel = "info";
};

template <typename T>
bool parseNumber(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

Result<GuardianOptions> parseOptions(int argc, char** argv) {
  GuardianOptions o;
  int64_t graceMs = o.grace.count();
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == kGuardianSubcommand) continue;
    if (i + 1 >= argc) return Error(ErrorCode::kInvalid, "missing value for " + std::string(flag));
    std::string_view value = argv[++i];
    bool ok = true;
    if (flag == "--journal") {
      o.journalPath = value;
    } else if (flag == "--run") {
      o.runId = value;
    } else if (flag == "--owner-pid") {
      ok = parseNumber(value, o.ownerPid) && o.ownerPid > 0;
    } else if (flag == "--owner-start") {
      ok = parseNumber(value, o.ownerStart);
    } else if (flag == "--control-fd") {
      ok = parseNumber(value, o.controlFd) && o.controlFd >= 0;
    } else if (flag == "--grace-ms") {
      ok = parseNumber(value, graceMs) && graceMs >= 0;
    } else if (flag == "--log-level") {
      o.logLevel = value;
    } else {
      return Error(ErrorCode::kInvalid, "unknown guardian option " + std::string(flag));
    }
    if (!ok) {
      return Error(ErrorCode::kInvalid,
                   "bad value '" + std::string(value) + "' for " + std::string(flag));
    }
  }
  if (o.journalPath.empty() || o.runId.empty() || o.ownerPid == 0) {
    return Error(ErrorCode::kInvalid, "the guardian needs --journal, --run and --owner-pid");
  }
  o.grace = std::chrono::milliseconds(graceMs);
  return o;
}

// The guardian's "now" for deadlines: the wall clock when it started plus the monotonic time
// since, so a host clock stepped by a fault it watches (time.skew without a target) neither
// makes every deadline look passed (+2h) nor postpones them (-2h). The engine writes deadlines
// the same way (Engine::deadlineNow).
class StepFreeWallClock {
 public:
  WallTime now() const {
    return wall0_ + std::chrono::duration_cast<WallTime::duration>(
                        std::chrono::steady_clock::now() - steady0_);
  }

 private:
  WallTime wall0_ = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point steady0_ = std::chrono::steady_clock::now();
};

class Guardian {
 public:
  Guardian(GuardianOptions options, FaultJournal journal, FaultRegistry registry)
      : o_(std::move(options)),
        journal_(std::move(journal)),
        registry_(std::move(registry)),
        logger_(log::get("guardian")) {}

  // Opens the pidfd and decides whether the owner is already gone.
  void watchOwner() {
    pidfd_ = Fd(::pidfd_open(o_.ownerPid, 0));
    if (!pidfd_) {
      ownerDead_ = true;
      logger_->warn("owner gone before the guardian watched it run={} owner={} error=\"{}\"",
                    o_.runId, o_.ownerPid, std::strerror(errno));
      return;
    }
    // The pidfd is the owner's only if the pid still has the owner's start time now. Started
    // by startGuardian (a control fd), the owner is also our parent: a different parent means
    // the owner died before the pidfd was opened and we were reparented.
    auto start = readStartTime(o_.ownerPid);
    bool reparented = o_.controlFd >= 0 && ::getppid() != o_.ownerPid;
    if (!start || *start != o_.ownerStart || reparented) {
      ownerDead_ = true;
      logger_->warn("owner gone before the guardian watched it run={} owner={}", o_.runId,
                    o_.ownerPid);
    }
  }

  int run() {
    if (o_.controlFd >= 0 && !ownerDead_) {
      if (::write(o_.controlFd, &kReady, 1) != 1) {
        logger_->warn("could not report ready run={} error=\"{}\"", o_.runId, std::strerror(errno));
      }
    }
    logger_->debug("guardian watching run={} owner={}", o_.runId, o_.ownerPid);
    int control = o_.controlFd;
    while (!ownerDead_) {
      auto wake = revertOverdue();
      pollfd fds[2] = {{pidfd_.get(), POLLIN, 0}, {control, POLLIN, 0}};
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::clamp<std::chrono::nanoseconds>(wake - wall_.now(), 0ns, kRescanInterval));
      int n = ::poll(fds, control >= 0 ? 2 : 1, static_cast<int>(timeout.count()) + 1);
      if (n < 0 && errno != EINTR) {
        logger_->error("poll failed run={} error=\"{}\"", o_.runId, std::strerror(errno));
        return 3;
      }
      if (n <= 0) continue;
      // Read the control socket first: an owner that said "done" and then exited is done.
      if (control >= 0 && fds[1].revents != 0) {
        char buf[64];
        ssize_t got = ::read(control, buf, sizeof buf);
        if (got > 0 && std::memchr(buf, kDone, static_cast<size_t>(got)) != nullptr) {
          return ownerFinished();
        }
        // End of file without "done": the owner is dying or closed it; the pidfd decides.
        if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) control = -1;
      }
      if (fds[0].revents != 0) ownerDead_ = true;
    }
    return revertAll();
  }

 private:
  // Reverts the faults of a live owner that are past deadline + grace. Returns when to look
  // next: the earliest deadline + grace still ahead, or the rescan interval.
  WallTime revertOverdue() {
    auto now = wall_.now();
    WallTime wake = now + kRescanInterval;
    auto faults = journal_.unreverted(o_.runId);
    if (!faults) {
      logger_->error("cannot read the journal run={} error=\"{}\"", o_.runId,
                     faults.error().describe());
      return wake;
    }
    std::vector<FaultRecord> overdue;
    for (auto& f : *faults) {
      if (!f.deadline || f.state == FaultState::kRevertFailed) continue;
      WallTime due = *f.deadline + o_.grace;
      if (due <= now) {
        logger_->warn(
            "fault past its deadline, reverting fault={} run={} deadline_overrun_ms={}", f.faultId,
            o_.runId,
            std::chrono::duration_cast<std::chrono::milliseconds>(now - *f.deadline).count());
        overdue.push_back(std::move(f));
      } else {
        wake = std::min(wake, due);
      }
    }
    if (!overdue.empty()) revertFaults(journal_, registry_, std::move(overdue), "guardian");
    return wake;
  }

  int ownerFinished() {
    auto left = journal_.unreverted(o_.runId);
    if (left && !left->empty()) {
      logger_->warn("owner finished with faults unreverted; leaving them run={} faults={}",
                    o_.runId, left->size());
    }
    logger_->debug("owner finished run={}", o_.runId);
    return 0;
  }

  int revertAll() {
    // The journal may be busy (each attempt already waits out the busy timeout) or briefly
    // unreadable: keep trying for a while rather than leave the faults behind.
    auto giveUp = std::chrono::steady_clock::now() + kJournalPatience;
    auto faults = journal_.unreverted(o_.runId);
    while (!faults && std::chrono::steady_clock::now() < giveUp) {
      logger_->warn("owner died but the journal cannot be read yet run={} error=\"{}\"", o_.runId,
                    faults.error().describe());
      std::this_thread::sleep_for(100ms);
      faults = journal_.unreverted(o_.runId);
    }
    if (!faults) {
      logger_->error("owner died but the journal cannot be read run={} error=\"{}\"", o_.runId,
                     faults.error().describe());
      return 3;
    }
    logger_->info("owner died run={} owner={} faults={}", o_.runId, o_.ownerPid, faults->size());
    auto outcomes = revertFaults(journal_, registry_, std::move(*faults), "guardian");
    bool failed = std::any_of(outcomes.begin(), outcomes.end(),
                              [](const RevertOutcome& r) { return !r.reverted; });
    auto ended = journal_.endRun(o_.runId, "owner-died");
    if (!ended) {
      logger_->error("cannot end the run run={} error=\"{}\"", o_.runId, ended.error().describe());
    }
    return failed ? 1 : 0;
  }

  GuardianOptions o_;
  FaultJournal journal_;
  FaultRegistry registry_;
  std::shared_ptr<spdlog::logger> logger_;
  StepFreeWallClock wall_;
  Fd pidfd_;
  bool ownerDead_ = false;
};

}  // namespace

// ---- the owner's side ----------------------------------------------------------------

bool GuardianHandle::alive() const { return pidfd_.valid() && !pollOne(pidfd_.get(), POLLIN, 0ms); }

Result<void> GuardianHandle::finish(std::chrono::milliseconds timeout) {
  if (!pidfd_) return Error(ErrorCode::kInternal, "guardian handle already finished");
  if (control_) {
    // Fails only when the guardian is gone: reaped below, which reports how it ended.
    (void)::send(control_.get(), &kDone, 1, MSG_NOSIGNAL);
    control_.reset();
  }
  Fd pidfd = std::move(pidfd_);
  if (!pollOne(pidfd.get(), POLLIN, timeout)) {
    ::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);
    std::string how = reap(pidfd.get());
    return Error(ErrorCode::kTimeout, "guardian " + std::to_string(pid_) +
                                          " did not exit after the owner finished; killed (" + how +
                                          ")");
  }
  std::string how;
  if (!exitedZero(pidfd.get(), how)) {
    return Error(ErrorCode::kInternal, "guardian " + std::to_string(pid_) + " " + how);
  }
  return success();
}

Result<GuardianHandle> startGuardian(const GuardianConfig& config) {
  auto ownerStart = selfStartTime();
  if (!ownerStart) return std::move(ownerStart).error().withContext("starting the guardian");

  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<std::string> args = config.leadingArgs;
  auto add = [&](std::string flag, std::string value) {
    args.push_back(std::move(flag));
    args.push_back(std::move(value));
  };
  add("--journal", config.journalPath);
  add("--run", config.runId);
  add("--owner-pid", std::to_string(::getpid()));
  add("--owner-start", std::to_string(*ownerStart));
  add("--control-fd", std::to_string(kControlFd));
  add("--grace-ms", std::to_string(config.deadlineGrace.count()));
  add("--log-level", config.logLevel);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error::fromErrno("creating the guardian's control socket", errno);
  }
  Fd ownerEnd(sv[0]);
  Fd rawChildEnd(sv[1]);
  auto childEnd = highFd(rawChildEnd.get());
  if (!childEnd) return std::move(childEnd).error();
  rawChildEnd.reset();
  Fd rawNull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!rawNull) return Error::fromErrno("opening /dev/null", errno);
  auto devNull = highFd(rawNull.get());
  if (!devNull) return std::move(devNull).error();
  rawNull.reset();

  pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno("forking the guardian", errno);
  if (pid == 0) {
    // A session of its own: the owner's terminal signals (Ctrl-C) do not reach it.
    ::setsid();
    ignoreTerminalSignals();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(childEnd->get(), kControlFd);
    ::dup2(devNull->get(), STDIN_FILENO);
    ::dup2(devNull->get(), STDOUT_FILENO);  // stderr stays: the guardian logs there
    ::close_range(kControlFd + 1, ~0U, 0);  // nothing else of the owner's
    ::execv(config.executable.c_str(), argv.data());
    ::_exit(127);
  }
  childEnd->reset();
  Fd pidfd(::pidfd_open(pid, 0));
  if (!pidfd) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error::fromErrno("opening a pidfd of the guardian", err);
  }

  // Wait for 'R', or for the guardian to die trying.
  pollfd fds[2] = {{ownerEnd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
  auto deadline = std::chrono::steady_clock::now() + config.startTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int n = left.count() > 0 ? ::poll(fds, 2, static_cast<int>(left.count())) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);
      std::string how = reap(pidfd.get());
      return Error(ErrorCode::kTimeout, "the guardian did not report ready in time (" + how + ")");
    }
    char c = 0;
    ssize_t got = fds[0].revents != 0 ? ::read(ownerEnd.get(), &c, 1) : -1;
    if (got == 1 && c == kReady) break;
    if (got < 0 && fds[0].revents != 0 && errno == EINTR) continue;
    if (got == 0 || fds[1].revents != 0) {
      ::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);
      std::string how = reap(pidfd.get());
      return Error(ErrorCode::kInternal,
                   "the guardian failed to start (" + how + "; see its log above)");
    }
  }
  return GuardianHandle(pid, std::move(pidfd), std::move(ownerEnd));
}

int runGuardian(int argc, char** argv, const std::function<void(FaultRegistry&)>& registerFaults) {
  ::setsid();  // already a session leader when started by startGuardian: EPERM, harmless
  ignoreTerminalSignals();
  auto options = parseOptions(argc, argv);
  if (!options) {
    std::fprintf(stderr, "chaosd guardian: %s\n", options.error().describe().c_str());
    return 2;
  }
  if (auto setup = log::setup(log::Format::kText, options->logLevel); !setup) {
    std::fprintf(stderr, "chaosd guardian: %s\n", setup.error().describe().c_str());
    return 2;
  }
  auto logger = log::get("guardian");
  ::prctl(PR_SET_NAME, std::string(kGuardianComm).c_str(), 0, 0, 0);
  // Under memory pressure the kernel should kill anything but the process that cleans up.
  if (Fd adj(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)); adj) {
    if (::write(adj.get(), "-1000", 5) < 0) logger->debug("oom_score_adj not lowered");
  }

  auto journal = openJournal(options->journalPath, JournalOpen::kExisting);
  if (!journal) {
    logger->error("cannot open the journal error=\"{}\"", journal.error().describe());
    return 3;
  }
  auto run = journal->run(options->runId);
  if (!run) {
    logger->error("cannot guard run={} error=\"{}\"", options->runId, run.error().describe());
    return 3;
  }
  FaultRegistry registry;
  if (registerFaults) registerFaults(registry);

  Guardian guardian(std::move(*options), std::move(*journal), std::move(registry));
  guardian.watchOwner();
  return guardian.run();
}

}  // namespace chaosd
