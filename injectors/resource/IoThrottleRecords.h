#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/resource/IoThrottleFiles.h"

// The undo record of io.throttle: per cgroup, every file the fault writes with the device's
// value before it (what revert writes back) and the value it writes. The guardian writes into
// whatever files a record names, so fromJson accepts only io.max and blkio.throttle.*_device
// files of cgroups under the matching cgroup mount, and values of the kernel's own syntax.
namespace chaosd {

// One cgroup file and the device's value in it. v1: "1048576", previous "" = no rule.
// v2 (io.max): previous is the device's whole line after "MAJ:MIN " ("" = no line, every limit
// max), written the keys set ("wbps=1048576").
struct IoThrottleWrite {
  std::string file;
  std::string previous;
  std::string written;
};

struct IoThrottleCgroup {
  std::string dir;
  std::vector<IoThrottleWrite> files;
};

struct IoThrottleUndo {
  int version = 1;
  std::string faultId;
  bool noop = false;       // `empty: skip` and no process matched
  std::string mode;        // "v2" (io.max) or "v1" (blkio.throttle.*)
  std::string device;      // "MAJ:MIN" of the whole disk
  std::string deviceName;  // "/dev/loop3", for people
  std::string path;        // the path whose filesystem's device is throttled
  std::vector<IoThrottleCgroup> cgroups;

  nlohmann::json toJson() const;
  // Refuses a record of another fault (faultId non-empty), a device that is not MAJ:MIN, a
  // cgroup not strictly under the mode's mount in `mounts`, a file that is not one of the
  // mode's files in its cgroup, or a value outside the kernel's syntax.
  static Result<IoThrottleUndo> fromJson(const nlohmann::json& undo, std::string_view faultId,
                                         const IoCgroupMounts& mounts);
  // The same against this machine's mounts.
  static Result<IoThrottleUndo> fromJson(const nlohmann::json& undo, std::string_view faultId = {});
};

// The v1 file a key is written to: "writeBps" -> "blkio.throttle.write_bps_device".
std::string blkioThrottleFile(std::string_view key);
// The io.max key of an argument: "writeBps" -> "wbps".
std::string ioMaxKey(std::string_view key);

}  // namespace chaosd
