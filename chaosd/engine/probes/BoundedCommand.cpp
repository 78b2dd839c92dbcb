#include "chaosd/engine/probes/BoundedCommand.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Pidfd.h"

namespace chaosd {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Our environment with the request's variables added or replaced, as "NAME=value" strings.
std::vector<std::string> childEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    if (!extra.contains(std::string(name))) out.emplace_back(entry);
  }
  for (const auto& [name, value] : extra) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn's attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr{};
  posix_spawn_file_actions_t actions{};
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// The same as spawn() below for a command run as other credentials, which posix_spawn
// cannot switch to: fork, then in the child (async-signal-safe calls only: the parent has
// threads) the group, the signal state, the descriptors, the credentials, exec. An exec that
// fails comes back as its errno on a close-on-exec pipe.
Result<pid_t> spawnAs(const CommandRequest& request, int stdoutWrite) {
  const Credentials& who = *request.runAs;
  std::vector<std::string> argv = request.argv;
  std::map<std::string, std::string> extra = credentialEnvironment(who);
  for (const auto& [k, v] : request.env) extra[k] = v;
  std::vector<std::string> env = childEnvironment(extra);
  auto argvp = pointers(argv);
  auto envp = pointers(env);
  const std::vector<gid_t> groups = who.groups;
  int errPipe[2];
  if (::pipe2(errPipe, O_CLOEXEC) != 0) return Error::fromErrno("pipe2", errno);
  Fd errRead(errPipe[0]);
  Fd errWrite(errPipe[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno("fork", errno);
  if (pid == 0) {
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int err = 0;
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull < 0 || ::dup2(devnull, STDIN_FILENO) < 0 ||
        ::dup2(stdoutWrite, STDOUT_FILENO) < 0 || ::dup2(devnull, STDERR_FILENO) < 0) {
      err = errno;
    }
    // Every other descriptor is closed at exec; the error pipe stays until then.
    if (err == 0 && ::syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      err = errno;
    }
    if (err == 0) err = switchCredentialsInChild(who.uid, who.gid, groups.data(), groups.size());
    if (err == 0) {
      ::execvpe(argvp[0], argvp.data(), envp.data());
      err = errno;
    }
    (void)!::write(errWrite.get(), &err, sizeof err);
    ::_exit(127);
  }
  errWrite.reset();
  int childErr = 0;
  ssize_t n = 0;
  do {
    n = ::read(errRead.get(), &childErr, sizeof childErr);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof childErr)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error::fromErrno("spawn " + request.argv[0] + " as " + who.describe(), childErr);
  }
  return pid;
}

Result<pid_t> spawn(const CommandRequest& request, int stdoutWrite) {
  if (request.runAs) return spawnAs(request, stdoutWrite);
  SpawnSetup s;
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setflags(&s.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&s.attr, 0);  // a group of its own, led by the child
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &all);
  posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&s.actions, stdoutWrite, STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&s.actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&s.actions, STDERR_FILENO + 1);

  std::vector<std::string> argv = request.argv;
  std::vector<std::string> env = childEnvironment(request.env);
  auto argvp = pointers(argv);
  auto envp = pointers(env);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argvp[0], &s.actions, &s.attr, argvp.data(), envp.data());
  if (rc != 0) return Error::fromErrno("spawn " + request.argv[0], rc);
  return pid;
}

int remainingMs(SteadyTime deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

// Reads what is available; false at end of file or on an error.
bool drain(int fd, CommandOutcome& out, size_t limit) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      const size_t room = limit - std::min(limit, out.stdoutText.size());
      out.stdoutText.append(buf, std::min(room, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) > room) out.stdoutTruncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

// Kills the child's group while the (possibly zombie) child still holds the group id, then
// reaps the child.
void killGroupAndReap(pid_t pid, CommandOutcome& out) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) out.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
}

// True once the child has exited (not reaped: WNOWAIT keeps the zombie and its group id).
bool hasExited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

}  // namespace

Result<CommandOutcome> runBoundedCommand(const CommandRequest& request) {
  if (request.argv.empty() || request.argv[0].empty()) {
    return Error(ErrorCode::kInvalid, "command: empty argv");
  }
  const SteadyTime deadline = std::chrono::steady_clock::now() + request.timeout;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::fromErrno("pipe2", errno);
  Fd readEnd(fds[0]);
  Fd writeEnd(fds[1]);
  // Only our end is non-blocking: a child whose stdout returned EAGAIN would fail to write.
  if (::fcntl(readEnd.get(), F_SETFL, O_NONBLOCK) != 0) return Error::fromErrno("fcntl", errno);
  auto pid = spawn(request, writeEnd.get());
  if (!pid) return std::move(pid).error();
  writeEnd.reset();

  CommandOutcome out;
  out.pid = *pid;
  // A pidfd tells when the child exits even while a grandchild keeps stdout open. Without
  // one (an old kernel or a sandbox), the exit is checked every 10 ms instead.
  // (glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw system call.)
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
  bool exited = false;
  while (!exited) {
    const int left = remainingMs(deadline);
    if (left == 0) {
      out.timedOut = !hasExited(*pid);
      break;
    }
    // poll ignores entries whose fd is -1 (stdout already closed, or no pidfd).
    pollfd p[2] = {{readEnd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    if (::poll(p, 2, pidfd ? left : std::min(left, 10)) < 0 && errno != EINTR) break;
    if (p[0].revents != 0 && !drain(readEnd.get(), out, request.maxStdout)) readEnd.reset();
    exited = pidfd ? (p[1].revents & POLLIN) != 0 : hasExited(*pid);
  }
  if (readEnd) drain(readEnd.get(), out, request.maxStdout);
  killGroupAndReap(*pid, out);
  if (readEnd) drain(readEnd.get(), out, request.maxStdout);
  return out;
}

}  // namespace chaosd
