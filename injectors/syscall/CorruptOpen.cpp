#include "injectors/syscall/CorruptOpen.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace chaosd {
namespace {

// The flags argument of an open call; -1 for any other call.
long openFlags(const seccomp_notif& req) {
  if (req.data.nr == SYS_openat) return static_cast<long>(req.data.args[2]);
  if (req.data.nr == SYS_open) return static_cast<long>(req.data.args[1]);
  return -1;
}

// The fourth (file-system) id of a "Uid:" or "Gid:" line of /proc/TID/status; -1 when absent.
struct FsIds {
  long uid = -1;
  long gid = -1;
};

FsIds fsIdsOf(pid_t tid) {
  FsIds ids;
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    const bool isUid = line.rfind("Uid:", 0) == 0;
    if (!isUid && line.rfind("Gid:", 0) != 0) continue;
    std::istringstream in(line.substr(4));
    long real = 0;
    long effective = 0;
    long saved = 0;
    long fs = -1;
    if (in >> real >> effective >> saved >> fs) (isUid ? ids.uid : ids.gid) = fs;
  }
  return ids;
}

// Opens path for reading with the process's file-system ids on this thread (setfsuid and
// setfsgid act on the calling thread only), and this thread's own back afterwards.
Result<Fd> openAs(const std::string& path, const FsIds& ids) {
  if (ids.uid < 0 || ids.gid < 0) return Error(ErrorCode::kNotFound, "the process is gone");
  const auto ownUid = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));
  const auto ownGid = static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
  ::setfsgid(static_cast<gid_t>(ids.gid));
  ::setfsuid(static_cast<uid_t>(ids.uid));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  const int err = errno;
  ::setfsuid(ownUid);
  ::setfsgid(ownGid);
  if (!fd) return Error::fromErrno("open " + path, err);
  return fd;
}

std::string baseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool isReadOnlyOpen(const seccomp_notif& req) {
  const long flags = openFlags(req);
  if (flags < 0) return false;
  if ((flags & O_ACCMODE) != O_RDONLY) return false;
  return (flags & (O_CREAT | O_TRUNC | O_DIRECT | O_PATH | O_DIRECTORY)) == 0;
}

Result<void> answerWithCorruptedCopy(int listener, const seccomp_notif& req,
                                     const std::string& path, const FileCorruption& corruption) {
  if (path.empty()) return Error(ErrorCode::kNotFound, "no path");
  auto source = openAs(path, fsIdsOf(static_cast<pid_t>(req.pid)));
  if (!source) return std::move(source).error();
  auto copy = makeCorruptedCopy(source->get(), baseName(path), corruption);
  if (!copy) return std::move(copy).error();
  // A read-only open file description of the copy: the process may read and map it, not write.
  Fd readOnly(
      ::open(("/proc/self/fd/" + std::to_string(copy->memfd.get())).c_str(), O_RDONLY | O_CLOEXEC));
  if (!readOnly) return Error::fromErrno("reopen the copy read-only", errno);
  seccomp_notif_addfd addfd{};
  addfd.id = req.id;
  addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
  addfd.srcfd = static_cast<__u32>(readOnly.get());
  addfd.newfd = 0;
  addfd.newfd_flags = (openFlags(req) & O_CLOEXEC) != 0 ? O_CLOEXEC : 0;
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0) {
    return Error::fromErrno("SECCOMP_IOCTL_NOTIF_ADDFD", errno);
  }
  return success();
}

}  // namespace chaosd
