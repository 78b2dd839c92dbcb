#pragma once

#include <string>
#include <vector>

#include "experiments/model/Experiment.h"

namespace chaosd {

// When each step of the method starts and ends, as offsets from the method's start, before
// anything runs. Steps run in order by default (each after the previous one ends); `at:` pins
// a start offset; `after: X` starts a step when X has ended; a parallel group's members start
// together and the group ends with the last of them.
struct TimelineEntry {
  std::string step;
  std::string group;  // the parallel group it belongs to, or ""
  StepKind kind = StepKind::kFault;
  std::string fault;
  std::string target;
  Duration start{0};
  Duration end{0};
};

struct Timeline {
  std::vector<TimelineEntry> entries;  // in start order (stable for equal starts)
  Duration total{0};                   // the method's span
  // When `after:` references form a cycle: the step names around it (first repeated last).
  std::vector<std::string> cycle;
  bool ok() const { return cycle.empty(); }
};

// Expects step names to be unique and `after:` to name existing steps (the parser checks
// both first).
Timeline computeTimeline(const std::vector<StepSpec>& method);

}  // namespace chaosd
