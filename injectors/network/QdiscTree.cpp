#include "injectors/network/QdiscTree.h"

#include <netlink/errno.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/qdisc/htb.h>

#include <set>
#include <utility>

#include "injectors/network/QdiscRoot.h"
#include "injectors/network/U32Classifier.h"

namespace chaosd::qdisc {
namespace {

using json = nlohmann::json;

// HTB classes at "line rate": high enough that no device here reaches it (an HTB class at this
// rate did not reduce veth throughput), with buffers and quantum the kernel accepts.
constexpr uint64_t kLineRateBytes = 100'000'000'000ULL / 8;
constexpr uint32_t kHtbBuffer = 1U << 20;
constexpr uint32_t kHtbQuantum = 200000;

uint32_t ourRoot() { return TC_HANDLE(kQdiscRootMajor, 0); }

Class htbClass(int ifindex, uint32_t minor) {
  Class c(rtnl_class_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), ourRoot());
  rtnl_tc_set_handle(TC_CAST(c.get()), TC_HANDLE(kQdiscRootMajor, minor));
  return c;
}

Result<void> addHtbClass(nl_sock* sock, int ifindex, uint32_t minor, bool mayExist = false) {
  Class c = htbClass(ifindex, minor);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_rate64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_ceil64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_rbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_cbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_quantum(c.get(), kHtbQuantum);
  if (rc == 0) rc = rtnl_class_add(sock, c.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc == -NLE_EXIST && mayExist) return success();
  if (rc < 0) {
    const std::string name = hexHandle(TC_HANDLE(kQdiscRootMajor, minor));
    if (rc == -NLE_EXIST) {
      return Error(ErrorCode::kConflict,
                   "HTB class " + name +
                       " exists: another fault holds this slot (try again with another fault id)");
    }
    return nlError("adding HTB class " + name, rc);
  }
  return success();
}

// Over the kernel's default root: CREATE|EXCL, so when another process added our root since
// this one looked, the add fails with "exists" and this fault joins that tree instead of
// replacing it. Over a user's root: CREATE|REPLACE (the only way to replace one).
Result<void> addOurRoot(nl_sock* sock, int ifindex, bool priorDefault) {
  const uint32_t defcls = priorDefault ? kDefaultMinor : kDefaultMinorUserRoot;
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q.get()), ourRoot());
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_defcls(q.get(), defcls);
  if (rc == 0) {
    rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | (priorDefault ? NLM_F_EXCL : NLM_F_REPLACE));
  }
  if (rc == -NLE_EXIST && priorDefault) return addHtbClass(sock, ifindex, defcls, true);
  if (rc < 0) return nlError("adding the HTB root c4a0:", rc);
  return addHtbClass(sock, ifindex, defcls, true);
}

// Our root, unless the device has it already: only over the root prepare saw.
Result<void> ensureOurRoot(nl_sock* sock, int ifindex, const QdiscUndo& undo,
                           const std::string& dev) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  if (isOurRoot(root.get())) return success();
  const uint32_t handle = root ? rtnl_tc_get_handle(TC_CAST(root.get())) : 0;
  const std::string now = handle == 0 ? "default" : hexHandle(handle);
  const std::string then = undo.prior.isDefault() ? "default" : undo.prior.handle;
  if (now != then) {
    return Error(ErrorCode::kConflict, "the root qdisc of " + dev + " changed since prepare (" +
                                           then + " then, " + now + " now)");
  }
  return addOurRoot(sock, ifindex, then == "default");
}

Result<void> addSteeringFilter(nl_sock* sock, int ifindex, uint32_t slot, const U32Filter& f) {
  Cls c = u32At(ifindex, ourRoot(), prioFor(slot, f.family), f.family);
  int rc = setU32Keys(c.get(), f);
  if (rc == 0) rc = rtnl_u32_set_classid(c.get(), TC_HANDLE(kQdiscRootMajor, classMinor(slot)));
  // Without the terminal flag the match falls through to the default class.
  if (rc == 0) rc = rtnl_u32_set_cls_terminal(c.get());
  if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
  if (rc < 0) return nlError("adding a u32 filter", rc);
  return success();
}

