#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/Injector.h"
#include "injectors/resource/StressProcess.h"
#include "injectors/resource/StressRecords.h"

// cpu.stress and memory.stress: load that runs in cgroups of the fault's own, named
// chaosd-<faultId>, so it is measured (cpu.stat, PSI) and ended as one (cgroup.kill):
//   - no target: under <cgroup2>/chaosd-faults/, on the host;
//   - a process or exec target: inside each selected process's cgroup, where the load competes
//     with the target under the target's own limits (a child cgroup is charged to its parent).
// The load itself is children of the owner (StressProcess.h) that end with it. The guardian
// ends it from the undo record alone: it kills and removes the recorded cgroups.
// docs/faults/resource.md.
namespace chaosd {

class StressInjector final : public Injector {
 public:
  enum class Kind { kCpu, kMemory };
  StressInjector(Kind kind, std::shared_ptr<ProcessKernel> kernel);
  ~StressInjector() override;  // kills and reaps what still runs here; cgroups stay for revert
  StressInjector(const StressInjector&) = delete;
  StressInjector& operator=(const StressInjector&) = delete;

  // Decides the cgroups (resolving a process target) and, for memory, the bytes and the
  // reserve. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Creates the cgroups and starts the load in them.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Kills and removes the fault's cgroups; returns what the load achieved against what was
  // asked (CPU share from cpu.stat, bytes held, the reserve, PSI during the fault). Idempotent.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The cgroups, while they exist.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // What the load applied in this process does now; nullopt when none runs here.
  struct Progress {
    std::vector<pid_t> pids;
    int running = 0;
    uint64_t touched = 0;  // memory: bytes held now
    bool atFloor = false;  // memory: stopped (or gave back) at the reserve
    int memoryState = 0;   // StressShared::State of the hog
  };
  std::optional<Progress> progress(const std::string& faultId);

  struct Load;

 private:
  Kind kind_;
  std::shared_ptr<ProcessKernel> kernel_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Load>> loads_;  // by fault id
};

// A field of /proc/meminfo ("MemTotal", "MemAvailable") in bytes; 0 when absent.
uint64_t meminfoBytes(std::string_view key);

// The reserve memory.stress keeps when none is given: 256 MiB or 5% of MemTotal, the larger.
uint64_t defaultMemoryReserve(uint64_t memTotal);

// The CPUs this process may run on (its affinity mask), at least 1.
int usableCpus();

}  // namespace chaosd
