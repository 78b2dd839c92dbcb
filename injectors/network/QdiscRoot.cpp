#include "injectors/network/QdiscRoot.h"

#include <set>
#include <utility>

namespace chaosd::qdisc {
namespace {

// Classless kinds whose dumped options the kernel takes back as an add (tbf, pfifo and bfifo
// checked byte for byte in QdiscFaultTest; this kernel has no sfq or fq_codel).
const std::set<std::string> kRestorableKinds = {"pfifo",      "bfifo", "tbf",  "sfq", "fq_codel",
                                                "pfifo_fast", "netem", "prio", "red"};

// A user's root chaosd can recreate: a kind known to round-trip, without child qdiscs.
Result<void> checkRestorable(const std::vector<TcQdisc>& qdiscs, const TcQdisc& root,
                             const std::string& iface) {
  if (kRestorableKinds.count(root.kind) == 0) {
    return Error(ErrorCode::kUnsupported,
                 "the root qdisc of " + iface + " is " + root.kind + " (" + hexHandle(root.handle) +
                     "), which chaosd cannot snapshot and restore exactly; remove it or target "
                     "another interface");
  }
  for (const auto& q : qdiscs) {
    if (q.parent != TC_H_ROOT && q.parent != TC_H_INGRESS &&
        TC_H_MAJ(q.parent) == TC_H_MAJ(root.handle)) {
      return Error(ErrorCode::kUnsupported,
                   "the root qdisc of " + iface + " (" + root.kind + " " + hexHandle(root.handle) +
                       ") has child qdiscs, which chaosd cannot snapshot and restore");
    }
  }
  return success();
}

}  // namespace

const TcQdisc* qdiscAt(const std::vector<TcQdisc>& qdiscs, uint32_t parent) {
  for (const auto& q : qdiscs) {
    if (q.parent == parent) return &q;
  }
  return nullptr;
}

bool isOurRoot(const TcQdisc* q) {
  return q != nullptr && q->handle == ourRootHandle() && q->kind == "htb";
}

Result<RootSnapshot> snapshotRoot(TcNetns& tc, int ifindex, const std::string& iface) {
  auto qdiscs = tc.qdiscs(ifindex);
  if (!qdiscs) return std::move(qdiscs).error();
  const TcQdisc* root = qdiscAt(*qdiscs, TC_H_ROOT);
  RootSnapshot out;
  if (root == nullptr || root->handle == 0) return out;
  if (isOurRoot(root)) {
    out.ours = true;
    out.oursOverDefault = root->htbDefault == kDefaultMinor;
    return out;
  }
  CHAOSD_TRY(checkRestorable(*qdiscs, *root, iface));
  auto user = tc.rootRequest(ifindex);
  if (!user) return std::move(user).error().withContext("snapshotting the root qdisc of " + iface);
  out.prior = std::move(*user);
  return out;
}

Result<void> restoreRoot(TcNetns& tc, const QdiscPriorRoot& prior, const std::string& iface) {
  if (prior.isDefault()) return success();
  auto restored = tc.restoreRoot(prior);
  if (!restored) return std::move(restored).error().withContext("on " + iface);
  return success();
}

Result<std::string> deviceKey(TcNetns& tc, int ifindex) {
  auto id = tc.id();
  if (!id) return std::move(id).error();
  return *id + ":" + std::to_string(ifindex);
}

}  // namespace chaosd::qdisc
