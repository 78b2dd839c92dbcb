#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/Injector.h"
#include "injectors/resource/IoThrottleFiles.h"
#include "injectors/resource/IoThrottleRecords.h"

// io.throttle: limits of read/write bytes per second and IOPS for the cgroups of a target's
// processes, on the whole disk that holds a path. cgroup v2 (io.max) when the io controller is
// enabled for the target's cgroup, else cgroup v1 (blkio.throttle.*) where blkio is bound to a
// v1 hierarchy. prepare records the device's values before; revert writes them back, so each
// file reads as it did before apply (docs/faults/io-throttle.md).
namespace chaosd {

// Where the kernel surfaces are: fixture trees in tests.
struct IoThrottleHost {
  std::string mountinfo = "/proc/self/mountinfo";
  std::string procRoot = "/proc";
  std::string sysfsRoot = "/sys";
};

class IoThrottleInjector final : public Injector {
 public:
  explicit IoThrottleInjector(std::shared_ptr<ProcessKernel> kernel, IoThrottleHost host = {});

  // Resolves the device of args.path, the target's cgroups and the mode, and reads the
  // device's values now in each file it will write. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Writes the limits; keeps the cgroups' IO counters to report what the throttle saw.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Writes back each recorded previous value whose file reads otherwise. Idempotent; a cgroup
  // gone (its processes ended) has nothing left to restore.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // Each file whose value for the device is not the recorded previous one.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  Result<IoThrottleUndo> record(const nlohmann::json& undo, std::string_view faultId) const;
  Result<IoCounters> counters(const IoThrottleUndo& u, const std::string& dir) const;

  struct Started {
    std::vector<IoCounters> before;  // per cgroup
    std::chrono::steady_clock::time_point at;
  };
  std::shared_ptr<ProcessKernel> kernel_;
  IoThrottleHost host_;
  std::mutex mutex_;
  std::map<std::string, Started> started_;  // by fault id
};

// The device's value now in a file of the record, in the record's syntax ("" = none).
Result<std::string> currentThrottleValue(const std::string& mode, const std::string& file,
                                         const std::string& device);

// What revert writes to restore `previous`: v1 "MAJ:MIN value" or "MAJ:MIN 0" (deletes the
// rule); v2 "MAJ:MIN <previous line>" or every key max (deletes the line).
std::string restoreText(const std::string& mode, const std::string& device,
                        const std::string& previous);

}  // namespace chaosd
