#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/ProcessTable.h"
#include "experiments/model/Experiment.h"
#include "experiments/model/FaultCatalog.h"

namespace chaosd {

// A target as it resolves on this machine right now: what `chaosctl plan` shows and what the
// engine checks before the baseline. Reads only; changes nothing.
struct ResolvedTarget {
  std::string name;
  TargetKind kind = TargetKind::kProcess;
  std::string selector;               // the selector in words
  bool usable = false;                // the target exists / something matches
  std::vector<std::string> details;   // one line each: matches, interface, filesystem
  std::vector<std::string> problems;  // missing, protected, over a guardrail
  std::vector<ProcessInfo> matched;   // kProcess
  std::vector<ProcessInfo> selected;  // kProcess: who would be hit
  std::optional<uint64_t> seed;       // the seed the selection used (when it chose)
  nlohmann::json containers;          // kContainer: [{id, name, pid, foundBy, selected}]
  nlohmann::json toJson() const;
};

class ContainerApi;

struct ResolveContext {
  const ProcessTable* processes = nullptr;  // scanned once per plan
  ContainerApi* containers = nullptr;       // the runtimes' APIs; nullptr: libcurl's
  ProtectionContext protection;
  // The experiment and its fault types: a container target that selects several containers is
  // a problem when one of its steps acts on one container only (ContainerView.h). nullptr:
  // only what the target's own view allows is said.
  const Experiment* experiment = nullptr;
  const FaultCatalog* catalog = nullptr;
};

ResolvedTarget resolveTarget(const TargetSpec& target, const Guardrails& guardrails,
                             const ResolveContext& context);

std::string describeSelector(const TargetSpec& target);

}  // namespace chaosd
