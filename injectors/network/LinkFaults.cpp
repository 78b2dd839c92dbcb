// The network.down fault type (docs/faults/network-down.md). It takes no arguments: the target
// names the link, and the step's duration how long it stays down.
#include <memory>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/network/LinkDownInjector.h"

namespace chaosd {

void registerLinkFaults(FaultRegistry& registry) {
  std::shared_ptr<LinkKernel> kernel = netlinkLinkKernel();
  FaultType type;
  type.name = "network.down";
  type.summary =
      "take an interface down and bring it back with its addresses and routes (refuses the "
      "default route's and the SSH session's interface unless guardrails allow it)";
  type.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  type.factory = [kernel] { return std::make_unique<LinkDownInjector>(kernel); };
  (void)registry.add(std::move(type));
}

}  // namespace chaosd
