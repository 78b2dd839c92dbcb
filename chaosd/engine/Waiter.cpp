#include "chaosd/engine/Waiter.h"

namespace chaosd {

void RealWaiter::waitUntil(Clock::TimePoint deadline) {
  std::unique_lock lock(mu_);
  while (!pending_) {
    auto left = deadline - clock_.now();
    if (left <= Clock::Duration::zero()) break;
    cv_.wait_for(lock, left);
  }
  pending_ = false;
}

void RealWaiter::notify() {
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  cv_.notify_all();
}

void FakeWaiter::waitUntil(Clock::TimePoint deadline) {
  std::lock_guard lock(mu_);
  if (pending_) {
    pending_ = false;
    return;
  }
  clock_.advanceTo(deadline);
}

void FakeWaiter::notify() {
  std::lock_guard lock(mu_);
  pending_ = true;
}

}  // namespace chaosd
