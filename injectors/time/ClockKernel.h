#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "chaosd/base/Result.h"

// The clocks time.skew reads and, host-wide, steps: a seam, so the injector's apply, revert
// and failure paths are unit-tested with a clock in memory (tests/support/FakeClockKernel.h),
// and only root tests in a VM step a real one.
namespace chaosd {

// CLOCK_REALTIME and CLOCK_MONOTONIC read back to back, in nanoseconds.
struct ClockPair {
  int64_t realtimeNs = 0;
  int64_t monotonicNs = 0;
};

class ClockKernel {
 public:
  virtual ~ClockKernel() = default;
  virtual ClockPair now() = 0;
  // Moves CLOCK_REALTIME by deltaNs, in the kernel, from wherever it is when the call lands
  // (clock_adjtime ADJ_SETOFFSET): a delay between reading the clocks and the step (a
  // preemption) does not become an error, as it would with clock_settime of an absolute time
  // computed before. Errors carry the errno (EPERM without CAP_SYS_TIME).
  virtual Result<void> stepRealtime(int64_t deltaNs) = 0;
  // Names this boot (/proc/sys/kernel/random/boot_id): a monotonic reading means nothing in
  // another boot. "" when it cannot be read.
  virtual std::string bootId() = 0;
};

// The real clocks. Stateless.
std::shared_ptr<ClockKernel> systemClockKernel();

}  // namespace chaosd
