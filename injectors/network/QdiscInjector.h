#pragma once

#include <memory>
#include <string>
#include <vector>

#include "injectors/Injector.h"
#include "injectors/network/NetemSupport.h"  // kernelHasNetem(): whether netem is here
#include "injectors/network/QdiscContext.h"
#include "injectors/network/QdiscFilters.h"  // qdiscFilters, portBlocks: exposed for unit tests
#include "injectors/network/QdiscUndo.h"     // qdiscSlot, qdiscIfbName: exposed for unit tests
#include "injectors/network/TcKernel.h"

// The qdisc faults: network.delay/loss/duplicate/corrupt/reorder/rate (netem) and
// network.bandwidth (tbf), all through TcKernel (TcKernel.h: libnl-route in the target
// interface's namespace, or a fake in unit tests).
//
// Layout on the device (the interface for egress, the fault's own ifb for ingress):
//   root   HTB  c4a0:         ours, shared by every qdisc fault on the device
//   class  c4a0:1             default class at line rate: unmatched traffic
//   class  c4a0:M             one per fault, M derived from the fault id
//     leaf M:                 the fault's netem or tbf
//   filters u32 at parent c4a0:, priorities derived from M, steering matching packets to c4a0:M
// A revert deletes its filters and class; the last class of ours takes the root with it, and a
// root qdisc the user had before (snapshotted into the undo at prepare) is put back. Ingress:
// an ifb device of the fault's own (cdifb + hash of the fault id) carrying the tree above, and
// on the interface an ingress qdisc (shared by the ingress faults on it, removed with the last
// filter) with the fault's u32 filters at its priorities, each with a mirred egress redirect
// (policy stolen) to its ifb: several ingress faults share an interface like egress ones.
// docs/faults/network.md.
//
// The pieces: QdiscArgs.h and QdiscUndo.h (the typed args and undo record), QdiscFilters.h (u32
// keys from the args), TcKernel.h (the kernel surface; QdiscNetlink.h its libnl), QdiscRoot.h (the
// device's root saved and restored), QdiscTree.h (our HTB tree), IfbIngress.h (ingress),
// QdiscContext.h (what the injectors of one registry share).
namespace chaosd {

class QdiscInjector final : public Injector {
 public:
  // With a context of its own: it shares no tree lock and no snapshot of a user's root with
  // other injectors (tests, tools; a registry passes its shared one).
  QdiscInjector();
  explicit QdiscInjector(std::shared_ptr<QdiscContext> context);
  // Through `tc` rather than the kernel's netlink (a fake in unit tests).
  QdiscInjector(std::shared_ptr<QdiscContext> context, std::shared_ptr<TcKernel> tc);

  // Resolves the interface, checks the kernel (netem), snapshots the device's root qdisc and
  // decides class, priorities, filters and ifb name. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Idempotent; returns the leaf's packet and drop counters when it was still there.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<QdiscContext> context_;
  std::shared_ptr<TcKernel> tc_;
};

}  // namespace chaosd
