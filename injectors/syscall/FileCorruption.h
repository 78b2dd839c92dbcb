#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"

// file.corrupt's damage, and the corrupted copy of a file it is applied to: an anonymous
// memory file (memfd) the supervisor hands to the process in place of the file it opened, so
// the file on disk is never written. docs/faults/file-corrupt.md.
namespace chaosd {

struct FileCorruption {
  enum class Mode { kFlip, kTruncate, kZero };
  Mode mode = Mode::kFlip;
  // kFlip: each bit flipped with probability `rate`, or exactly `flips` distinct bits (when
  // non-zero), at positions drawn from mt19937_64(seed): the same seed and size give the same
  // damage at every open.
  double rate = 0;
  uint64_t flips = 0;
  uint64_t seed = 0;
  uint64_t keep = 0;     // kTruncate: the bytes kept
  uint64_t offset = 0;   // kZero: the first byte zeroed
  uint64_t length = 0;   // kZero: how many (0: to the end)
  uint64_t maxSize = 0;  // a larger file is let through whole (its open runs as usual)

  static Result<FileCorruption> fromJson(const nlohmann::json& j);
  nlohmann::json toJson() const;
  std::string describe() const;  // "flip 1e-06 of the bits", "truncate at 4096B", ...
};

struct CorruptedCopy {
  Fd memfd;                   // read-write; the process is handed a read-only open of it
  uint64_t size = 0;          // of the copy
  uint64_t changedBits = 0;   // kFlip: bits flipped
  uint64_t changedBytes = 0;  // kTruncate: bytes cut; kZero: bytes zeroed
};

// Copies the regular file open at `source` (its whole content, from offset 0) into a new
// memfd named "chaosd-corrupt:NAME" and damages the copy. kUnsupported for a file that is not
// regular or is larger than c.maxSize (the caller lets such an open through), kIo when the copy
// fails.
Result<CorruptedCopy> makeCorruptedCopy(int source, const std::string& name,
                                        const FileCorruption& c);

}  // namespace chaosd
