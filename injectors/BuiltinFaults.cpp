#include "injectors/BuiltinFaults.h"

#include "injectors/FaultRegistry.h"

namespace chaosd {

void registerBuiltinFaults(FaultRegistry& registry) {
  registerNetworkFaults(registry);
  registerProcessFaults(registry);
  registerDiskFaults(registry);
  registerSyscallFaults(registry);
  registerResourceFaults(registry);
  registerIoThrottleFault(registry);
  registerLinkFaults(registry);
  registerDnsFaults(registry);
  registerTimeFaults(registry);
  registerHttpFaults(registry);
}

}  // namespace chaosd
