#pragma once

#include <atomic>

#include "chaosd/base/Clock.h"

namespace chaosd {

// A clock that moves only when told: tests run minutes of an experiment in microseconds, the
// same way every time. Thread-safe reads; the engine's FakeWaiter advances it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point wallStart =
                         std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)))
      : wallStart_(wallStart) {}

  TimePoint now() const override { return TimePoint(Duration(ns_.load())); }
  std::chrono::system_clock::time_point wallNow() const override {
    return wallStart_ +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(Duration(ns_.load()));
  }
  void advance(Duration d) { ns_ += d.count(); }
  // Moves to t; never backwards.
  void advanceTo(TimePoint t) {
    auto target = t.time_since_epoch().count();
    auto cur = ns_.load();
    while (target > cur && !ns_.compare_exchange_weak(cur, target)) {
    }
  }

 private:
  std::chrono::system_clock::time_point wallStart_;
  std::atomic<int64_t> ns_{0};
};

}  // namespace chaosd
