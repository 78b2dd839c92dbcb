#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chaosd/engine/TargetResolution.h"
#include "experiments/model/Experiment.h"

// What an experiment's faults would touch, as keys two runs can be compared by, so the daemon
// refuses to run two experiments against the same interface, process or path at once.
namespace chaosd::daemon {

struct TargetKey {
  std::string key;     // "interface:netns app:veth0", "pid:1234", "path:/srv/data"
  std::string target;  // the target's name in the experiment
  std::string what;    // in words: "interface veth0 (netns app)"
};

// The keys of every target a fault step uses (exec targets are the run's own: none). Process
// targets are resolved now, against `processes` (every matching process counts, not only
// the ones a selection would pick); one that matches nothing keys on its selector.
std::vector<TargetKey> targetKeys(const Experiment& experiment, const ProcessTable* processes);

// Whether two keys name overlapping things: equal keys, or paths one inside the other.
bool keysOverlap(const std::string& a, const std::string& b);

}  // namespace chaosd::daemon
