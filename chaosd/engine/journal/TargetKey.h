#pragma once

#include <string>

// What a run's faults touch, as keys two runs can be compared by: the journal records them
// with the run, so that no two runs (of `chaosctl run`, of the daemon, of both) hold faults on
// the same interface, process or path at once. The keys are computed by targetKeys()
// (chaosd/engine/TargetKeys.h).
namespace chaosd {

struct TargetKey {
  std::string key;     // "interface:netns app:veth0", "pid:1234", "path:/srv/data"
  std::string target;  // the target's name in the experiment
  std::string what;    // in words: "interface veth0 (netns app)"

  friend bool operator==(const TargetKey&, const TargetKey&) = default;
};

// Whether two keys name overlapping things: equal keys, or paths one inside the other.
bool keysOverlap(const std::string& a, const std::string& b);

}  // namespace chaosd
