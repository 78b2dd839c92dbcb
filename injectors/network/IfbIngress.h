#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscUndo.h"
#include "injectors/network/TcKernel.h"

// Ingress faults: an ifb device of the fault's own (QdiscUndo::ifb) carrying the tree of
// QdiscTree.h, and on the interface an ingress qdisc (shared by the ingress faults on it,
// removed with the last filter) with the fault's u32 filters at its priorities, each with a
// mirred egress redirect (policy stolen) to its ifb: several ingress faults share an interface
// like egress ones.
namespace chaosd::qdisc {

// prepare: kConflict when the interface has an ingress (or clsact) qdisc that is not ours.
Result<void> checkIngressIsOurs(TcNetns& tc, int ifindex, const std::string& iface);
// apply: the ifb with the fault's tree, then the redirect filters on the interface.
Result<void> applyIngress(TcNetns& tc, int ifindex, const QdiscUndo& undo);
// revert: the redirect filters (and the ingress qdisc with the last of them), then the ifb
// with its tree. `ifindex` is the interface's lookup (kNotFound: gone, nothing to do there).
// Returns the leaf's counters ({} when the ifb was not there).
Result<nlohmann::json> revertIngress(TcNetns& tc, const Result<int>& ifindex,
                                     const QdiscUndo& undo);
// audit: appends the ifb and redirect filters left, one line each.
Result<void> auditIngress(TcNetns& tc, const Result<int>& ifindex, const QdiscUndo& undo,
                          std::vector<std::string>& out);

}  // namespace chaosd::qdisc
