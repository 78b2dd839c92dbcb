#pragma once

#include <cstdint>
#include <vector>

#include "chaosd/base/ProcessTable.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// How many of `available` candidates a selection takes: all; one; count(n) capped at what is
// there; percent(p) rounded up (so a non-empty selection never hits zero) — then capped by
// guardrails.maxTargets by the caller's check.
size_t selectionSize(const Selection& selection, size_t available);

// The deterministic choice: candidates sorted by pid, shuffled with std::mt19937_64(seed)
// (Fisher-Yates from the last element down, unbiased by rejection), the first selectionSize() taken
// and returned sorted by pid. The same seed and the same candidates give the same victims.
std::vector<ProcessInfo> selectProcesses(std::vector<ProcessInfo> candidates,
                                         const Selection& selection, uint64_t seed);

}  // namespace chaosd
