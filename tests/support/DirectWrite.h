#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Fd.h"

namespace chaosd::testing {

// A forked child that joins `cgroup` and writes `bytes` with O_DIRECT, 256 KiB at a time, to
// `path` (a block device, or a file it creates and preallocates); returns the seconds the
// writes took, or -1. The child's pid goes to `children` for the test to reap.
inline double timedDirectWrite(const std::string& cgroup, const std::string& path, uint64_t bytes,
                               std::vector<pid_t>& children, int timeoutMs = 120000) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    double seconds = -1;
    void* buf = nullptr;
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
    struct stat st {};
    const bool file = fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode);
    if (moveToCgroup(cgroup, ::getpid()).ok() && fd &&
        (!file || ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes)) == 0) &&
        ::posix_memalign(&buf, 4096, 256 * 1024) == 0) {
      std::memset(buf, 0x5a, 256 * 1024);
      const auto t0 = std::chrono::steady_clock::now();
      uint64_t done = 0;
      while (done < bytes) {
        ssize_t w = ::pwrite(fd.get(), buf, 256 * 1024, static_cast<off_t>(done));
        if (w <= 0) break;
        done += static_cast<uint64_t>(w);
      }
      if (done >= bytes) {
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    ::_exit(::write(pipefd[1], &seconds, sizeof seconds) == sizeof seconds ? 0 : 1);
  }
  ::close(pipefd[1]);
  Fd readFd(pipefd[0]);
  if (pid < 0) return -1;
  children.push_back(pid);
  double seconds = -1;
  pollfd p{readFd.get(), POLLIN, 0};
  if (::poll(&p, 1, timeoutMs) != 1 ||
      ::read(readFd.get(), &seconds, sizeof seconds) != sizeof seconds) {
    return -1;
  }
  return seconds;
}

}  // namespace chaosd::testing
