#pragma once

#include <functional>

#include "chaosd/base/Result.h"
#include "chaosd/engine/load/LoadReport.h"

// `load.capacity`: the ramp that measures the service's capacity μ before the baseline. Each
// step runs the load's own request at one rate, open loop (a LoadGenerator of its own, new
// connections), for the step's length, and is judged by the load's tolerance; the ramp stops
// at the first step that does not hold it. μ is the throughput of the last step that held.
namespace chaosd {

// `wait(d)` waits d and returns false when the run was asked to stop (the ramp stops then,
// `stopped` set); `onStep` is told each step as it is judged. kInvalid when libcurl refuses the
// request (as LoadGenerator::start).
Result<LoadCapacity> measureCapacity(const LoadSpec& load,
                                     const std::function<bool(Duration)>& wait,
                                     const std::function<void(const LoadCapacityStep&)>& onStep);

}  // namespace chaosd
