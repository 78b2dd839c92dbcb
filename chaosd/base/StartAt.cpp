#include "chaosd/base/StartAt.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace chaosd {
namespace {

using std::chrono::system_clock;

Error invalid(std::string_view text, const std::string& why) {
  return Error(
      ErrorCode::kInvalid,
      "'" + std::string(text.substr(0, 80)) + "' is not a start time: " + why +
          " (expected RFC 3339, e.g. 2026-05-01T10:00:00Z or 2026-05-01T12:00:00.5+02:00)");
}

// Reads `n` digits at `pos` into `out`; false when they are not all digits.
bool digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || std::toupper(static_cast<unsigned char>(s[pos])) != c) return false;
  ++pos;
  return true;
}

}  // namespace

Result<system_clock::time_point> parseStartAt(std::string_view text) {
  size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(text, pos, 4, y) || !expect(text, pos, '-') || !digits(text, pos, 2, mo) ||
      !expect(text, pos, '-') || !digits(text, pos, 2, d) || !expect(text, pos, 'T') ||
      !digits(text, pos, 2, h) || !expect(text, pos, ':') || !digits(text, pos, 2, mi) ||
      !expect(text, pos, ':') || !digits(text, pos, 2, s)) {
    return invalid(text, "not of the form YYYY-MM-DDTHH:MM:SS");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return invalid(text, "a field is out of range");
  }
  int64_t fractionNs = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t first = pos;
    int64_t scale = 100'000'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fractionNs += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return invalid(text, "no digits after '.'");
  }
  int offsetMinutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!digits(text, pos, 2, oh) || !expect(text, pos, ':') || !digits(text, pos, 2, om) ||
        oh > 23 || om > 59) {
      return invalid(text, "the offset is not +HH:MM or -HH:MM");
    }
    offsetMinutes = sign * (oh * 60 + om);
  } else {
    return invalid(text, "no time zone: end it with Z (UTC) or an offset like +02:00");
  }
  if (pos != text.size()) return invalid(text, "text after the time");
  // Nanoseconds since 1970 in 64 bits reach 1677 to 2262: a year beyond that overflowed.
  if (y < 1970 || y > 2200) return invalid(text, "the year is not between 1970 and 2200");
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const std::time_t secs = ::timegm(&tm);
  // timegm normalises 31 February into March: a date that does not exist is an error.
  std::tm back{};
  ::gmtime_r(&secs, &back);
  if (back.tm_mday != d && s != 60) return invalid(text, "no such date");
  return system_clock::time_point(
      std::chrono::seconds(secs) - std::chrono::minutes(offsetMinutes) +
      std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(fractionNs)));
}

Result<void> checkStartAt(system_clock::time_point startAt, system_clock::time_point now) {
  if (startAt <= now) {
    return Error(ErrorCode::kInvalid, "the start " + formatStartAt(startAt) +
                                          " has passed (it is " + formatStartAt(now) +
                                          " here); a synchronised start must be in the future");
  }
  if (startAt - now > kMaxStartAhead) {
    return Error(ErrorCode::kInvalid, "the start " + formatStartAt(startAt) +
                                          " is more than 24h away; use a schedule for that");
  }
  return success();
}

std::string formatStartAt(system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  const std::time_t tt = system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  // The fraction is 0..999999: six digits, written apart so GCC's -Wformat-truncation (it
  // cannot bound a long long) has nothing to warn about.
  char frac[8];
  std::snprintf(frac, sizeof frac, "%06u", static_cast<unsigned>(us % 1000000));
  return std::string(buf, n) + "." + frac + "Z";
}

}  // namespace chaosd
