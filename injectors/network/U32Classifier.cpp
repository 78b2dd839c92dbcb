#include "injectors/network/U32Classifier.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netlink/errno.h>
#include <netlink/route/cls/u32.h>

namespace chaosd::qdisc {
namespace {

uint16_t ethProto(int family) {
  return family == 4 ? ETH_P_IP : family == 6 ? ETH_P_IPV6 : ETH_P_ALL;
}

}  // namespace

Cls u32At(int ifindex, uint32_t parent, uint32_t prio, int family) {
  Cls c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), parent);
  rtnl_cls_set_prio(c.get(), static_cast<uint16_t>(prio));
  rtnl_cls_set_protocol(c.get(), ethProto(family));
  return c;
}

int setU32Keys(rtnl_cls* c, const U32Filter& filter) {
  int rc = rtnl_tc_set_kind(TC_CAST(c), "u32");
  for (const auto& k : filter.keys) {
    if (rc < 0) break;
    rc = rtnl_u32_add_key(c, htonl(k.value), htonl(k.mask), k.offset, 0);
  }
  return rc;
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
