#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "chaosd/app/daemon/TimeZone.h"
#include "chaosd/base/Result.h"
#include "experiments/model/Cron.h"

// When a cron expression fires, read in a time zone and limited to a daily window. Times are
// walked in UTC minutes and judged by their local time, so a local time skipped by a DST
// change does not fire that day, and one that happens twice fires twice.
namespace chaosd::daemon {

// A daily window in local minutes since midnight: [start, end); end <= start wraps midnight.
struct DailyWindow {
  int start = 0;
  int end = 0;
  bool contains(int minuteOfDay) const;
};

// "HH:MM" .. "HH:MM" into a window. kInvalid for another form.
Result<DailyWindow> parseWindow(const std::string& start, const std::string& end);

bool cronMatches(const CronSpec& cron, const LocalTime& local);

// The first whole minute strictly after `afterUnix` (Unix seconds) that the expression and the
// window allow; nullopt when none comes within 5 years (Feb 30, a window the cron misses).
std::optional<int64_t> nextCronTime(const CronSpec& cron, const TimeZone& zone,
                                    const std::optional<DailyWindow>& window, int64_t afterUnix);

}  // namespace chaosd::daemon
