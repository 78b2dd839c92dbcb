#include "injectors/process/ExecTarget.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "chaosd/base/ProcessTable.h"
#include "injectors/process/ProcessInjector.h"

extern char** environ;  // NOLINT: POSIX

namespace chaosd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kKillWait = std::chrono::seconds(3);

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// A member of the group: (pid, start time) of a live process in the leader's group that
// started no earlier than the leader (a reused pgid's processes would be younger than the
// leader only if the leader and all its group were gone long ago; the leader's start time
// check below covers the leader itself).
std::vector<Victim> groupMembers(ProcessKernel& kernel, pid_t pgid, uint64_t leaderStart) {
  std::vector<Victim> out;
  auto table = kernel.scan(kScanAll, nullptr);
  if (!table) return out;
  for (const auto& p : table->processes()) {
    if (p.pgid != pgid || p.state == 'Z' || p.startTime < leaderStart) continue;
    out.push_back(Victim{p.pid, p.startTime, p.comm});
  }
  return out;
}

struct Reached {
  Victim victim;
  Fd pidfd;
};

// Opens a proven pidfd to every recorded process still alive: the leader and its group.
std::vector<Reached> reachGroup(ProcessKernel& kernel, pid_t pgid, uint64_t leaderStart) {
  std::vector<Reached> out;
  for (const auto& v : groupMembers(kernel, pgid, leaderStart)) {
    auto r = reachVictim(kernel, v);
    if (r && r->state == VictimState::kLive) out.push_back(Reached{v, std::move(r->pidfd)});
  }
  return out;
}

// Waits until every pidfd reports an exit, or the deadline. True when all exited.
bool waitAllExited(ProcessKernel& kernel, const std::vector<Reached>& group,
                   Clock::time_point deadline) {
  for (;;) {
    bool all = true;
    for (const auto& g : group) all = all && kernel.hasExited(g.pidfd);
    if (all) return true;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    std::vector<pollfd> fds;
    for (const auto& g : group) {
      if (!kernel.hasExited(g.pidfd)) fds.push_back(pollfd{g.pidfd.get(), POLLIN, 0});
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(1, left.count())));
  }
}

}  // namespace

Result<std::string> findExecutable(const std::string& program) {
  if (program.empty()) return Error(ErrorCode::kInvalid, "exec: an empty argv");
  if (program.find('/') != std::string::npos) {
    if (isExecutableFile(program)) return program;
    return Error(ErrorCode::kNotFound, "'" + program + "' is not an executable file");
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (isExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return Error(ErrorCode::kNotFound, "'" + program + "' is not found on PATH");
}

namespace {

// The BPF program of a filter that sends the given syscalls to a listener and allows the
// rest, built by libseccomp in the parent: the child only loads it with one raw syscall
// (async-signal-safe, unlike building it there).
Result<std::vector<sock_filter>> notifyFilter(const std::vector<int>& syscalls) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Error(ErrorCode::kInternal, "seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  for (int nr : syscalls) {
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0); rc < 0) {
      return Error::fromErrno("seccomp_rule_add for syscall " + std::to_string(nr), -rc);
    }
  }
  Fd mem(::memfd_create("chaosd-bpf", MFD_CLOEXEC));
  if (!mem) return Error::fromErrno("memfd_create", errno);
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0) {
    return Error::fromErrno("seccomp_export_bpf", -rc);
  }
  const off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return Error(ErrorCode::kInternal,
                 "seccomp_export_bpf wrote " + std::to_string(size) + " bytes");
  }
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    return Error::fromErrno("reading the exported filter", errno);
  }
  return prog;
}

// Receives one descriptor sent with SCM_RIGHTS; -1 when none came.
int receiveFd(int sock) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

