#include "chaosd/engine/Impact.h"

#include <algorithm>

#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {

std::vector<ProbeImpact> impactOf(const FaultRecordOut& fault,
                                  const std::vector<ProbeRecord>& probes) {
  std::vector<ProbeImpact> out;
  if (!fault.appliedMono) return out;
  const Clock::TimePoint applied = *fault.appliedMono;
  for (const auto& probe : probes) {
    ProbeImpact impact;
    impact.probe = probe.name;
    const ProbeSample* failure = firstFailure(probe.samples, applied);
    if (failure != nullptr && (!fault.revertedMono || failure->start <= *fault.revertedMono)) {
      impact.detected = true;
      // Detected when the failure was seen: the end of the sample (a timeout is known only
      // once it has run out), not when the sample was sent.
      impact.detectedAfter = failure->start + failure->duration - applied;
      impact.detail = failure->detail;
      if (fault.revertedMono) {
        if (const ProbeSample* back = recoveredAt(probe.samples, *fault.revertedMono)) {
          impact.recovered = true;
          impact.recoveredAfter = back->start - *fault.revertedMono;
        }
      }
    }
    out.push_back(std::move(impact));
  }
  return out;
}

void computeImpacts(RunResult& result) {
  for (auto& fault : result.faults) fault.impact = impactOf(fault, result.probes);
}

}  // namespace chaosd
