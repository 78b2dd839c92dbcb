#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/core/Result.h"
#include "injectors/ArgSchema.h"
#include "injectors/Injector.h"

namespace chaosd {

// What a fault may be aimed at; the experiment's target must be of one of these kinds.
enum class TargetKind { kProcess, kExec, kInterface, kPath };
std::string_view targetKindName(TargetKind kind);

using InjectorFactory = std::function<std::unique_ptr<Injector>()>;

// A fault type as the experiment names it: its schema and, once its family is implemented,
// a factory for the injector that applies it.
struct FaultType {
  std::string name;                     // "network.delay"
  std::string summary;                  // one line for `chaosctl faults`
  std::vector<TargetKind> targetKinds;  // empty: the fault takes no target
  ArgSchema schema;
  bool revertible = true;
  bool needsDuration = true;  // false for instantaneous faults (a single kill)
  // The fault outlives a reboot (a filler file): its intent is synced to disk before apply.
  bool survivesReboot = false;
  InjectorFactory factory;  // empty while the family is not implemented in this build
  // Journalled and reverted like a fault, but never named by an experiment (process.exec:
  // the processes the engine starts for exec targets). Hidden from names().
  bool internal = false;
};

class FaultRegistry {
 public:
  // Fails with kConflict when the name is taken.
  Result<void> add(FaultType type);
  const FaultType* find(std::string_view name) const;
  std::vector<std::string> names() const;  // without internal types

 private:
  std::map<std::string, FaultType, std::less<>> types_;
};

// Registers every fault type chaosd ships. Explicit (no static self-registration), so a
// static library cannot silently drop one.
void registerBuiltinFaults(FaultRegistry& registry);

}  // namespace chaosd
