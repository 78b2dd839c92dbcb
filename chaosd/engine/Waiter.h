#pragma once

#include <condition_variable>
#include <mutex>

#include "chaosd/base/Clock.h"
#include "chaosd/base/FakeClock.h"

namespace chaosd {

// The engine's only way to let time pass: wait until a deadline or until another thread (a
// probe worker, the signal thread) posts something. The fake one jumps its clock instead of
// sleeping, so engine tests are deterministic and take no time.
class Waiter {
 public:
  virtual ~Waiter() = default;
  // Returns at `deadline`, or earlier when notify() was called since the last return.
  virtual void waitUntil(Clock::TimePoint deadline) = 0;
  // Wakes a waitUntil() in progress, or makes the next one return at once. Thread-safe.
  virtual void notify() = 0;
};

class RealWaiter final : public Waiter {
 public:
  explicit RealWaiter(const Clock& clock) : clock_(clock) {}
  void waitUntil(Clock::TimePoint deadline) override;
  void notify() override;

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
};

class FakeWaiter final : public Waiter {
 public:
  explicit FakeWaiter(FakeClock& clock) : clock_(clock) {}
  void waitUntil(Clock::TimePoint deadline) override;
  void notify() override;

 private:
  FakeClock& clock_;
  std::mutex mu_;
  bool pending_ = false;
};

}  // namespace chaosd
