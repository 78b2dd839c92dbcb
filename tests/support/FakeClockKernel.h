#pragma once

#include <cerrno>
#include <string>
#include <vector>

#include "injectors/time/ClockKernel.h"

// A clock in memory for time.skew's unit tests: `now()` answers what the test set (the true
// time plus whatever was stepped), setRealtime records each step and may be told to fail.
namespace chaosd::testing {

class FakeClockKernel final : public ClockKernel {
 public:
  ClockPair now() override { return {trueRealtimeNs + stepNs, monotonicNs}; }
  Result<void> setRealtime(int64_t realtimeNs) override {
    if (failSet) return Error::fromErrno("clock_settime(CLOCK_REALTIME)", EPERM);
    stepNs = realtimeNs - trueRealtimeNs;
    sets.push_back(realtimeNs);
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
  std::vector<int64_t> sets;
};

}  // namespace chaosd::testing
