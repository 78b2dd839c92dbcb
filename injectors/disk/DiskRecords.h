#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// The typed arguments and undo records of the disk faults, each with its one json conversion.
// The undo records keep the keys, types and meaning of the records earlier releases journalled,
// since the guardian reverts what any of them left (docs/faults/disk.md). fromJson() refuses a
// damaged record as a value (kInvalid): a required key missing, a key of another type, or a
// file the record could not have named (another fault's name, another directory).
namespace chaosd {

// The filesystem a file of ours lives on, as recorded in the undo record. dev (st_dev) is the
// primary check; fsid (statfs f_fsid, derived from the UUID on ext4 and btrfs) is accepted
// too, because device numbers of loop, dm and md devices may change across a reboot, and a
// filler file outlives reboots. fsid "" means unknown (tmpfs reports zero).
struct FsIdentity {
  uint64_t dev = 0;
  std::string fsid;

  // The keys "dev" (required) and "fsid" of a disk undo record, beside the record's others.
  static Result<FsIdentity> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// ---- disk.fill ----------------------------------------------------------------------------

// disk.fill's normalised arguments: exactly one of the two.
struct DiskFillArgs {
  std::optional<uint64_t> size;  // bytes to allocate
  std::optional<double> usage;   // the df use% to reach, 0..1

  static Result<DiskFillArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// {"version", "faultId", "dir", "file", "dev", "fsid", "bytes", "noop", "usageAtPrepare",
//  "usage" (a fill to a usage only)}
struct DiskFillUndo {
  int version = 1;
  std::string faultId;
  std::string dir;   // the file's directory
  std::string file;  // <dir>/.chaosd-fill-<faultId>, absolute
  FsIdentity fs;
  uint64_t bytes = 0;           // planned
  bool noop = false;            // already at the usage: nothing to allocate
  double usageAtPrepare = 0;    // df's use% (0..1) when prepared
  std::optional<double> usage;  // the usage asked for

  static Result<DiskFillUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// ---- disk.io-load -------------------------------------------------------------------------

// disk.io-load's normalised arguments; an absent key takes the schema's default. Also the
// load's parameters in its undo record, under the same keys.
struct IoLoadArgs {
  int workers = 2;
  double readShare = 0.5;        // of operations, once a worker has written its file
  uint64_t blockSize = 1 << 20;  // bytes per operation
  bool direct = true;            // O_DIRECT where the filesystem allows it
  uint64_t fileSize = 256 << 20;
  uint64_t bytes = 0;  // read and written in all before the workers stop; 0: no bound

  static Result<IoLoadArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;  // "bytes" only when bounded
};

// {"version", "faultId", "dir", "files", "dev", "fsid", "durationNs", and IoLoadArgs's keys}.
// Records before the unset bound was left out hold "bytes": 0, which reads as no bound.
struct IoLoadUndo {
  int version = 1;
  std::string faultId;
  std::string dir;                 // absolute
  std::vector<std::string> files;  // files[n] is <dir>/.chaosd-io-<faultId>-<n>
  FsIdentity fs;
  IoLoadArgs load;                       // fileSize in whole blocks
  std::chrono::nanoseconds duration{0};  // the step's; 0: until revert

  static Result<IoLoadUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
