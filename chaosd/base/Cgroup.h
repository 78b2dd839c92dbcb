#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// Where the cgroup v2 hierarchy lives. Never a fixed path: most machines mount it at
// /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified, containers wherever they like.
namespace chaosd {

// The whole of a small kernel file (proc, sysfs, cgroupfs); kNotFound for ENOENT.
Result<std::string> readKernelFile(const std::string& path);
// One write(2) of text to a kernel file (cgroupfs takes one rule per write); kNotFound for
// ENOENT.
Result<void> writeKernelFile(const std::string& path, std::string_view text);

// The mount point of the cgroup2 filesystem, read from a mountinfo file.
// kNotFound when no cgroup2 filesystem is mounted; kIo when the file cannot be read.
Result<std::string> cgroup2Mount(std::string mountinfoPath = "/proc/self/mountinfo");

// The same, from mountinfo text already in memory.
Result<std::string> cgroup2MountFromText(std::string_view mountinfo);

// The directory of a cgroup v2 path ("/system.slice/app.service", as in /proc/PID/cgroup)
// under the cgroup2 mount. kInvalid for relative paths or ".." components, which would
// escape the hierarchy.
Result<std::string> cgroup2Dir(std::string_view cgroupPath,
                               std::string mountinfoPath = "/proc/self/mountinfo");

// The cgroup v2 path of a process ("/system.slice/x.service"), from /proc/PID/cgroup's "0::"
// line. kNotFound when the process is gone or has no v2 line.
Result<std::string> cgroup2PathOfPid(pid_t pid, const std::string& procRoot = "/proc");

// Hybrid machines (v1 controllers next to the v2 tree): the v1 directories of a process for the
// controllers asked ("cpu", "memory"), one per v1 hierarchy that has one of them mounted:
// <mount point>/<the process's path in it>. Empty on a pure v2 machine. From the text of
// /proc/PID/cgroup and of /proc/self/mountinfo; a hierarchy mounted from a subtree (a
// container) maps only the paths inside that subtree.
std::vector<std::string> cgroupV1DirsFromText(std::string_view procCgroup,
                                              std::string_view mountinfo,
                                              const std::vector<std::string>& controllers);
Result<std::vector<std::string>> cgroupV1DirsOfPid(pid_t pid,
                                                   const std::vector<std::string>& controllers);

// One pressure (PSI) file: /proc/pressure/cpu, or a cgroup's cpu.pressure. "some": at least one
// task stalled; "full": all of them (absent for cpu on older kernels: left 0).
struct Pressure {
  double someAvg10 = 0;      // percent of the last 10 s
  uint64_t someTotalUs = 0;  // stall time since boot, microseconds
  double fullAvg10 = 0;
  uint64_t fullTotalUs = 0;
};
Result<Pressure> readPressure(const std::string& file);
Result<Pressure> parsePressure(std::string_view text);

// usage_usec of a cgroup's cpu.stat: CPU time of every process in it, exited ones included.
// A v2 core file: there without the cpu controller.
Result<uint64_t> cgroupCpuUsageUsec(const std::string& dir);

// Creates a cgroup directory (mode 0755). Returns false when it existed already.
Result<bool> makeCgroup(const std::string& dir);

// Moves a process into a cgroup (writes its pid to cgroup.procs).
Result<void> moveToCgroup(const std::string& dir, pid_t pid);

// The pids in a cgroup's cgroup.procs (this cgroup only, not its children).
Result<std::vector<pid_t>> cgroupProcs(const std::string& dir);

// What killAndRemoveCgroup found and did.
struct CgroupRemoval {
  bool existed = false;
  size_t killed = 0;        // processes it held when the kill began
  std::string method;       // "cgroup.kill" or "SIGKILL each" (kernels before 5.14)
  double emptySeconds = 0;  // from the kill until the cgroup held no process
};

// Kills every process of a leaf cgroup (cgroup.kill, else SIGKILL to each pid of cgroup.procs
// until none is left), waits until it is empty (cgroup.events "populated 0"), then removes the
// directory. A missing directory is success (existed = false): idempotent. kTimeout when
// processes remain after `timeout` (a task stuck in the kernel); the directory then stays.
Result<CgroupRemoval> killAndRemoveCgroup(const std::string& dir,
                                          std::chrono::milliseconds timeout);

}  // namespace chaosd