// The fault classes of ours on the device (every class of our root but the default one).
Result<std::set<uint32_t>> ourClasses(nl_sock* sock, int ifindex) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_class_alloc_cache(sock, ifindex, &raw);
  if (rc < 0) return nlError("listing classes", rc);
  Cache cache(raw);
  std::set<uint32_t> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const uint32_t h = rtnl_tc_get_handle(TC_CAST(reinterpret_cast<rtnl_class*>(o)));
    if (TC_H_MAJ(h) == ourRoot() && TC_H_MIN(h) >= kClassBase) out.insert(TC_H_MIN(h));
  }
  return out;
}

json leafCounters(nl_cache* cache, int ifindex, uint32_t slot) {
  Qdisc leaf(rtnl_qdisc_get(cache, ifindex, TC_HANDLE(leafMajor(slot), 0)));
  if (!leaf) return json::object();
  return {{"packets", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_PACKETS)},
          {"bytes", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_BYTES)},
          {"drops", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_DROPS)},
          {"overlimits", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_OVERLIMITS)}};
}

// Another fault still uses the tree: only this one's filters and class go.
Result<void> removeFaultPart(nl_sock* sock, int ifindex, const QdiscUndo& undo) {
  for (int family : undo.families()) {
    CHAOSD_TRY(deleteU32Filters(sock, ifindex, ourRoot(), prioFor(undo.slot, family), family));
  }
  Class c = htbClass(ifindex, classMinor(undo.slot));
  const int rc = rtnl_class_delete(sock, c.get());
  if (rc < 0 && !gone(rc)) {
    return nlError("deleting class " + hexHandle(classMinor(undo.slot)), rc);
  }
  return success();
}

}  // namespace

std::string className(uint32_t slot) {
  return hexHandle(TC_HANDLE(kQdiscRootMajor, classMinor(slot)));
}

Result<void> applyTree(nl_sock* sock, int ifindex, const QdiscUndo& undo, const std::string& dev) {
  CHAOSD_TRY(ensureOurRoot(sock, ifindex, undo, dev));
  CHAOSD_TRY(addHtbClass(sock, ifindex, classMinor(undo.slot)));
  CHAOSD_TRY(addLeaf(sock, ifindex, undo.slot, undo.leaf));
  for (const auto& f : undo.filters) CHAOSD_TRY(addSteeringFilter(sock, ifindex, undo.slot, f));
  return success();
}

json leafCounters(nl_sock* sock, int ifindex, uint32_t slot) {
  auto cache = qdiscCache(sock);
  if (!cache) return json::object();
  return leafCounters(cache->get(), ifindex, slot);
}

Result<json> revertTree(QdiscContext& context, nl_sock* sock, int ifindex, const QdiscUndo& undo,
                        const std::string& dev) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  if (!isOurRoot(root.get())) return json::object();  // nothing of ours on the device
  json observed = leafCounters(cache->get(), ifindex, undo.slot);
  auto classes = ourClasses(sock, ifindex);
  if (!classes) return std::move(classes).error();
  classes->erase(classMinor(undo.slot));
  if (!classes->empty()) {
    CHAOSD_TRY(removeFaultPart(sock, ifindex, undo));
    return observed;
  }
  // The last fault on the device: deleting our root takes its classes, leaves and filters
  // with it (one request instead of three).
  const int rc = rtnl_qdisc_delete(sock, root.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting the HTB root c4a0: of " + dev, rc);
  CHAOSD_TRY(restoreRoot(sock, undo.prior, dev));
  if (auto key = deviceKey(ifindex)) context.forget(*key);
  return observed;
}

Result<void> auditTree(nl_sock* sock, int ifindex, const QdiscUndo& undo, const std::string& dev,
                       std::vector<std::string>& out) {
  const std::string where = " in " + undo.where();
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  if (!isOurRoot(qdiscAt(cache->get(), ifindex, TC_H_ROOT).get())) return success();
  auto classes = ourClasses(sock, ifindex);
  if (!classes) return std::move(classes).error();
  if (classes->count(classMinor(undo.slot)) != 0) {
    out.push_back("class " + className(undo.slot) + " of fault " + undo.faultId + " on " + dev +
                  where);
  }
  if (classes->empty()) {
    out.push_back("chaosd's HTB root c4a0: on " + dev + where + " with no fault class left");
  }
  auto prios = filterPrios(sock, ifindex, ourRoot());
  if (!prios) return std::move(prios).error();
  for (int family : undo.families()) {
    if (prios->count(prioFor(undo.slot, family)) != 0) {
      out.push_back("u32 filters of priority " + std::to_string(prioFor(undo.slot, family)) +
                    " on " + dev + where);
    }
  }
  return success();
}

}  // namespace chaosd::qdisc
