#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"
#include "injectors/process/ProcessRecords.h"
#include "injectors/time/ClockKernel.h"

// The typed arguments and undo records of time.skew, each with its one json conversion.
// The undo records are journalled and reverted from by the guardian, perhaps of a later
// release: their keys keep their meaning (docs/faults/time.md). fromJson() refuses a damaged
// record as a value (kInvalid) and never throws.
namespace chaosd {

// "-2h", "+30s", "1m30s" (no sign: forward), "-250ms": a signed duration, at most 10 years
// either way. kInvalid with the expected form otherwise.
Result<std::chrono::nanoseconds> parseClockOffset(std::string_view text);
// The shortest exact signed form: -7200s -> "-2h", 0 -> "+0s".
std::string formatClockOffset(std::chrono::nanoseconds offset);

// time.skew's normalised arguments (TimeFaults.cpp): `offset` is kept as the user wrote it.
struct TimeSkewArgs {
  std::chrono::nanoseconds offset{0};

  static Result<TimeSkewArgs> fromJson(const nlohmann::json& args);
};

// The undo record of time.skew on an exec target (mode "exec"): the libfaketime control file
// chaosd made for the process. Revert writes "+0" into it, whoever reverts.
// {"mode": "exec", "faultId", "pid", "startTime", "controlFile", "offsetNs",
//  "execRealtimeNs"}
struct FakeTimeUndo {
  std::string faultId;
  pid_t pid = 0;
  uint64_t startTime = 0;  // with pid, names the started process
  std::string controlFile;
  std::chrono::nanoseconds offset{0};
  // CLOCK_REALTIME when the process was exec'd (kept for a rate, not offered yet: see
  // docs/faults/time.md).
  int64_t execRealtimeNs = 0;

  static Result<FakeTimeUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// The undo record of time.skew of the host's clock (mode "host"): the clocks read just before
// the step and the NTP clients to pause. Apply sets CLOCK_REALTIME to the true time plus the
// offset; revert (the owner, the guardian, `chaosctl recover`, the next start) sets it to the
// true time now, both computed from `before`: CLOCK_REALTIME - CLOCK_MONOTONIC changes only
// when the clock is stepped (NTP slews move both), so the recorded pair names the true time
// for any later monotonic reading of the same boot.
// {"mode": "host", "faultId", "offsetNs", "realtimeNs", "monotonicNs", "bootId",
//  "ntpPaused": [{"pid", "startTime", "comm"}], "ntpAlreadyStopped": [...]}
struct HostClockUndo {
  std::string faultId;
  std::chrono::nanoseconds offset{0};
  ClockPair before;               // read at prepare, before anything was stepped
  std::string bootId;             // /proc/sys/kernel/random/boot_id: the monotonic clock's boot
  std::vector<Victim> ntpPaused;  // SIGSTOP at apply, SIGCONT at revert
  std::vector<Victim> ntpAlreadyStopped;  // stopped by someone else: left alone

  // The true CLOCK_REALTIME when CLOCK_MONOTONIC reads monotonicNs (same boot).
  int64_t trueRealtimeAt(int64_t monotonicNs) const {
    return before.realtimeNs + (monotonicNs - before.monotonicNs);
  }
  // How far the clock `now` is from the true time (positive: ahead).
  int64_t deviationNs(const ClockPair& now) const {
    return now.realtimeNs - trueRealtimeAt(now.monotonicNs);
  }

  static Result<HostClockUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// The record's mode: "exec" or "host"; kInvalid for anything else.
Result<std::string> timeRecordMode(const nlohmann::json& undo);

// What libfaketime reads from the control file for a clock `offset` off the true time:
// "+7200", "-1.5". "+0" is the true time.
std::string fakeTimeSpec(std::chrono::nanoseconds offset);

// Whether `text` is a libfaketime relative offset (a signed number of seconds and an
// optional " xRATE"), trailing newline allowed: revert overwrites only such a file.
bool looksLikeFakeTimeSpec(std::string_view text);

// A control file's name as chaosd makes them: "chaosd-faketime-XXXXXX.rc" in any folder.
bool isFakeTimeControlFile(std::string_view path);

}  // namespace chaosd
