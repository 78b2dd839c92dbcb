#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "injectors/Injector.h"
#include "injectors/disk/DiskRecords.h"

// disk.fill: a file of our own name, <dir>/.chaosd-fill-<faultId>, allocated with fallocate
// (or written, where the filesystem has no fallocate) until the filesystem holding the target
// path has `size` more bytes used or reaches a df use% of `usage`. docs/faults/disk.md.
namespace chaosd {

// ---- shared by the disk injectors (disk.fill, disk.io-load) ---------------------------

// Free space as statvfs reports it, in blocks of f_frsize.
struct FsSpace {
  uint64_t blockSize = 0;    // f_frsize
  uint64_t blocks = 0;       // f_blocks
  uint64_t freeBlocks = 0;   // f_bfree: every free block, root's reserve included
  uint64_t availBlocks = 0;  // f_bavail: what an unprivileged user may still allocate
  uint64_t availBytes() const { return availBlocks * blockSize; }
};

// The fraction df prints as Use%: used / (used + available) with used = blocks - bfree.
// Root's reserve is neither used nor available, so a full disk reads 100%. 0 for no blocks.
double dfUsage(const FsSpace& space);

// Bytes (a whole number of blocks) to allocate so that dfUsage() reaches target (0..1):
// each allocated block moves one block from available to used, so used + available stays
// constant and the answer is ceil(target * (used + available)) - used blocks. 0 when the
// filesystem is already at or over the target.
uint64_t bytesToReachUsage(const FsSpace& space, double target);

// A fault id is put into file names: letters, digits, '.', '_', '-', not starting with '.',
// at most 200 characters. Anything else is refused before a name is built from it.
bool isFileNameSafe(std::string_view faultId);

// The directory a path target names (the path itself, or a file's directory), made absolute
// and free of symlinks, with its filesystem's identity, space and read-only flag.
struct DiskTarget {
  std::string dir;
  FsIdentity fs;
  FsSpace space;
  bool readOnly = false;
};
Result<DiskTarget> resolveDiskTarget(const FaultRequest& request);

Result<FsSpace> readFsSpace(const std::string& path);
Result<void> syncDirectory(const std::string& dir);

// Removes file when it is ours: a regular file on the recorded filesystem whose name is
// exactly `name` (the caller builds it from the fault id). Absent is success (0 freed); a file
// of that name on another filesystem, or not a regular file, is refused (kConflict) and left
// alone. Syncs the directory after a removal.
struct RemovedFile {
  bool removed = false;
  uint64_t freedBytes = 0;  // what the file had allocated
};
Result<RemovedFile> removeOwnedFile(const std::string& file, std::string_view name,
                                    const FsIdentity& fs);

// One audit line when file still exists ("" when it does not).
std::string auditOwnedFile(const std::string& file, const FsIdentity& fs, std::string_view what);

// ---- disk.fill --------------------------------------------------------------------------

class DiskFillInjector final : public Injector {
 public:
  struct Options {
    // Tests only: skip fallocate and write zero blocks, as on a filesystem without it.
    bool forceWriteFallback = false;
  };
  DiskFillInjector() = default;
  explicit DiskFillInjector(Options options) : options_(options) {}

  // statvfs of the target's filesystem; decides the file and the bytes (size, or the bytes
  // that bring df's use% to usage; none when it is already there: a recorded no-op).
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Creates the file (O_EXCL, 0600) and allocates the planned bytes: fallocate, or 1 MiB
  // zero writes on EOPNOTSUPP. Running out of space is a partial fill, not an error. Syncs
  // the file and its directory. Observed: bytes planned and allocated, partial, method,
  // usage before and after.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Unlinks the file when it is ours (name and filesystem); absent is success. Returns
  // {removed, freedBytes, usageAfter}.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The file, while it exists.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // ".chaosd-fill-<faultId>"
  static std::string fileNameFor(std::string_view faultId);

 private:
  Options options_;
};

}  // namespace chaosd