// Everything the child needs, built before fork: between fork and exec it may only make
// async-signal-safe calls (the parent has threads). Filled in place and never moved: argv and
// envp point into their stores, fprog into filter.
struct ChildSetup {
  std::string exe;
  const char* cwd = nullptr;
  std::vector<std::string> argvStore;
  std::vector<char*> argv;
  std::vector<std::string> envStore;
  std::vector<char*> envp;
  Fd devnull;
  Fd log;
  Fd readEnd;  // the error pipe: the child's errno when it cannot exec (close-on-exec)
  Fd writeEnd;
  Fd goRead;  // the parent writes one byte once the child may exec
  Fd goWrite;
  // The syscall filter and the socket its listener comes back on, when asked for.
  std::vector<sock_filter> filter;
  sock_fprog fprog{};
  Fd parentSock;
  Fd childSock;
  pid_t parent = 0;
  // Credentials to switch to (runAs), copied here so the child only reads.
  bool switchCredentials = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

void buildArgvAndEnv(const ExecSpec& spec, const ExecOptions& options, ChildSetup& c) {
  c.argvStore = spec.argv;
  for (auto& a : c.argvStore) c.argv.push_back(a.data());
  c.argv.push_back(nullptr);
  std::map<std::string, std::string> envMap;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos) envMap[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  if (options.runAs) {
    for (const auto& [k, v] : credentialEnvironment(*options.runAs)) envMap[k] = v;
  }
  for (const auto& [k, v] : spec.env) envMap[k] = v;
  for (const auto& [k, v] : options.env) envMap[k] = v;
  for (const auto& k : options.unsetEnv) envMap.erase(k);
  if (!options.preload.empty()) {
    std::string preload;
    for (const auto& lib : options.preload) preload += (preload.empty() ? "" : ":") + lib;
    auto before = envMap.find("LD_PRELOAD");
    if (before != envMap.end() && !before->second.empty()) preload += ":" + before->second;
    envMap["LD_PRELOAD"] = preload;
  }
  for (const auto& [k, v] : envMap) c.envStore.push_back(k + "=" + v);
  for (auto& e : c.envStore) c.envp.push_back(e.data());
  c.envp.push_back(nullptr);
}

Result<void> openChildFds(const std::string& logPath, ChildSetup& c) {
  c.devnull = Fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!c.devnull) return Error::fromErrno("open /dev/null", errno);
  c.log = Fd(logPath.empty()
                 ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                 : ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!c.log) return Error::fromErrno("open " + logPath, errno);
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return Error::fromErrno("pipe2", errno);
  c.readEnd = Fd(pipeFds[0]);
  c.writeEnd = Fd(pipeFds[1]);
  int goFds[2];
  if (::pipe2(goFds, O_CLOEXEC) != 0) return Error::fromErrno("pipe2", errno);
  c.goRead = Fd(goFds[0]);
  c.goWrite = Fd(goFds[1]);
  return success();
}

Result<void> prepareFilter(const ExecOptions& options, ChildSetup& c) {
  if (!options.notifySyscalls.empty()) {
    auto built = notifyFilter(options.notifySyscalls);
    if (!built) return std::move(built).error();
    c.filter = std::move(*built);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return Error::fromErrno("socketpair", errno);
    }
    c.parentSock = Fd(sv[0]);
    c.childSock = Fd(sv[1]);
  }
  c.fprog = sock_fprog{static_cast<unsigned short>(c.filter.size()), c.filter.data()};
  return success();
}

// In the child, the last calls before exec: loads the filter (its listener close-on-exec, so
// it never reaches the program) and hands the listener to the parent. Async-signal-safe;
// returns 0 or an errno.
int installFilter(const ChildSetup& c) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  // SPEC_ALLOW: without it the kernel also turns on the Spectre v4 mitigation (SSBD) for the
  // process, slowing all of it down: the service under test must run as it does in production.
  const long listener =
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_SPEC_ALLOW, &c.fprog);
  if (listener < 0) return errno;
  char byte = 1;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  const int lfd = static_cast<int>(listener);
  std::memcpy(CMSG_DATA(cm), &lfd, sizeof lfd);
  if (::sendmsg(c.childSock.get(), &msg, 0) != 1) return errno;
  return 0;
}

