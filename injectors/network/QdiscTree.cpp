#include "injectors/network/QdiscTree.h"

#include <set>
#include <utility>

#include "injectors/network/QdiscRoot.h"

namespace chaosd::qdisc {
namespace {

using json = nlohmann::json;

uint32_t classId(uint32_t minor) { return tcHandle(kQdiscRootMajor, minor); }

Result<void> addHtbClass(TcNetns& tc, int ifindex, uint32_t minor, bool mayExist = false) {
  auto added = tc.addHtbClass(ifindex, classId(minor));
  if (added || added.error().code() != ErrorCode::kConflict) return added;
  if (mayExist) return success();
  return Error(ErrorCode::kConflict,
               "HTB class " + hexHandle(classId(minor)) +
                   " exists: another fault holds this slot (try again with another fault id)");
}

// Over the kernel's default root: exclusive, so when another process added our root since
// this one looked, the add fails with "exists" and this fault joins that tree instead of
// replacing it. Over a user's root: replacing it (the only way to replace one).
Result<void> addOurRoot(TcNetns& tc, int ifindex, bool priorDefault) {
  const uint32_t defcls = priorDefault ? kDefaultMinor : kDefaultMinorUserRoot;
  auto added = tc.addHtbRoot(ifindex, ourRootHandle(), defcls,
                             priorDefault ? TcRootAdd::kExclusive : TcRootAdd::kReplace);
  const bool joined = !added && added.error().code() == ErrorCode::kConflict && priorDefault;
  if (!added && !joined) return added;
  return addHtbClass(tc, ifindex, defcls, true);
}

// Our root, unless the device has it already: only over the root prepare saw.
Result<void> ensureOurRoot(TcNetns& tc, int ifindex, const QdiscUndo& undo,
                           const std::string& dev) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  const TcQdisc* root = qdiscAt(*qdiscs, TC_H_ROOT);
  if (isOurRoot(root)) return success();
  const uint32_t handle = root != nullptr ? root->handle : 0;
  const std::string now = handle == 0 ? "default" : hexHandle(handle);
  const std::string then = undo.prior.isDefault() ? "default" : undo.prior.handle;
  if (now != then) {
    return Error(ErrorCode::kConflict, "the root qdisc of " + dev + " changed since prepare (" +
                                           then + " then, " + now + " now)");
  }
  return addOurRoot(tc, ifindex, then == "default");
}

// The fault classes of ours on the device (every class of our root but the default one).
Result<std::set<uint32_t>> ourClasses(TcNetns& tc, int ifindex) {
  auto classes = tc.classes(ifindex);
  if (!classes) return std::move(classes).error();
  std::set<uint32_t> out;
  for (const auto& c : *classes) {
    if (TC_H_MAJ(c.handle) == ourRootHandle() && TC_H_MIN(c.handle) >= kClassBase) {
      out.insert(TC_H_MIN(c.handle));
    }
  }
  return out;
}

json leafCounters(const std::vector<TcQdisc>& qdiscs, uint32_t slot) {
  for (const auto& q : qdiscs) {
    if (q.handle != tcHandle(leafMajor(slot), 0)) continue;
    return {{"packets", q.counters.packets},
            {"bytes", q.counters.bytes},
            {"drops", q.counters.drops},
            {"overlimits", q.counters.overlimits}};
  }
  return json::object();
}

// Another fault still uses the tree: only this one's filters and class go (the filters first:
// the kernel refuses to delete an HTB class a filter points to).
Result<void> removeFaultPart(TcNetns& tc, int ifindex, const QdiscUndo& undo) {
  for (int family : undo.families()) {
    CHAOSD_TRY(tc.deleteU32Filters(ifindex, ourRootHandle(), prioFor(undo.slot, family), family));
  }
  return tc.deleteClass(ifindex, classId(classMinor(undo.slot)));
}

}  // namespace

std::string className(uint32_t slot) { return hexHandle(classId(classMinor(slot))); }

Result<void> applyTree(TcNetns& tc, int ifindex, const QdiscUndo& undo, const std::string& dev) {
  CHAOSD_TRY(ensureOurRoot(tc, ifindex, undo, dev));
  CHAOSD_TRY(addHtbClass(tc, ifindex, classMinor(undo.slot)));
  CHAOSD_TRY(tc.addLeaf(ifindex, classId(classMinor(undo.slot)), tcHandle(leafMajor(undo.slot), 0),
                        undo.leaf));
  for (const auto& f : undo.filters) {
    CHAOSD_TRY(tc.addU32Filter(ifindex, ourRootHandle(), prioFor(undo.slot, f.family), f,
                               classId(classMinor(undo.slot))));
  }
  return success();
}

json leafCounters(TcNetns& tc, int ifindex, uint32_t slot) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return json::object();
  return leafCounters(*qdiscs, slot);
}

Result<json> revertTree(QdiscContext& context, TcNetns& tc, int ifindex, const QdiscUndo& undo,
                        const std::string& dev) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  const TcQdisc* root = qdiscAt(*qdiscs, TC_H_ROOT);
  if (!isOurRoot(root)) {
    // Nothing of ours there. But the kernel's default root where the record names a user's
    // root means an earlier revert deleted our tree and then failed to restore theirs (or
    // something deleted our tree meanwhile): the user's root is still ours to bring back.
    if ((root == nullptr || root->handle == 0) && !undo.prior.isDefault()) {
      CHAOSD_TRY(restoreRoot(tc, undo.prior, dev));
      return json{{"note", "restored the root qdisc " + undo.prior.handle + " of " + dev +
                               " that an earlier revert left to the kernel's default"}};
    }
    return json::object();
  }
  json observed = leafCounters(*qdiscs, undo.slot);
  auto classes = ourClasses(tc, ifindex);
  if (!classes) return std::move(classes).error();
  classes->erase(classMinor(undo.slot));
  if (!classes->empty()) {
    CHAOSD_TRY(removeFaultPart(tc, ifindex, undo));
    return observed;
  }
  // The last fault on the device: deleting our root takes its classes, leaves and filters
  // with it (one request instead of three).
  auto deleted = tc.deleteQdisc(ifindex, TC_H_ROOT, ourRootHandle());
  if (!deleted) return std::move(deleted).error().withContext("on " + dev);
  CHAOSD_TRY(restoreRoot(tc, undo.prior, dev));
  if (auto key = deviceKey(tc, ifindex)) context.forget(*key);
  return observed;
}

Result<void> auditTree(TcNetns& tc, int ifindex, const QdiscUndo& undo, const std::string& dev,
                       std::vector<std::string>& out) {
  const std::string where = " in " + undo.where();
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  if (!isOurRoot(qdiscAt(*qdiscs, TC_H_ROOT))) return success();
  auto classes = ourClasses(tc, ifindex);
  if (!classes) return std::move(classes).error();
  if (classes->count(classMinor(undo.slot)) != 0) {
    out.push_back("class " + className(undo.slot) + " of fault " + undo.faultId + " on " + dev +
                  where);
  }
  if (classes->empty()) {
    out.push_back("chaosd's HTB root c4a0: on " + dev + where + " with no fault class left");
  }
  auto prios = tc.filterPrios(ifindex, ourRootHandle());
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
