#pragma once

#include <bitset>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

namespace chaosd {

// A 5-field cron expression: minute hour day-of-month month day-of-week. Fields take `*`,
// numbers, ranges `a-b`, steps `*/n` or `a-b/n`, lists `a,b`, and names for months (jan..dec)
// and weekdays (sun..sat; 0 and 7 are Sunday). As in Vixie cron, when both day fields are
// restricted, a day matches if either matches.
struct CronSpec {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> daysOfMonth;  // 1..31
  std::bitset<13> months;       // 1..12
  std::bitset<7> daysOfWeek;    // 0..6, Sunday = 0
  bool domRestricted = false;
  bool dowRestricted = false;
  std::string text;
};

Result<CronSpec> parseCron(std::string_view text);

}  // namespace chaosd
