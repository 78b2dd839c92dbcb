#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/syscall/FileCorruption.h"
#include "injectors/syscall/SyscallRules.h"

// The typed arguments and undo record of syscall.error and syscall.delay, each with its one
// json conversion. The undo record keeps the keys, types and meaning earlier releases
// journalled (docs/faults/syscall.md); fromJson() refuses a damaged one as a value (kInvalid).
namespace chaosd {

// The normalised arguments of both types (SyscallFaults.cpp): they share all but the errno
// and the delay, and the fault type says which of the two applies.
struct SyscallArgs {
  std::vector<std::string> syscalls;  // names
  double probability = 1.0;
  std::optional<std::string> errnoName;           // syscall.error; "EIO" when absent
  std::optional<std::chrono::nanoseconds> delay;  // syscall.delay; 0 when absent
  std::optional<std::string> path;                // a glob
  std::optional<uint64_t> first;
  std::optional<uint64_t> after;

  static Result<SyscallArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// file.corrupt's normalised arguments (SyscallFaults.cpp).
struct FileCorruptArgs {
  std::string path;  // a glob
  std::string mode;  // flip, truncate, zero
  std::optional<double> rate;
  std::optional<uint64_t> flips;
  std::optional<uint64_t> seed;
  std::optional<uint64_t> size;  // truncate: bytes kept
  std::optional<uint64_t> offset;
  std::optional<uint64_t> length;
  uint64_t maxSize = uint64_t{1} << 30;
  double probability = 1.0;
  std::optional<uint64_t> first;
  std::optional<uint64_t> after;

  static Result<FileCorruptArgs> fromJson(const nlohmann::json& args);
};

// What a hit call gets: syscall.error's errno ...
struct SyscallErrno {
  std::string name;  // "EIO"
  int value = 0;     // its number here, resolved at prepare
};
// ... or syscall.delay's wait.
struct SyscallDelay {
  std::chrono::nanoseconds delay{0};
};

// {"faultId", "pid", "startTime", "syscalls", "numbers", "errno" and "errnoValue" or
//  "delayNs", "probability", "path", "first", "after" (the last three when given), "seed"}
struct SyscallUndo {
  std::string faultId;
  pid_t pid = 0;
  uint64_t startTime = 0;             // with pid, names the started process
  std::vector<std::string> syscalls;  // names, as the experiment gave them
  std::vector<int> numbers;           // the same, resolved on this architecture
  // ... or file.corrupt's corrupted copy ("corrupt": FileCorruption's json).
  std::variant<SyscallErrno, SyscallDelay, FileCorruption> action;
  double probability = 1.0;
  std::optional<std::string> path;
  std::optional<uint64_t> first;
  std::optional<uint64_t> after;
  uint64_t seed = 0;  // of the probability draws, recorded to replay them

  // The rule the supervisor applies.
  SyscallRule rule() const;

  static Result<SyscallUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
