#include "chaosd/app/daemon/CronCalendar.h"

namespace chaosd::daemon {
namespace {

Result<int> minuteOfDay(const std::string& hhmm) {
  if (hhmm.size() != 5 || hhmm[2] != ':' || !std::isdigit(static_cast<unsigned char>(hhmm[0])) ||
      !std::isdigit(static_cast<unsigned char>(hhmm[1])) ||
      !std::isdigit(static_cast<unsigned char>(hhmm[3])) ||
      !std::isdigit(static_cast<unsigned char>(hhmm[4]))) {
    return Error(ErrorCode::kInvalid, "'" + hhmm + "' is not HH:MM");
  }
  int h = (hhmm[0] - '0') * 10 + (hhmm[1] - '0');
  int m = (hhmm[3] - '0') * 10 + (hhmm[4] - '0');
  if (h > 23 || m > 59) return Error(ErrorCode::kInvalid, "'" + hhmm + "' is not a time of day");
  return h * 60 + m;
}

bool dayMatches(const CronSpec& c, const LocalTime& t) {
  if (!c.months.test(static_cast<size_t>(t.month))) return false;
  bool dom = c.daysOfMonth.test(static_cast<size_t>(t.day));
  bool dow = c.daysOfWeek.test(static_cast<size_t>(t.weekday));
  if (c.domRestricted && c.dowRestricted) return dom || dow;  // Vixie cron
  return dom && dow;
}

}  // namespace

bool DailyWindow::contains(int m) const {
  if (start == end) return true;  // the whole day
  if (start < end) return m >= start && m < end;
  return m >= start || m < end;
}

Result<DailyWindow> parseWindow(const std::string& start, const std::string& end) {
  auto s = minuteOfDay(start);
  if (!s) return s.error();
  auto e = minuteOfDay(end);
  if (!e) return e.error();
  return DailyWindow{*s, *e};
}

bool cronMatches(const CronSpec& c, const LocalTime& t) {
  return c.minutes.test(static_cast<size_t>(t.minute)) &&
         c.hours.test(static_cast<size_t>(t.hour)) && dayMatches(c, t);
}

std::optional<int64_t> nextCronTime(const CronSpec& cron, const TimeZone& zone,
                                    const std::optional<DailyWindow>& window, int64_t afterUnix) {
  int64_t t = (afterUnix >= 0 ? afterUnix / 60 : (afterUnix - 59) / 60) * 60 + 60;
  const int64_t limit = afterUnix + int64_t{5} * 366 * 86400;
  while (t <= limit) {
    LocalTime local = zone.toLocal(t);
    // Skip to the next local hour when this one cannot match (by an hour, not a day: a DST
    // change inside the day would make a day's jump land past a match).
    if (!dayMatches(cron, local) || !cron.hours.test(static_cast<size_t>(local.hour))) {
      t += static_cast<int64_t>(60 - local.minute) * 60;
      continue;
    }
    if (cron.minutes.test(static_cast<size_t>(local.minute)) &&
        (!window || window->contains(local.hour * 60 + local.minute))) {
      return t;
    }
    t += 60;
  }
  return std::nullopt;
}

}  // namespace chaosd::daemon
