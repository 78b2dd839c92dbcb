#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chaosd/engine/journal/TargetKey.h"
#include "experiments/model/Experiment.h"
#include "injectors/process/TargetResolution.h"

// What an experiment's faults would touch (chaosd/engine/journal/TargetKey.h): the keys a run is
// journalled with, so that two runs never hold faults on the same interface, process or path.
namespace chaosd {

// The keys of every target a fault step uses (exec targets are the run's own: none). Process
// targets are resolved now, against `processes` (every matching process counts, not only
// the ones a selection would pick); one that matches nothing keys on its selector.
std::vector<TargetKey> targetKeys(const Experiment& experiment, const ProcessTable* processes);

}  // namespace chaosd
