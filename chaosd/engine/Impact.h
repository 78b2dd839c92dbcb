#pragma once

#include <vector>

#include "chaosd/engine/RunResult.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// Time to detect and time to recover, per applied fault and probe, from the samples and the
// phase verdicts. A sample counts for a fault when it started while the fault was held (from
// apply to revert, or to the end of the samples if it never was). Every way a phase can fail
// has a moment it was first known, and the earliest of them is the time to detect:
// - "sample": a failing sample (what availability and successRate count): the end of the first
//   failing sample (a timeout is known only once it has run out);
// - "latency": a tolerance.latency bound the phase's verdict found broken (p95 < 200ms): the
//   end of the first sample whose latency breaks the bound itself (the first over 200 ms);
// - "baseline": the statistical mode's test rejected the phase: the end of the first sample
//   after which the test, run on the phase's samples up to and including that one against the
//   same reference, rejects. Up to 16 held samples the test is run after each; beyond, after
//   every ceil(n/256)-th of the n held samples for the count test (exceedance), every
//   ceil(n/16)-th for the block test (a bootstrap a look), then within the first stride that
//   rejects sample by sample when it is at most 16 long, else by bisection (exact when the
//   test, once it rejects, keeps rejecting within the stride).
// A phase that failed for want of samples has no moment, so no time to detect.
// A probe that detected a reverted fault has recovered at the first of kRecoverySamples
// samples in a row, started after the revert, that are good in the detection's sense: passing;
// for "latency" also within the broken bounds; for "baseline" also not above the test's
// threshold (the reference quantile raised by minEffect). Samples of every phase count, so
// recovery that only comes in the after phase is measured too.
// `specs` are the experiment's probes (the statistical test needs them); without them the
// "baseline" way is not looked at.
std::vector<ProbeImpact> impactOf(const FaultRecordOut& fault,
                                  const std::vector<ProbeRecord>& probes,
                                  const std::vector<ProbeSpec>& specs = {});

// Fills FaultRecordOut::impact for every fault of the run that was applied.
void computeImpacts(RunResult& result, const std::vector<ProbeSpec>& specs = {});

}  // namespace chaosd
