#pragma once

namespace chaosd {

class FaultRegistry;

// One function per fault family, each in its folder; registerBuiltinFaults calls them all.
void registerNetworkFaults(FaultRegistry& registry);
void registerProcessFaults(FaultRegistry& registry);
void registerDiskFaults(FaultRegistry& registry);
void registerSyscallFaults(FaultRegistry& registry);
void registerResourceFaults(FaultRegistry& registry);
void registerIoThrottleFault(FaultRegistry& registry);
void registerLinkFaults(FaultRegistry& registry);
void registerDnsFaults(FaultRegistry& registry);
void registerTimeFaults(FaultRegistry& registry);
void registerHttpFaults(FaultRegistry& registry);

}  // namespace chaosd
