#include "injectors/network/IfbIngress.h"

#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/cls/u32.h>

#include <utility>

#include "injectors/network/QdiscTree.h"
#include "injectors/network/U32Classifier.h"

namespace chaosd::qdisc {
namespace {

using json = nlohmann::json;

const uint32_t kIngressHandle = TC_HANDLE(0xffff, 0);

Result<int> createIfb(nl_sock* sock, const std::string& name) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  int rc = rtnl_link_set_type(l.get(), "ifb");
  if (rc < 0) return nlError("link type ifb", rc);
  rtnl_link_set_flags(l.get(), IFF_UP);
  rc = rtnl_link_add(sock, l.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0) return nlError("creating ifb device " + name, rc);
  return ifindexOf(sock, name);
}

Result<void> deleteLink(nl_sock* sock, const std::string& name) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  const int rc = rtnl_link_delete(sock, l.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting " + name, rc);
  return success();
}

bool ourPrio(uint32_t prio) { return prio >= 2 && prio < 2 * kQdiscSlots + 4; }

// Whether the namespace has an ifb device of ours.
Result<bool> hasOurIfb(nl_sock* sock) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw);
  if (rc < 0) return nlError("listing links", rc);
  Cache links(raw);
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(o));
    if (name != nullptr && std::string(name).rfind(kQdiscIfbPrefix, 0) == 0) return true;
  }
  return false;
}

// Whether the interface's ingress qdisc is one chaosd added for its ingress faults: kind
// ingress (not clsact), every filter on it at a priority of our scheme, and an ifb of ours in
// the namespace. A user's own (tc's first filter takes priority 49152) is not.
Result<bool> ourIngress(nl_sock* sock, int ifindex, rtnl_qdisc* in) {
  if (std::string(rtnl_tc_get_kind(TC_CAST(in))) != "ingress") return false;
  auto prios = filterPrios(sock, ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  if (prios->empty()) return false;
  for (uint32_t p : *prios) {
    if (!ourPrio(p)) return false;
  }
  return hasOurIfb(sock);
}

// The interface's ingress qdisc (ffff:), shared by the ingress faults on it: added by the
// first, left alone when there.
Result<void> ensureIngressQdisc(nl_sock* sock, int ifindex) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  if (qdiscAt(cache->get(), ifindex, TC_H_INGRESS)) return success();
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  if (rc == 0) rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0 && rc != -NLE_EXIST) return nlError("adding the ingress qdisc", rc);
  return success();
}

// One of the fault's redirect filters on the interface's ingress qdisc: its u32 keys (the same
// filters as on its ifb), at its own priority, with a mirred egress redirect to its ifb.
Result<void> addRedirectFilter(nl_sock* sock, int ifindex, int ifbIndex, uint32_t slot,
                               const U32Filter& f) {
  Cls c = u32At(ifindex, kIngressHandle, prioFor(slot, f.family), f.family);
  int rc = setU32Keys(c.get(), f);
  if (rc == 0) rc = rtnl_u32_set_cls_terminal(c.get());
  rtnl_act* act = rtnl_act_alloc();
  if (act == nullptr) return Error(ErrorCode::kInternal, "rtnl_act_alloc failed");
  if (rc == 0) rc = rtnl_tc_set_kind(TC_CAST(act), "mirred");
  if (rc == 0) {
    // Returns a positive "unsupported" code for ingress actions, never for egress redirect.
    rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
    // Stolen: the packet goes to the ifb only (the default, pass, would deliver a copy too).
    rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
    rtnl_mirred_set_ifindex(act, static_cast<uint32_t>(ifbIndex));
    rc = rtnl_u32_add_action(c.get(), act);
  }
  rtnl_act_put(act);
  if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
  if (rc < 0) return nlError("adding an ingress redirect filter", rc);
  return success();
}

// Packets matching no fault's filters are delivered as usual, so several ingress faults share
// the interface, each with its ifb; a packet matching two goes to the one of lower priority.
Result<void> addIngressRedirect(nl_sock* sock, int ifindex, int ifbIndex, const QdiscUndo& undo) {
  CHAOSD_TRY(ensureIngressQdisc(sock, ifindex));
  for (const auto& f : undo.filters) {
    CHAOSD_TRY(addRedirectFilter(sock, ifindex, ifbIndex, undo.slot, f));
  }
  return success();
}

// The fault's redirect filters; the ingress qdisc too when no filter is left on it (without
// filters it does nothing: ours, the last ingress fault on the interface gone).
Result<void> removeRedirect(nl_sock* sock, int ifindex, const QdiscUndo& undo) {
  for (int family : undo.families()) {
    CHAOSD_TRY(deleteU32Filters(sock, ifindex, kIngressHandle, prioFor(undo.slot, family), family));
  }
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc in = qdiscAt(cache->get(), ifindex, TC_H_INGRESS);
  if (!in) return success();
  auto prios = filterPrios(sock, ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  if (prios->empty()) {
    const int rc = rtnl_qdisc_delete(sock, in.get());
    if (rc < 0 && !gone(rc)) return nlError("deleting the ingress qdisc of " + undo.iface, rc);
  }
  return success();
}

}  // namespace

Result<void> checkIngressIsOurs(nl_sock* sock, int ifindex, const std::string& iface) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc in = qdiscAt(cache->get(), ifindex, TC_H_INGRESS);
  if (!in) return success();
  auto ours = ourIngress(sock, ifindex, in.get());
  if (!ours) return std::move(ours).error();
  if (!*ours) {
    return Error(ErrorCode::kConflict,
                 iface +
                     " already has an ingress (or clsact) qdisc of its own: chaosd adds "
                     "its redirect filters only to an ingress qdisc of its own");
  }
  return success();
}

Result<void> applyIngress(nl_sock* sock, int ifindex, const QdiscUndo& undo) {
  auto ifbIndex = createIfb(sock, undo.ifb);
  if (!ifbIndex) return std::move(ifbIndex).error();
  CHAOSD_TRY(applyTree(sock, *ifbIndex, undo, undo.ifb));
  return addIngressRedirect(sock, ifindex, *ifbIndex, undo);
}

Result<json> revertIngress(nl_sock* sock, const Result<int>& ifindex, const QdiscUndo& undo) {
  if (ifindex) {
    CHAOSD_TRY(removeRedirect(sock, *ifindex, undo));
  } else if (ifindex.error().code() != ErrorCode::kNotFound) {
    return ifindex.error();
  }
  json observed = json::object();
  if (auto ifbIndex = ifindexOf(sock, undo.ifb)) {
    observed = leafCounters(sock, *ifbIndex, undo.slot);
  }
  CHAOSD_TRY(deleteLink(sock, undo.ifb));  // its qdiscs go with it
  return observed;
}

Result<void> auditIngress(nl_sock* sock, const Result<int>& ifindex, const QdiscUndo& undo,
                          std::vector<std::string>& out) {
  const std::string where = " in " + undo.where();
  if (ifindexOf(sock, undo.ifb)) out.push_back("ifb device " + undo.ifb + where);
  if (!ifindex) return success();
  auto prios = filterPrios(sock, *ifindex, kIngressHandle);
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
