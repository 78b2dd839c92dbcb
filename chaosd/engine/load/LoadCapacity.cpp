#include "chaosd/engine/load/LoadCapacity.h"

#include "chaosd/engine/load/LoadGenerator.h"

namespace chaosd {

Result<LoadCapacity> measureCapacity(const LoadSpec& load,
                                     const std::function<bool(Duration)>& wait,
                                     const std::function<void(const LoadCapacityStep&)>& onStep) {
  LoadCapacity out;
  if (!load.capacity) return out;
  out.spec = *load.capacity;
  for (const double rate : out.spec.rates()) {
    LoadSpec at = load;
    at.rate = rate;
    at.steps.clear();
    at.capacity.reset();
    LoadGenerator gen(at);
    CHAOSD_TRY(gen.start());
    gen.phaseStarted(Phase::kBefore);
    const bool waited = wait(out.spec.every);
    gen.phaseEnded(Phase::kBefore);
    // Waits for the requests due in the step (at most the load's timeout): they are its figures.
    gen.stop();
    if (!waited) {
      out.stopped = true;
      break;
    }
    LoadReport r = gen.report();
    LoadCapacityStep step;
    step.rate = rate;
    if (!r.phases.empty()) step.figures = std::move(r.phases[0]);
    out.steps.push_back(step);
    if (onStep) onStep(out.steps.back());
    if (!step.figures.held) {
      out.brokeAt = rate;
      break;
    }
    out.capacity = step.figures.throughput;
  }
  return out;
}

}  // namespace chaosd
