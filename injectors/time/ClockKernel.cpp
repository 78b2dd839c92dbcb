#include "injectors/time/ClockKernel.h"

#include <time.h>

#include <cerrno>
#include <fstream>
#include <string>

namespace chaosd {
namespace {

int64_t toNs(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

class SystemClockKernel final : public ClockKernel {
 public:
  ClockPair now() override {
    // The monotonic read between two realtime reads, the realtime taken as their midpoint:
    // the pair is then off by at most half the gap (tens of ns), not the whole of it.
    timespec r1{}, m{}, r2{};
    ::clock_gettime(CLOCK_REALTIME, &r1);
    ::clock_gettime(CLOCK_MONOTONIC, &m);
    ::clock_gettime(CLOCK_REALTIME, &r2);
    return ClockPair{toNs(r1) + (toNs(r2) - toNs(r1)) / 2, toNs(m)};
  }

  Result<void> setRealtime(int64_t realtimeNs) override {
    const timespec t{static_cast<time_t>(realtimeNs / 1000000000),
                     static_cast<long>(realtimeNs % 1000000000)};
    if (::clock_settime(CLOCK_REALTIME, &t) != 0) {
      return Error::fromErrno("clock_settime(CLOCK_REALTIME)", errno);
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
