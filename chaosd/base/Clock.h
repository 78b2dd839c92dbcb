#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace chaosd {

// Time as the engine sees it. The real clock in production; a FakeClock in tests so that
// an experiment of minutes runs in microseconds and deterministically.
class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  // Monotonic time; what deadlines and intervals are measured in.
  virtual TimePoint now() const = 0;
  // Wall-clock time (for reports and schedules), nanoseconds since the Unix epoch.
  virtual std::chrono::system_clock::time_point wallNow() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint now() const override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
  std::chrono::system_clock::time_point wallNow() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace chaosd
