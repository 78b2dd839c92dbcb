#pragma once

#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// Where the cgroup v2 hierarchy lives. Never a fixed path: most machines mount it at
// /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified, containers wherever they like.
namespace chaosd {

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

}  // namespace chaosd