// The forked child: async-signal-safe calls only. Waits for the parent's go, then execs;
// any failure before the exec goes back on the error pipe.
[[noreturn]] void runChild(const ChildSetup& c) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != c.parent) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
  ::close(c.goWrite.get());  // else our own copy would keep the go pipe from ever closing
  ::close(c.readEnd.get());
  char go = 0;
  ssize_t got = 0;
  do {
    got = ::read(c.goRead.get(), &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) ::_exit(127);  // the parent decided against it, or died
  int err = 0;
  if (c.switchCredentials) {
    err = switchCredentialsInChild(c.uid, c.gid, c.groups.data(), c.groups.size());
    // A change of credentials clears the parent-death signal: set it again, and check the
    // parent once more (it may have died in between).
    if (err == 0 && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
    if (err == 0 && ::getppid() != c.parent) ::_exit(127);
  }
  if (err == 0 && c.cwd != nullptr && ::chdir(c.cwd) != 0) err = errno;
  if (err == 0 && (::dup2(c.devnull.get(), 0) < 0 || ::dup2(c.log.get(), 1) < 0 ||
                   ::dup2(c.log.get(), 2) < 0)) {
    err = errno;
  }
  if (err == 0 && !c.filter.empty()) err = installFilter(c);
  if (err == 0) {
    ::execve(c.exe.c_str(), c.argv.data(), c.envp.data());
    err = errno;
  }
  (void)!::write(c.writeEnd.get(), &err, sizeof err);
  ::_exit(127);
}

// The parent's half once the child is forked: beforeExec (the journal), then the go, then
// the exec's outcome from the error pipe and the listener when one was asked for.
Result<StartedExec> releaseChild(ChildSetup& c, pid_t pid, const BeforeExec& beforeExec) {
  c.childSock.reset();
  ::setpgid(pid, pid);  // also here: whichever runs first, the group exists before we go on
  c.writeEnd.reset();
  c.goRead.reset();
  auto killChild = [&] {
    c.goWrite.reset();     // EOF: the child exits without exec
    ::kill(pid, SIGKILL);  // our own unreaped child: its pid cannot have been reused
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  };
  const std::string& exe = c.exe;
  auto forkedStart = readStartTime(pid);
  if (!forkedStart) {
    killChild();
    return Error(ErrorCode::kInternal, "exec " + exe + ": cannot read the child's start time");
  }
  if (beforeExec) {
    auto ok = beforeExec(StartedExec{pid, *forkedStart, exe, {}});
    if (!ok) {
      killChild();
      return std::move(ok).error();
    }
  }
  const char goByte = 1;
  if (::write(c.goWrite.get(), &goByte, 1) != 1) {
    const int err = errno;
    killChild();
    return Error::fromErrno("exec " + exe + ": releasing the child", err);
  }
  c.goWrite.reset();
  Fd listener;
  if (c.parentSock) {
    // The listener, or EOF when the child failed before sending it (its errno follows on
    // the error pipe).
    listener = Fd(receiveFd(c.parentSock.get()));
  }
  int childErr = 0;
  ssize_t n = 0;
  do {
    n = ::read(c.readEnd.get(), &childErr, sizeof childErr);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof childErr)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error::fromErrno("exec " + exe, childErr);
  }
  if (c.parentSock && !listener) {
    killChild();
    return Error(ErrorCode::kInternal, "exec " + exe + ": the seccomp listener did not arrive");
  }
  StartedExec out{pid, *forkedStart, exe, {}};
  out.listener = std::move(listener);
  return out;
}

}  // namespace

