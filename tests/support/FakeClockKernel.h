#pragma once

#include <cerrno>
#include <string>
#include <vector>

#include "injectors/time/ClockKernel.h"

// A clock in memory for time.skew's unit tests: `now()` answers what the test set (the true
// time plus whatever was stepped), stepRealtime records each step and may be told to fail.
namespace chaosd::testing {

class FakeClockKernel final : public ClockKernel {
 public:
  ClockPair now() override { return {trueRealtimeNs + stepNs, monotonicNs}; }
  Result<void> stepRealtime(int64_t deltaNs) override {
    if (failSet) return Error::fromErrno("clock_adjtime(CLOCK_REALTIME, ADJ_SETOFFSET)", EPERM);
    stepNs += deltaNs;
    steps.push_back(deltaNs);
    return success();
  }
  std::string bootId() override { return boot; }
  // Time passes on both clocks.
  void advance(int64_t ns) {
    trueRealtimeNs += ns;
    monotonicNs += ns;
  }

  int64_t trueRealtimeNs = 1'700'000'000'000'000'000;
  int64_t monotonicNs = 50'000'000'000'000;
  int64_t stepNs = 0;  // how far the clock is from the true time now
  bool failSet = false;
  std::string boot = "6c0f3a52-0000-4000-8000-000000000001";
  std::vector<int64_t> steps;  // every delta stepped, in order
};

}  // namespace chaosd::testing
