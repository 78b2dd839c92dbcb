#include "chaosd/base/ProcessKernel.h"

#include <dirent.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>

#include "chaosd/base/Pidfd.h"

namespace chaosd {

Result<ProcessTable> SystemProcessKernel::scan(unsigned fields, const ProcessSelector* hint) {
  return ProcessTable::scan(procRoot_, fields, hint);
}

std::set<pid_t> SystemProcessKernel::listPids() {
  std::set<pid_t> pids;
  DIR* dir = ::opendir(procRoot_.c_str());
  if (dir == nullptr) return pids;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && pid > 0) pids.insert(static_cast<pid_t>(pid));
  }
  ::closedir(dir);
  return pids;
}

Result<ProcessInfo> SystemProcessKernel::readProcess(pid_t pid) {
  return ::chaosd::readProcess(pid, procRoot_);
}

Result<uint64_t> SystemProcessKernel::readStartTime(pid_t pid) {
  return ::chaosd::readStartTime(pid, procRoot_);
}

Result<Fd> SystemProcessKernel::openPidfd(pid_t pid) {
  Fd pidfd(::pidfd_open(pid, 0));
  if (!pidfd) return Error::fromErrno("pidfd_open of pid " + std::to_string(pid), errno);
  return pidfd;
}

Result<void> SystemProcessKernel::sendSignal(const Fd& pidfd, int signal) {
  if (::pidfd_send_signal(pidfd.get(), signal, nullptr, 0) == 0) return success();
  return Error::fromErrno("pidfd_send_signal " + std::to_string(signal), errno);
}

bool SystemProcessKernel::hasExited(const Fd& pidfd) {
  pollfd p{pidfd.get(), POLLIN, 0};
  int n = 0;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

void SystemProcessKernel::reapChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) < 0 && errno == EINTR) {
  }
}

int64_t SystemProcessKernel::bootTimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::shared_ptr<ProcessKernel> systemProcessKernel() {
  static const auto kernel = std::make_shared<SystemProcessKernel>();
  return kernel;
}

}  // namespace chaosd
