#pragma once

#include <chrono>
#include <thread>

namespace chaosd::testing {

// Waits for a condition by re-checking it every millisecond, up to timeout. Returns the
// condition's last value, so a test asserts on it and a timeout fails the test.
template <typename Pred>
bool waitUntil(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace chaosd::testing
