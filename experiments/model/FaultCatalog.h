#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "experiments/model/ArgSchema.h"
#include "experiments/model/TargetKind.h"

// What the experiment layer knows of a fault type: enough to validate and plan a step that
// names it. The injectors layer adds how to apply it (injectors/FaultRegistry.h), so the
// parser never depends on an injector.
namespace chaosd {

struct FaultTypeInfo {
  std::string name;                     // "network.delay"
  std::string summary;                  // one line for `chaosctl faults`
  std::vector<TargetKind> targetKinds;  // empty: the fault takes no target
  bool targetOptional = false;          // without a target it acts on the host (cpu.stress)
  ArgSchema schema;
  bool revertible = true;
  bool needsDuration = true;  // false for instantaneous faults (a single kill)
  // The fault outlives a reboot (a filler file): its intent is synced to disk before apply.
  bool survivesReboot = false;
  // Journalled and reverted like a fault, but never named by an experiment (process.exec:
  // the processes the engine starts for exec targets). Hidden from names().
  bool internal = false;
};

// The fault types an experiment may name.
class FaultCatalog {
 public:
  virtual ~FaultCatalog() = default;
  // nullptr when no type has this name.
  virtual const FaultTypeInfo* find(std::string_view name) const = 0;
  // Every name an experiment may use (internal types left out), sorted.
  virtual std::vector<std::string> names() const = 0;
};

}  // namespace chaosd
