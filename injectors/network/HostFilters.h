#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/FaultRegistry.h"

// Host names in the packet filters of the network faults: `hosts` next to `cidr` (at the top
// of a partition or reset, inside `to` and `from` of the qdisc and NFQUEUE faults). Resolved
// into addresses (a /32 or /128 each) that join the `cidr` list, or with `refresh` a list of
// their own (`hostAddresses`); `hosts` itself is taken out, so the injectors see only
// addresses, and those are what the undo record holds.
namespace chaosd {

// Every address of a name (chaosd/base/HostNames.h resolveHostName in production).
using HostResolver = std::function<Result<std::vector<std::string>>(const std::string& name)>;

// `args` with every `hosts` list resolved. Fails (kNotFound, naming the field and the name)
// when a name resolves to nothing: never a silently empty filter. observed is
// {"hosts": {name: [addresses]}}, or null when the args name no host. When the args set
// `refresh`, the addresses are not folded into `cidr` but listed apart, sorted, in
// `hostAddresses` next to it (plain addresses): the injector keeps those in a set of their own
// that a refresh replaces.
Result<ResolvedArgs> resolveHostFilters(const nlohmann::json& args, const HostResolver& resolve);

// The same while the fault is held (always `hostAddresses`): a name that does not resolve now
// keeps its addresses in `lastHosts` ({name: [addresses]}) and is listed in `kept`; a name
// with no last addresses fails as above.
Result<RefreshedArgs> refreshHostFilters(const nlohmann::json& args,
                                         const nlohmann::json& lastHosts,
                                         const HostResolver& resolve);

// The ArgResolver and ArgRefresher of the network fault types, over the system's resolver.
ArgResolver hostFilterResolver();
ArgRefresher hostFilterRefresher();

}  // namespace chaosd
