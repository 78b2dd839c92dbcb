#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "injectors/Injector.h"
#include "injectors/disk/DiskFs.h"

// disk.io-load: worker threads in the owning process, each reading and writing its own file
// <dir>/.chaosd-io-<faultId>-<n> with O_DIRECT where the filesystem allows it, until revert,
// the step's duration or `bytes`. docs/faults/disk.md.
namespace chaosd {

class IoLoadInjector final : public Injector {
 public:
  // The kernel's filesystem unless another is given (a fake, in unit tests).
  IoLoadInjector();
  explicit IoLoadInjector(std::shared_ptr<DiskFs> fs);
  // Stops and joins workers still running; their files stay for revert (or the guardian).
  ~IoLoadInjector() override;
  IoLoadInjector(const IoLoadInjector&) = delete;
  IoLoadInjector& operator=(const IoLoadInjector&) = delete;

  // Decides the files and checks they fit in the space available. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Creates the files (fallocate, else sparse), switches them to O_DIRECT where allowed
  // (recording a refusal), starts the workers and returns.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Stops and joins this fault's workers, if they run in this process, and removes the files
  // (only those named after the fault id, on the recorded filesystem). Idempotent. Returns
  // what the workers achieved: bytes read and written, MB/s.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The files, while they exist.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // What the workers of a fault applied in this process have done so far; nullopt when none
  // run here (never applied, reverted, or applied by another process).
  struct Progress {
    uint64_t bytesRead = 0;
    uint64_t bytesWritten = 0;
    int workersRunning = 0;
  };
  std::optional<Progress> progress(const std::string& faultId);

  // ".chaosd-io-<faultId>-<worker>"
  static std::string fileNameFor(std::string_view faultId, int worker);

  struct Load;  // the workers of one fault (IoLoadInjector.cpp)

 private:
  std::shared_ptr<DiskFs> fs_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Load>> loads_;  // by fault id
};

}  // namespace chaosd
