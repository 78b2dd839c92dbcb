#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "experiments/model/FaultCatalog.h"
#include "injectors/ExecHook.h"
#include "injectors/Injector.h"

namespace chaosd {

using InjectorFactory = std::function<std::unique_ptr<Injector>()>;

// Args that name things of the machine (host names) made into what the injector takes
// (addresses), with what was found for the report.
struct ResolvedArgs {
  nlohmann::json args;      // what the injector gets
  nlohmann::json observed;  // {"hosts": {"db.internal": ["10.0.0.5"]}}, or null
};
using ArgResolver = std::function<Result<ResolvedArgs>(const nlohmann::json& args)>;

// The same while a fault is held (its `refresh` arg): a name that does not resolve now keeps
// the addresses it had (`lastHosts`: observed.hosts of the last resolution) instead of failing,
// and is listed in `kept` with the resolver's reason.
struct RefreshedArgs {
  ResolvedArgs resolved;
  std::map<std::string, std::string> kept;  // name -> why it kept its last addresses
};
using ArgRefresher = std::function<Result<RefreshedArgs>(const nlohmann::json& args,
                                                         const nlohmann::json& lastHosts)>;

// A fault type as the experiment names it (FaultTypeInfo) and, once its family is
// implemented, a factory for the injector that applies it.
struct FaultType : FaultTypeInfo {
  InjectorFactory factory;  // empty while the family is not implemented in this build
  // Empty when the args name nothing to resolve. Called by `plan`, at the run's start for
  // every step (a failure stops the run before any fault), and when the step is prepared
  // (what it returns then is what is applied, journalled and reported).
  ArgResolver resolveArgs;
  // Empty when the type cannot follow its names while held. Called by the engine every
  // `refresh` (the arg, in nanoseconds) while a fault whose args set it is held; when the
  // addresses change, the injector's reprepare() and update() move the fault to them.
  ArgRefresher refreshArgs;
};

class FaultRegistry final : public FaultCatalog {
 public:
  // Fails with kConflict when the name is taken.
  Result<void> add(FaultType type);
  const FaultType* find(std::string_view name) const override;
  std::vector<std::string> names() const override;  // without internal types

  // What a family adds to the start of exec targets its faults aim at (injectors/ExecHook.h).
  void addExecHook(ExecHook hook) { execHooks_.push_back(std::move(hook)); }
  const std::vector<ExecHook>& execHooks() const { return execHooks_; }

 private:
  std::map<std::string, FaultType, std::less<>> types_;
  std::vector<ExecHook> execHooks_;
};

// Registers every fault type chaosd ships. Explicit (no static self-registration), so a
// static library cannot silently drop one.
void registerBuiltinFaults(FaultRegistry& registry);

}  // namespace chaosd
