#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "chaosd/base/Result.h"

// libfaketime on exec targets: finding Debian's library, the control file chaosd owns per
// started process (libfaketime reads it at every clock call, FAKETIME_NO_CACHE), and the
// processes this chaosd started with it, shared by the exec hook that sets them up and the
// injector that moves their clocks (a state of registerTimeFaults, not a process global).
namespace chaosd {

// libfaketimeMT.so.1 (thread-safe; libfaketime.so.1 when only it is there) from Debian's
// `libfaketime`: looked for beside the C library this process runs with (its multiarch
// folder, /usr/lib/x86_64-linux-gnu/faketime/), then /usr/lib{,64}/faketime and
// /usr/local/lib/faketime. kNotFound naming the package otherwise.
Result<std::string> findFakeTimeLibrary();

// Makes an empty-offset control file ("+0"), mode 0644, in dir: dir/chaosd-faketime-XXXXXX.rc.
Result<std::string> makeControlFile(const std::string& dir);
// Replaces the control file's content at once (a temporary file renamed over it, so a clock
// call never reads half a spec). kNotFound when the control file is not there: never creates
// one (a revert after the process and its file are gone has nothing to do).
Result<void> writeControlFile(const std::string& path, const std::string& spec);
// Its content; kNotFound when it is not there.
Result<std::string> readControlFile(const std::string& path);

// An exec target started with libfaketime by this process.
struct FakeTimeTarget {
  pid_t pid = 0;
  uint64_t startTime = 0;
  std::string controlFile;
  std::string library;
  int64_t execRealtimeNs = 0;  // CLOCK_REALTIME right after its exec
};

// The started processes by pid, and which fault holds each one's clock. Thread-safe.
class FakeTimeTargets {
 public:
  void add(FakeTimeTarget target);
  // Removes pid's entry when it is still this start.
  void remove(pid_t pid, uint64_t startTime);
  std::optional<FakeTimeTarget> find(pid_t pid) const;
  // Gives the process's clock to faultId; kConflict when another fault holds it (two skews of
  // one clock at once: the second would hide the first, and the first's revert end both).
  Result<void> claim(pid_t pid, const std::string& faultId);
  void release(pid_t pid, const std::string& faultId);

 private:
  struct Entry {
    FakeTimeTarget target;
    std::string holder;
  };
  mutable std::mutex mu_;
  std::map<pid_t, Entry> targets_;
};

}  // namespace chaosd
