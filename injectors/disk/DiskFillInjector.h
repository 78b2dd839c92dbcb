#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "injectors/Injector.h"
#include "injectors/disk/DiskFs.h"
#include "injectors/disk/DiskRecords.h"
#include "injectors/disk/OwnedFiles.h"

// disk.fill: a file of our own name, <dir>/.chaosd-fill-<faultId>, allocated with fallocate
// (or written, where the filesystem has no fallocate) until the filesystem holding the target
// path has `size` more bytes used or reaches a df use% of `usage`. docs/faults/disk.md.
namespace chaosd {

// ---- disk.fill --------------------------------------------------------------------------

class DiskFillInjector final : public Injector {
 public:
  struct Options {
    // Tests only: skip fallocate and write zero blocks, as on a filesystem without it.
    bool forceWriteFallback = false;
  };
  // The kernel's filesystem unless another is given (a fake, in unit tests).
  DiskFillInjector();
  explicit DiskFillInjector(std::shared_ptr<DiskFs> fs);
  explicit DiskFillInjector(Options options);
  DiskFillInjector(std::shared_ptr<DiskFs> fs, Options options);

  // statvfs of the target's filesystem; decides the file and the bytes (size, or the bytes
  // that bring df's use% to usage; none when it is already there: a recorded no-op).
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Creates the file (O_EXCL, 0600) and allocates the planned bytes: fallocate, or 1 MiB
  // zero writes on EOPNOTSUPP. Running out of space is a partial fill, not an error. Syncs
  // the file and its directory. Observed: bytes planned and allocated, partial, method,
  // usage before and after.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Unlinks the file when it is ours (name and filesystem, and the inode apply created when
  // it ran in this instance); absent is success. Returns {removed, freedBytes, usageAfter}.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The file, while it exists.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // ".chaosd-fill-<faultId>"
  static std::string fileNameFor(std::string_view faultId);

 private:
  std::optional<uint64_t> createdInode(const std::string& faultId);

  std::shared_ptr<DiskFs> fs_;
  Options options_;
  // The inode of each filler file this instance created, by fault id: a file put in its
  // place since (same name, same filesystem) is someone else's and is left alone. The
  // guardian, in another process, has only the name and the filesystem to go by.
  std::mutex mutex_;
  std::map<std::string, uint64_t> created_;
};

}  // namespace chaosd
