#include "injectors/network/IfbIngress.h"

#include <utility>

#include "injectors/network/QdiscRoot.h"
#include "injectors/network/QdiscTree.h"

namespace chaosd::qdisc {
namespace {

using json = nlohmann::json;

const uint32_t kIngressHandle = tcHandle(0xffff, 0);

bool ourPrio(uint32_t prio) { return prio >= 2 && prio < 2 * kQdiscSlots + 4; }

// Whether the namespace has an ifb device of ours.
Result<bool> hasOurIfb(TcNetns& tc) {
  auto links = tc.links();
  if (!links) return std::move(links).error();
  for (const auto& name : *links) {
    if (name.rfind(kQdiscIfbPrefix, 0) == 0) return true;
  }
  return false;
}

// Whether the interface's ingress qdisc is one chaosd added for its ingress faults: kind
// ingress (not clsact), every filter on it at a priority of our scheme, and an ifb of ours in
// the namespace. A user's own (tc's first filter takes priority 49152) is not.
Result<bool> ourIngress(TcNetns& tc, int ifindex, const TcQdisc& in) {
  if (in.kind != "ingress") return false;
  auto prios = tc.filterPrios(ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  if (prios->empty()) return false;
  for (uint32_t p : *prios) {
    if (!ourPrio(p)) return false;
  }
  return hasOurIfb(tc);
}

// The interface's ingress qdisc (ffff:), shared by the ingress faults on it: added by the
// first, left alone when there.
Result<void> ensureIngressQdisc(TcNetns& tc, int ifindex) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  if (qdiscAt(*qdiscs, TC_H_INGRESS) != nullptr) return success();
  auto added = tc.addIngressQdisc(ifindex);
  if (!added && added.error().code() != ErrorCode::kConflict) return added;
  return success();
}

// Packets matching no fault's filters are delivered as usual, so several ingress faults share
// the interface, each with its ifb; a packet matching two goes to the one of lower priority.
// Each redirect filter has the fault's u32 keys (the same filters as on its ifb), at its own
// priority.
Result<void> addIngressRedirect(TcNetns& tc, int ifindex, int ifbIndex, const QdiscUndo& undo) {
  CHAOSD_TRY(ensureIngressQdisc(tc, ifindex));
  for (const auto& f : undo.filters) {
    CHAOSD_TRY(
        tc.addMirredRedirect(ifindex, kIngressHandle, prioFor(undo.slot, f.family), f, ifbIndex));
  }
  return success();
}

// The fault's redirect filters; the ingress qdisc too when no filter is left on it (without
// filters it does nothing: ours, the last ingress fault on the interface gone).
Result<void> removeRedirect(TcNetns& tc, int ifindex, const QdiscUndo& undo) {
  for (int family : undo.families()) {
    CHAOSD_TRY(tc.deleteU32Filters(ifindex, kIngressHandle, prioFor(undo.slot, family), family));
  }
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  if (qdiscAt(*qdiscs, TC_H_INGRESS) == nullptr) return success();
  auto prios = tc.filterPrios(ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  if (!prios->empty()) return success();
  auto deleted = tc.deleteQdisc(ifindex, TC_H_INGRESS, kIngressHandle);
  if (!deleted) return std::move(deleted).error().withContext("on " + undo.iface);
  return success();
}

}  // namespace

Result<void> checkIngressIsOurs(TcNetns& tc, int ifindex, const std::string& iface) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  const TcQdisc* in = qdiscAt(*qdiscs, TC_H_INGRESS);
  if (in == nullptr) return success();
  auto ours = ourIngress(tc, ifindex, *in);
  if (!ours) return std::move(ours).error();
  if (!*ours) {
    return Error(ErrorCode::kConflict,
                 iface +
                     " already has an ingress (or clsact) qdisc of its own: chaosd adds "
                     "its redirect filters only to an ingress qdisc of its own");
  }
  return success();
}

Result<void> applyIngress(TcNetns& tc, int ifindex, const QdiscUndo& undo) {
  auto ifbIndex = tc.createIfb(undo.ifb);
  if (!ifbIndex) return std::move(ifbIndex).error();
  CHAOSD_TRY(applyTree(tc, *ifbIndex, undo, undo.ifb));
  return addIngressRedirect(tc, ifindex, *ifbIndex, undo);
}

Result<json> revertIngress(TcNetns& tc, const Result<int>& ifindex, const QdiscUndo& undo) {
  if (ifindex) {
    CHAOSD_TRY(removeRedirect(tc, *ifindex, undo));
  } else if (ifindex.error().code() != ErrorCode::kNotFound) {
    return ifindex.error();
  }
  json observed = json::object();
  if (auto ifbIndex = tc.ifindex(undo.ifb)) observed = leafCounters(tc, *ifbIndex, undo.slot);
  CHAOSD_TRY(tc.deleteLink(undo.ifb));  // its qdiscs go with it
  return observed;
}

Result<void> auditIngress(TcNetns& tc, const Result<int>& ifindex, const QdiscUndo& undo,
                          std::vector<std::string>& out) {
  const std::string where = " in " + undo.where();
  if (tc.ifindex(undo.ifb)) out.push_back("ifb device " + undo.ifb + where);
  if (!ifindex) return success();
  auto prios = tc.filterPrios(*ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  for (int family : undo.families()) {
    if (prios->count(prioFor(undo.slot, family)) != 0) {
      out.push_back("ingress redirect filters of priority " +
                    std::to_string(prioFor(undo.slot, family)) + " on " + undo.iface + where);
    }
  }
  return success();
}

}  // namespace chaosd::qdisc
