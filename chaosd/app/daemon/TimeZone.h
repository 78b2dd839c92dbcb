#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// A time zone read from the system's zoneinfo (TZif files, RFC 8536): the UTC offset in force
// at any instant. libstdc++ 12 has no std::chrono::tzdb, and localtime_r would need the TZ
// environment variable changed under running threads. Debian ships "fat" TZif files (every
// transition written out through 2037); after the last transition the last offset holds.
namespace chaosd::daemon {

struct LocalTime {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int hour = 0;
  int minute = 0;
  int second = 0;
  int weekday = 4;  // 0 = Sunday
};

class TimeZone {
 public:
  static TimeZone utc();
  // "" and "UTC" are UTC. kInvalid for a name that is not a zone's form; kNotFound when the
  // zoneinfo has no such file.
  static Result<TimeZone> load(const std::string& name,
                               const std::string& zoneinfoDir = "/usr/share/zoneinfo");

  const std::string& name() const { return name_; }
  // Seconds east of UTC in force at the instant (Unix seconds).
  int offsetAt(int64_t unixSeconds) const;
  LocalTime toLocal(int64_t unixSeconds) const;

 private:
  std::string name_ = "UTC";
  std::vector<int64_t> transitions_;  // ascending
  std::vector<int> offsets_;          // offsets_[i] from transitions_[i]
  int initialOffset_ = 0;             // before the first transition
};

// Broken-down civil time of Unix seconds taken as UTC (no zone).
LocalTime civilFromUnix(int64_t seconds);

}  // namespace chaosd::daemon