Result<StartedExec> startExec(const ExecSpec& spec, const std::string& logPath,
                              const BeforeExec& beforeExec, const ExecOptions& options) {
  if (spec.argv.empty()) return Error(ErrorCode::kInvalid, "exec: an empty argv");
  auto program = findExecutable(spec.argv.front());
  if (!program) return std::move(program).error();
  if (!spec.cwd.empty()) {
    struct stat st {};
    if (::stat(spec.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(ErrorCode::kNotFound, "exec cwd " + spec.cwd + " is not a directory");
    }
  }
  ChildSetup child;
  child.exe = *program;
  child.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  buildArgvAndEnv(spec, options, child);
  if (options.runAs) {
    child.switchCredentials = true;
    child.uid = options.runAs->uid;
    child.gid = options.runAs->gid;
    child.groups = options.runAs->groups;
  }
  CHAOSD_TRY(openChildFds(logPath, child));
  CHAOSD_TRY(prepareFilter(options, child));
  child.parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno("fork", errno);
  if (pid == 0) runChild(child);
  return releaseChild(child, pid, beforeExec);
}

nlohmann::json execUndo(const StartedExec& started, std::chrono::milliseconds grace) {
  return ExecUndo{started.pid, started.startTime, started.program, grace}.toJson();
}

Result<nlohmann::json> stopExec(const nlohmann::json& undo) {
  auto rec = ExecUndo::fromJson(undo);
  if (!rec) return std::move(rec).error();
  return stopExec(*rec);
}

Result<nlohmann::json> stopExec(const ExecUndo& rec) {
  return stopExec(*systemProcessKernel(), rec);
}

Result<nlohmann::json> stopExec(ProcessKernel& kernel, const ExecUndo& rec) {
  const auto t0 = Clock::now();
  std::vector<Reached> group = reachGroup(kernel, rec.pid, rec.startTime);
  if (group.empty()) {
    kernel.reapChild(rec.pid);
    return nlohmann::json{{"exited", "gone"}, {"stopMs", 0}};
  }
  for (const auto& g : group) (void)signalVictim(kernel, g.pidfd, SIGTERM, g.victim);
  std::string how = "term";
  if (!waitAllExited(kernel, group, t0 + rec.grace)) {
    how = "kill";
    // Members started after our first look get the KILL too.
    for (auto& more : reachGroup(kernel, rec.pid, rec.startTime)) group.push_back(std::move(more));
    for (const auto& g : group) {
      if (!kernel.hasExited(g.pidfd)) (void)signalVictim(kernel, g.pidfd, SIGKILL, g.victim);
    }
    if (!waitAllExited(kernel, group, Clock::now() + kKillWait)) {
      kernel.reapChild(rec.pid);
      return Error(ErrorCode::kTimeout,
                   "exec group " + std::to_string(rec.pid) + " still running after SIGKILL");
    }
  }
  kernel.reapChild(rec.pid);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return nlohmann::json{{"exited", how}, {"stopMs", ms.count()}};
}

Result<std::vector<std::string>> execLeftovers(const nlohmann::json& undo) {
  auto rec = ExecUndo::fromJson(undo);
  if (!rec) return std::move(rec).error();
  return execLeftovers(*rec);
}

Result<std::vector<std::string>> execLeftovers(const ExecUndo& rec) {
  return execLeftovers(*systemProcessKernel(), rec);
}

Result<std::vector<std::string>> execLeftovers(ProcessKernel& kernel, const ExecUndo& rec) {
  std::vector<std::string> out;
  for (const auto& m : groupMembers(kernel, rec.pid, rec.startTime)) {
    out.push_back("pid " + std::to_string(m.pid) + " (" + m.comm + ") of exec group " +
                  std::to_string(rec.pid) + " still runs");
  }
  return out;
}

ExecTargetInjector::ExecTargetInjector() : ExecTargetInjector(systemProcessKernel()) {}
ExecTargetInjector::ExecTargetInjector(std::shared_ptr<ProcessKernel> kernel)
    : kernel_(std::move(kernel)) {}

Result<PreparedFault> ExecTargetInjector::prepare(const FaultRequest&) {
  return Error(ErrorCode::kInvalid, "process.exec is started by the engine, not by a step");
}

Result<AppliedFault> ExecTargetInjector::apply(const std::string&, const nlohmann::json&) {
  return Error(ErrorCode::kInvalid, "process.exec is started by the engine, not by a step");
}

Result<nlohmann::json> ExecTargetInjector::revert(const std::string&, const nlohmann::json& undo) {
  auto rec = ExecUndo::fromJson(undo);
  if (!rec) return std::move(rec).error();
  return stopExec(*kernel_, *rec);
}

Result<std::vector<std::string>> ExecTargetInjector::audit(const nlohmann::json& undo) {
  auto rec = ExecUndo::fromJson(undo);
  if (!rec) return std::move(rec).error();
  return execLeftovers(*kernel_, *rec);
}

std::string lastLogLine(const std::string& logPath) {
  if (logPath.empty()) return "";
  const int fd = ::open(logPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  constexpr off_t kTail = 4096;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  std::string tail(static_cast<size_t>(std::min(std::max<off_t>(size, 0), kTail)), '\0');
  const ssize_t n = ::pread(fd, tail.data(), tail.size(), std::max<off_t>(size - kTail, 0));
  ::close(fd);
  tail.resize(static_cast<size_t>(std::max<ssize_t>(n, 0)));
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' ')) {
    tail.pop_back();
  }
  const auto start = tail.find_last_of('\n');
  return start == std::string::npos ? tail : tail.substr(start + 1);
}

}  // namespace chaosd
