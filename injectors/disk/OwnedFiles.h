#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "injectors/Injector.h"
#include "injectors/disk/DiskFs.h"
#include "injectors/disk/DiskRecords.h"

// What the disk injectors (disk.fill, disk.io-load) share: the space arithmetic, the target's
// directory and filesystem, and the removal and audit of a file of our own name. Every kernel
// contact goes through the DiskFs it is given.
namespace chaosd {

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
Result<DiskTarget> resolveDiskTarget(DiskFs& fs, const FaultRequest& request);

// True when a file described by st (found at path) lives on the recorded filesystem: the same
// st_dev, or the same statfs f_fsid (device numbers may change across a reboot).
bool onRecordedFs(DiskFs& fs, const std::string& path, const DiskFileStat& st,
                  const FsIdentity& id);

Result<FsSpace> readFsSpace(DiskFs& fs, const std::string& path);
// The same of the kernel's filesystem (root tests compare with it).
Result<FsSpace> readFsSpace(const std::string& path);

// Removes file when it is ours: a regular file on the recorded filesystem whose name is
// exactly `name` (the caller builds it from the fault id) and, when `inode` is known (this
// process created it), that very file. Absent is success (0 freed); a file of that name on
// another filesystem, not a regular file or another inode is refused (kConflict) and left
// alone. Syncs the directory after a removal.
struct RemovedFile {
  bool removed = false;
  uint64_t freedBytes = 0;  // what the file had allocated
};
Result<RemovedFile> removeOwnedFile(DiskFs& fs, const std::string& file, std::string_view name,
                                    const FsIdentity& id,
                                    std::optional<uint64_t> inode = std::nullopt);

// One audit line when file still exists ("" when it does not).
std::string auditOwnedFile(DiskFs& fs, const std::string& file, const FsIdentity& id,
                           std::string_view what, std::optional<uint64_t> inode = std::nullopt);

}  // namespace chaosd
