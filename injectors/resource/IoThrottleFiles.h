#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chaosd/base/Cgroup.h"  // readKernelFile, writeKernelFile
#include "chaosd/base/Result.h"

// The kernel surfaces io.throttle reads and writes, as functions of text (tested with strings)
// and of root paths (tested with fixture trees):
//   - the cgroup mounts that can throttle IO: cgroup2 (io.max) and a cgroup v1 hierarchy with
//     the blkio controller (blkio.throttle.*), both found in mountinfo;
//   - a device's whole disk in sysfs (blk-throttle refuses partitions);
//   - the lines of io.max, blkio.throttle.*_device, io.stat and blkio.throttle.io_service*.
// docs/faults/io-throttle.md.
namespace chaosd {

// Where the IO-throttling cgroup hierarchies are mounted ("" when absent).
struct IoCgroupMounts {
  std::string v2;         // the cgroup2 mount
  std::string blkioV1;    // the cgroup v1 mount whose super options name blkio
  std::string blkioRoot;  // that mount's root inside its hierarchy ("/" unless a bind of a subtree)
};
IoCgroupMounts ioCgroupMountsFromText(std::string_view mountinfo);
Result<IoCgroupMounts> ioCgroupMounts(const std::string& mountinfoPath = "/proc/self/mountinfo");

// The filesystem type of the mount whose device is "MAJ:MIN" (mountinfo's third field);
// "" when none matches.
std::string fstypeOfDevice(std::string_view mountinfo, std::string_view device);

// The cgroup v1 blkio path of a process ("/x", from /proc/PID/cgroup's "N:blkio:/x" line, the
// controller possibly co-mounted "N:blkio,io:/x"). kNotFound when gone or without one.
Result<std::string> blkioPathOfPid(pid_t pid, const std::string& procRoot = "/proc");
Result<std::string> blkioPathFromText(std::string_view procCgroup);

// A block device: the disk blk-throttle accepts for "MAJ:MIN" (a partition maps to its disk
// through sysfsRoot/dev/block/MAJ:MIN/partition and the parent directory's `dev`), and its
// /dev name from uevent ("" when unknown).
struct BlockDisk {
  std::string device;       // "7:3" of the whole disk
  std::string name;         // "/dev/loop3"
  std::string partitionOf;  // the partition asked for ("254:1"), "" when it was a disk
};
Result<BlockDisk> wholeDiskOf(unsigned major, unsigned minor,
                              const std::string& sysfsRoot = "/sys");

// The value after "MAJ:MIN " on the line of `device` in a blkio.throttle.*_device file
// ("1048576"); nullopt when the device has no rule.
std::optional<std::string> throttleRuleOf(std::string_view file, std::string_view device);

// The limits after "MAJ:MIN " on the line of `device` in io.max ("rbps=max wbps=1048576 riops=max
// wiops=max"); nullopt when the device has no line (every limit is max).
std::optional<std::string> ioMaxLineOf(std::string_view file, std::string_view device);

// The value of `key` in io.max limits ("wbps" in "rbps=max wbps=1048576"); "max" when absent.
std::string ioMaxValue(std::string_view limits, std::string_view key);

// IO of a cgroup on one device, cumulative: bytes and operations read and written.
struct IoCounters {
  uint64_t readBytes = 0;
  uint64_t writeBytes = 0;
  uint64_t readOps = 0;
  uint64_t writeOps = 0;
};
// v2: io.stat's "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." (zero when the device is absent).
IoCounters ioStatOf(std::string_view ioStat, std::string_view device);
// v1: "MAJ:MIN Read N" and "MAJ:MIN Write N" of blkio.throttle.io_service_bytes (bytes) and
// blkio.throttle.io_serviced (operations).
IoCounters blkioCountersOf(std::string_view serviceBytes, std::string_view serviced,
                           std::string_view device);

// True for "MAJ:MIN" with decimal numbers.
bool isDeviceNumber(std::string_view device);

}  // namespace chaosd
