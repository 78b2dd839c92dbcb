#include "injectors/syscall/SyscallSupervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "chaosd/base/Log.h"
#include "injectors/syscall/CorruptOpen.h"

namespace chaosd {
namespace {

// Missing from Debian 12's kernel headers (6.1); kernels before 6.6 answer EINVAL.
constexpr unsigned long kNotifSetFlags = 0x40082104;  // _IOW('!', 4, __u64)
constexpr uint64_t kSyncWakeUp = 1;

using SteadyClock = std::chrono::steady_clock;

// Where a syscall's path is: the index of the path argument, and of its dirfd (-1: none).
struct PathArg {
  int path = -1;
  int dirfd = -1;
};

PathArg pathArgOf(int nr) {
  static const std::map<int, PathArg> table = {
      {SYS_open, {0, -1}},      {SYS_creat, {0, -1}},    {SYS_openat, {1, 0}},
      {SYS_unlink, {0, -1}},    {SYS_unlinkat, {1, 0}},  {SYS_rename, {0, -1}},
      {SYS_renameat, {1, 0}},   {SYS_renameat2, {1, 0}}, {SYS_mkdir, {0, -1}},
      {SYS_mkdirat, {1, 0}},    {SYS_rmdir, {0, -1}},    {SYS_truncate, {0, -1}},
      {SYS_stat, {0, -1}},      {SYS_lstat, {0, -1}},    {SYS_newfstatat, {1, 0}},
      {SYS_statx, {1, 0}},      {SYS_access, {0, -1}},   {SYS_faccessat, {1, 0}},
      {SYS_chmod, {0, -1}},     {SYS_fchmodat, {1, 0}},  {SYS_readlink, {0, -1}},
      {SYS_readlinkat, {1, 0}}, {SYS_link, {0, -1}},     {SYS_linkat, {1, 0}},
      {SYS_symlink, {1, -1}},   {SYS_chown, {0, -1}},    {SYS_fchownat, {1, 0}},
      {SYS_utimensat, {1, 0}},  {SYS_execve, {0, -1}},   {SYS_statfs, {0, -1}},
  };
  auto it = table.find(nr);
  return it == table.end() ? PathArg{} : it->second;
}

bool takesFd(int nr) {
  static const std::set<int> fdCalls = {SYS_read,      SYS_write,      SYS_pread64,
                                        SYS_pwrite64,  SYS_readv,      SYS_writev,
                                        SYS_preadv,    SYS_pwritev,    SYS_preadv2,
                                        SYS_pwritev2,  SYS_fsync,      SYS_fdatasync,
                                        SYS_ftruncate, SYS_fstat,      SYS_close,
                                        SYS_lseek,     SYS_fallocate,  SYS_flock,
                                        SYS_fcntl,     SYS_getdents64, SYS_sync_file_range,
                                        SYS_fchmod,    SYS_fchown,     SYS_fstatfs,
                                        SYS_syncfs,    SYS_sendto,     SYS_recvfrom,
                                        SYS_sendmsg,   SYS_recvmsg,    SYS_connect,
                                        SYS_bind,      SYS_accept,     SYS_accept4,
                                        SYS_shutdown,  SYS_ioctl};
  return fdCalls.contains(nr);
}

std::string readLink(const std::string& path) {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A NUL-terminated string from the target's memory; "" when it cannot be read.
std::string readString(pid_t tid, uint64_t addr) {
  std::string out;
  char chunk[256];
  for (size_t off = 0; off < PATH_MAX; off += sizeof chunk) {
    iovec local{chunk, sizeof chunk};
    iovec remote{reinterpret_cast<void*>(addr + off), sizeof chunk};
    const ssize_t n = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n <= 0) return out.empty() ? std::string() : out;
    const void* nul = std::memchr(chunk, '\0', static_cast<size_t>(n));
    if (nul != nullptr) {
      out.append(chunk, static_cast<size_t>(static_cast<const char*>(nul) - chunk));
      return out;
    }
    out.append(chunk, static_cast<size_t>(n));
  }
  return out;
}

// The path a call acts on, absolute where it can be made so; "" when it has none.
std::string callPath(const seccomp_notif& req) {
  const int nr = req.data.nr;
  const pid_t tid = static_cast<pid_t>(req.pid);
  const std::string proc = "/proc/" + std::to_string(tid);
  const PathArg arg = pathArgOf(nr);
  if (arg.path >= 0) {
    std::string path = readString(tid, req.data.args[arg.path]);
    if (path.empty() || path.front() == '/') return path;
    const int dirfd = arg.dirfd >= 0 ? static_cast<int>(req.data.args[arg.dirfd]) : AT_FDCWD;
    const std::string base = dirfd == AT_FDCWD ? readLink(proc + "/cwd")
                                               : readLink(proc + "/fd/" + std::to_string(dirfd));
    return base.empty() ? path : base + "/" + path;
  }
  if (takesFd(nr)) {
    return readLink(proc + "/fd/" + std::to_string(static_cast<int>(req.data.args[0])));
  }
  return "";
}

}  // namespace

SyscallSupervisor::SyscallSupervisor(pid_t pid, uint64_t startTime, Fd listener)
    : pid_(pid), startTime_(startTime), listener_(std::move(listener)) {
  stop_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  // libseccomp learns the kernel's notification sizes here; receive fails without it.
  (void)seccomp_api_get();
  syncWakeUp_ = ::ioctl(listener_.get(), kNotifSetFlags, kSyncWakeUp) == 0;
  thread_ = std::thread([this] { loop(); });
}

SyscallSupervisor::~SyscallSupervisor() {
  const uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

Result<void> SyscallSupervisor::addRule(SyscallRule rule) {
  for (int nr : rule.syscalls) {
    if (!filtered_.contains(nr)) {
      return Error(ErrorCode::kInvalid, "syscall " + std::to_string(nr) +
                                            " is not in the filter of pid " + std::to_string(pid_) +
                                            " (installed when it was started)");
    }
  }
  std::lock_guard lock(mu_);
  return rules_.add(std::move(rule));
}

std::optional<SyscallRuleStats> SyscallSupervisor::removeRule(const std::string& faultId) {
  std::lock_guard lock(mu_);
  return rules_.remove(faultId);
}

bool SyscallSupervisor::hasRule(const std::string& faultId) const {
  std::lock_guard lock(mu_);
  return rules_.has(faultId);
}

SyscallVerdict SyscallSupervisor::judge(int nr, const std::function<std::string()>& pathOf,
                                        bool readOnlyOpen) {
  std::lock_guard lock(mu_);
  return rules_.judge(nr, pathOf, readOnlyOpen);
}

void SyscallSupervisor::loop() {
  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (seccomp_notify_alloc(&req, &resp) != 0) {
    log::get("syscall")->error("seccomp_notify_alloc failed; pid={} is not supervised", pid_);
    return;
  }
  struct Held {
    SteadyClock::time_point due;
    uint64_t id;
  };
  std::vector<Held> held;  // delayed calls, answered CONTINUE when due
  auto respond = [&](uint64_t id, int err, bool cont) {
    std::memset(resp, 0, sizeof *resp);
    resp->id = id;
    resp->val = 0;
    resp->error = err == 0 ? 0 : -err;
    resp->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    // ENOENT: the call is gone (the target was killed, or a signal restarted it).
    (void)seccomp_notify_respond(listener_.get(), resp);
    answered_.fetch_add(1);
  };
  for (;;) {
    timespec timeout{};
    timespec* wait = nullptr;
    if (!held.empty()) {
      auto earliest = std::min_element(held.begin(), held.end(),
                                       [](const Held& a, const Held& b) { return a.due < b.due; });
      const auto left = std::max(SteadyClock::duration::zero(), earliest->due - SteadyClock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      wait = &timeout;
    }
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    const int n = ::ppoll(fds, 2, wait, nullptr);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;
    const auto now = SteadyClock::now();
    for (auto it = held.begin(); it != held.end();) {
      if (it->due <= now) {
        respond(it->id, 0, true);
        it = held.erase(it);
      } else {
        ++it;
      }
    }
    if ((fds[0].revents & POLLIN) == 0) {
      if ((fds[0].revents & (POLLHUP | POLLERR)) != 0) break;  // the target has exited
      continue;
    }
    std::memset(req, 0, sizeof *req);
    if (seccomp_notify_receive(listener_.get(), req) != 0) {
      if (errno == ENOENT || errno == EINTR) continue;  // the caller went away meanwhile
      break;
    }
    std::optional<std::string> path;  // read once, for the rules and a corrupted copy
    auto pathOf = [&] {
      if (!path) path = callPath(*req);
      return *path;
    };
    const SyscallVerdict verdict =
        judge(static_cast<int>(req->data.nr), pathOf, isReadOnlyOpen(*req));
    if (verdict.hit && verdict.corrupt) {
      auto handed = answerWithCorruptedCopy(listener_.get(), *req, pathOf(), *verdict.corrupt);
      {
        std::lock_guard lock(mu_);
        rules_.corruptionDone(verdict.faultId, handed.ok());
      }
      if (handed.ok()) {
        answered_.fetch_add(1);
      } else {
        log::get("syscall")->debug("file.corrupt let an open through; pid={} path={} reason={}",
                                   pid_, pathOf(), handed.error().message());
        respond(req->id, 0, true);
      }
    } else if (verdict.hit && verdict.err != 0) {
      respond(req->id, verdict.err, false);
    } else if (verdict.hit && verdict.delay.count() > 0) {
      held.push_back(Held{SteadyClock::now() + verdict.delay, req->id});
    } else {
      respond(req->id, 0, true);
    }
  }
  for (const Held& h : held) respond(h.id, 0, true);
  seccomp_notify_free(req, resp);
}

}  // namespace chaosd
