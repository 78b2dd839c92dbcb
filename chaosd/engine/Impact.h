#pragma once

#include <vector>

#include "chaosd/engine/RunResult.h"

namespace chaosd {

// Time to detect and time to recover, per applied fault and probe, from the samples alone.
// A probe detects a fault with its first failing sample that started while the fault was
// held (applied .. reverted, or the end of the samples if it never was), at that sample's end:
// the moment the failure was known. A probe that
// detected a reverted fault has recovered at the first of kRecoverySamples passing samples in
// a row that started after the revert; samples of every phase count, so recovery that only
// comes in the after phase is measured too.
std::vector<ProbeImpact> impactOf(const FaultRecordOut& fault,
                                  const std::vector<ProbeRecord>& probes);

// Fills FaultRecordOut::impact for every fault of the run that was applied.
void computeImpacts(RunResult& result);

}  // namespace chaosd
