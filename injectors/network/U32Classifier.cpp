#include "injectors/network/U32Classifier.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/errno.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/cls/u32.h>

namespace chaosd::qdisc {
namespace {

uint16_t ethProto(int family) {
  return family == 4 ? ETH_P_IP : family == 6 ? ETH_P_IPV6 : ETH_P_ALL;
}

// A u32 classifier on the device at parent, with priority prio, for the family's protocol
// (4: IP, 6: IPv6, else all).
Cls u32At(int ifindex, uint32_t parent, uint32_t prio, int family) {
  Cls c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), parent);
  rtnl_cls_set_prio(c.get(), static_cast<uint16_t>(prio));
  rtnl_cls_set_protocol(c.get(), ethProto(family));
  return c;
}

// Makes c a terminal u32 classifier matching the filter's keys (without the terminal flag the
// match falls through to the default class); a libnl error code.
int setU32Keys(rtnl_cls* c, const U32Filter& filter) {
  int rc = rtnl_tc_set_kind(TC_CAST(c), "u32");
  for (const auto& k : filter.keys) {
    if (rc < 0) break;
    rc = rtnl_u32_add_key(c, htonl(k.value), htonl(k.mask), k.offset, 0);
  }
  if (rc == 0) rc = rtnl_u32_set_cls_terminal(c);
  return rc;
}

}  // namespace

Result<void> addU32Filter(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                          const U32Filter& filter, uint32_t classid) {
  Cls c = u32At(ifindex, parent, prio, filter.family);
  int rc = setU32Keys(c.get(), filter);
  if (rc == 0) rc = rtnl_u32_set_classid(c.get(), classid);
  if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
  if (rc < 0) return nlError("adding a u32 filter", rc);
  return success();
}

Result<void> addMirredRedirect(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                               const U32Filter& filter, int toIfindex) {
  Cls c = u32At(ifindex, parent, prio, filter.family);
  int rc = setU32Keys(c.get(), filter);
  rtnl_act* act = rtnl_act_alloc();
  if (act == nullptr) return Error(ErrorCode::kInternal, "rtnl_act_alloc failed");
  if (rc == 0) rc = rtnl_tc_set_kind(TC_CAST(act), "mirred");
  if (rc == 0) {
    // Returns a positive "unsupported" code for ingress actions, never for egress redirect.
    rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
    // Stolen: the packet goes to the ifb only (the default, pass, would deliver a copy too).
    rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
    rtnl_mirred_set_ifindex(act, static_cast<uint32_t>(toIfindex));
    rc = rtnl_u32_add_action(c.get(), act);
  }
  rtnl_act_put(act);
  if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
  if (rc < 0) return nlError("adding an ingress redirect filter", rc);
  return success();
}

Result<void> deleteU32Filters(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                              int family) {
  Cls c = u32At(ifindex, parent, prio, family);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "u32");
  if (rc == 0) rc = rtnl_cls_delete(sock, c.get(), 0);
  if (rc < 0 && !gone(rc) && rc != -NLE_INVAL) return nlError("deleting u32 filters", rc);
  return success();
}

Result<std::set<uint32_t>> filterPrios(nl_sock* sock, int ifindex, uint32_t parent) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_cls_alloc_cache(sock, ifindex, parent, &raw);
  if (rc < 0) {
    if (gone(rc) || rc == -NLE_INVAL) return std::set<uint32_t>{};
    return nlError("listing filters", rc);
  }
  Cache cache(raw);
  std::set<uint32_t> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    out.insert(rtnl_cls_get_prio(reinterpret_cast<rtnl_cls*>(o)));
  }
  return out;
}

}  // namespace chaosd::qdisc
