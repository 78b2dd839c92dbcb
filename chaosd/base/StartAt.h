#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// A run's synchronised start (`--start-at`, the API's `startAt`): the instant its method
// begins, the same on every host of a game day. docs/fleet.md.
namespace chaosd {

// How far ahead a start may be: further is more likely a typo than a plan (a schedule is the
// tool for next week).
inline constexpr std::chrono::hours kMaxStartAhead{24};

// RFC 3339 date-time: "2026-05-01T10:00:00Z", "2026-05-01T10:00:00.250Z",
// "2026-05-01T12:00:00+02:00" (any offset; the instant is what counts). Fractions beyond
// nanoseconds are cut. An error of code kInvalid that quotes the text and shows the form.
Result<std::chrono::system_clock::time_point> parseStartAt(std::string_view text);

// The start is in the future and at most kMaxStartAhead away, measured from `now`.
Result<void> checkStartAt(std::chrono::system_clock::time_point startAt,
                          std::chrono::system_clock::time_point now);

// "2026-05-01T10:00:00.250000Z": UTC with microseconds, for reports and messages.
std::string formatStartAt(std::chrono::system_clock::time_point t);

}  // namespace chaosd
