#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// The undo record of cpu.stress and memory.stress: what the guardian needs to end the load
// after the owner died (the cgroups to kill and remove) and what apply needs to start it.
namespace chaosd {

struct StressUndo {
  int version = 1;
  std::string faultId;
  std::string faultType;              // "cpu.stress" / "memory.stress"
  bool noop = false;                  // `empty: skip` and no process matched
  std::string placement;              // "host" or "target"
  std::string hostParent;             // host: the shared parent cgroup (removed when empty)
  std::vector<std::string> cgroups;   // the fault's own cgroups: ".../chaosd-<faultId>"
  std::vector<std::string> pressure;  // per cgroup: the PSI directory reported ("" = /proc)
  // Per cgroup, hybrid machines only: the target's v1 cpu and memory cgroups the load joins
  // too, so the target's v1 limits hold it as well. Never killed or removed: the load leaves
  // them when it dies.
  std::vector<std::vector<std::string>> v1Join;
  std::chrono::nanoseconds duration{0};
  // cpu.stress
  int workers = 0;  // per cgroup
  double load = 0;
  std::chrono::nanoseconds climb{0};
  // memory.stress
  uint64_t size = 0;
  uint64_t reserve = 0;
  uint64_t rate = 0;
  std::string mode;                // "anonymous" / "locked" / "cache"
  std::vector<std::string> files;  // cache: per cgroup, <dir>/.chaosd-cache-<faultId>-<n>

  nlohmann::json toJson() const;
  // Refuses a record whose cgroups are not absolute paths named after its fault id: nothing
  // else is ever killed or removed.
  static Result<StressUndo> fromJson(const nlohmann::json& undo, std::string_view faultId = {});
};

// ".chaosd-cache-<faultId>-<n>": memory.stress mode cache's files.
std::string stressCacheFileName(std::string_view faultId, size_t n);

// "chaosd-<faultId>": the name of every cgroup a stress fault creates.
std::string stressCgroupName(std::string_view faultId);

}  // namespace chaosd
