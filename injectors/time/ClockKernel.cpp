#include "injectors/time/ClockKernel.h"

#include <sys/timex.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <string>

namespace chaosd {
namespace {

int64_t toNs(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

class SystemClockKernel final : public ClockKernel {
 public:
  ClockPair now() override {
    // The monotonic read between two realtime reads, the realtime taken as their midpoint:
    // the pair is then off by at most half the gap (tens of ns), not the whole of it. The
    // tightest of a few tries: a preemption between the reads (a busy or emulated machine)
    // would otherwise widen the gap to milliseconds.
    ClockPair best;
    int64_t bestGap = INT64_MAX;
    for (int i = 0; i < 5 && bestGap > 2000; ++i) {
      timespec r1{}, m{}, r2{};
      ::clock_gettime(CLOCK_REALTIME, &r1);
      ::clock_gettime(CLOCK_MONOTONIC, &m);
      ::clock_gettime(CLOCK_REALTIME, &r2);
      const int64_t gap = toNs(r2) - toNs(r1);
      if (gap >= 0 && gap < bestGap) {
        bestGap = gap;
        best = ClockPair{toNs(r1) + gap / 2, toNs(m)};
      }
    }
    return best;
  }

  Result<void> stepRealtime(int64_t deltaNs) override {
    // ADJ_NANO: `time.tv_usec` holds nanoseconds, which the kernel wants in [0, 1e9).
    timex tx{};
    tx.modes = ADJ_SETOFFSET | ADJ_NANO;
    int64_t sec = deltaNs / 1000000000;
    int64_t nsec = deltaNs % 1000000000;
    if (nsec < 0) {
      sec -= 1;
      nsec += 1000000000;
    }
    tx.time.tv_sec = static_cast<time_t>(sec);
    tx.time.tv_usec = static_cast<suseconds_t>(nsec);
    if (::clock_adjtime(CLOCK_REALTIME, &tx) < 0) {
      return Error::fromErrno("clock_adjtime(CLOCK_REALTIME, ADJ_SETOFFSET)", errno);
    }
    return success();
  }

  std::string bootId() override {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id;
  }
};

}  // namespace

std::shared_ptr<ClockKernel> systemClockKernel() {
  static const auto kernel = std::make_shared<SystemClockKernel>();
  return kernel;
}

}  // namespace chaosd
