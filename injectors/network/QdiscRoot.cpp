#include "injectors/network/QdiscRoot.h"

#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/route/qdisc/htb.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>
#include <utility>
#include <vector>

namespace chaosd::qdisc {
namespace {

// Classless kinds whose dumped options the kernel takes back as an add (tbf, pfifo and bfifo
// checked byte for byte in QdiscFaultTest; this kernel has no sfq or fq_codel).
const std::set<std::string> kRestorableKinds = {"pfifo",      "bfifo", "tbf",  "sfq", "fq_codel",
                                                "pfifo_fast", "netem", "prio", "red"};

// The TCA_OPTIONS attribute (header included) of the device's root qdisc exactly as the kernel
// dumps it. Re-adding a qdisc with the dumped options recreates it as it was: libnl's parsed
// copy loses precision (a tbf burst read back through microseconds comes back a few bytes
// short) and anything libnl does not model.
int onRootQdisc(nl_msg* m, void* arg) {
  auto* want = static_cast<std::pair<int, std::vector<unsigned char>>*>(arg);
  nlmsghdr* h = nlmsg_hdr(m);
  if (h->nlmsg_type != RTM_NEWQDISC) return NL_OK;
  const auto* t = static_cast<const tcmsg*>(nlmsg_data(h));
  if (t->tcm_ifindex != want->first || t->tcm_parent != TC_H_ROOT) return NL_OK;
  if (nlattr* o = nlmsg_find_attr(h, sizeof(tcmsg), TCA_OPTIONS)) {
    const auto* b = reinterpret_cast<const unsigned char*>(o);
    want->second.assign(b, b + o->nla_len);
  }
  return NL_OK;
}

Result<std::vector<unsigned char>> rawRootOptions(nl_sock* sock, int ifindex) {
  Msg req(nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_DUMP));
  if (!req) return Error(ErrorCode::kInternal, "nlmsg_alloc_simple failed");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  int rc = nlmsg_append(req.get(), &t, sizeof t, NLMSG_ALIGNTO);
  if (rc == 0) rc = nl_send_auto(sock, req.get());
  if (rc < 0) return nlError("dumping qdiscs", rc);
  std::pair<int, std::vector<unsigned char>> want{ifindex, {}};
  nl_cb* base = nl_socket_get_cb(sock);
  nl_cb* cb = nl_cb_clone(base);
  nl_cb_put(base);
  if (cb == nullptr) return Error(ErrorCode::kInternal, "nl_cb_clone failed");
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, onRootQdisc, &want);
  rc = nl_recvmsgs(sock, cb);
  nl_cb_put(cb);
  if (rc < 0) return nlError("dumping qdiscs", rc);
  return want.second;
}

// A user's root chaosd can recreate: a kind known to round-trip, without child qdiscs.
Result<void> checkRestorable(nl_cache* cache, int ifindex, rtnl_qdisc* root,
                             const std::string& iface) {
  const std::string kind = rtnl_tc_get_kind(TC_CAST(root));
  const uint32_t handle = rtnl_tc_get_handle(TC_CAST(root));
  if (kRestorableKinds.count(kind) == 0) {
    return Error(ErrorCode::kUnsupported,
                 "the root qdisc of " + iface + " is " + kind + " (" + hexHandle(handle) +
                     "), which chaosd cannot snapshot and restore exactly; remove it or target "
                     "another interface");
  }
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* q = reinterpret_cast<rtnl_qdisc*>(o);
    const uint32_t parent = rtnl_tc_get_parent(TC_CAST(q));
    if (rtnl_tc_get_ifindex(TC_CAST(q)) == ifindex && parent != TC_H_ROOT &&
        parent != TC_H_INGRESS && TC_H_MAJ(parent) == TC_H_MAJ(handle)) {
      return Error(ErrorCode::kUnsupported,
                   "the root qdisc of " + iface + " (" + kind + " " + hexHandle(handle) +
                       ") has child qdiscs, which chaosd cannot snapshot and restore");
    }
  }
  return success();
}

// The add request that recreates the user's root: its kind, handle and dumped options.
Result<QdiscPriorRoot> userRoot(nl_sock* sock, int ifindex, rtnl_qdisc* root,
                                const std::string& iface) {
  const std::string kind = rtnl_tc_get_kind(TC_CAST(root));
  const uint32_t handle = rtnl_tc_get_handle(TC_CAST(root));
  auto opts = rawRootOptions(sock, ifindex);
  if (!opts) return std::move(opts).error();
  Msg msg(nlmsg_alloc_simple(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL));
  if (!msg) return Error(ErrorCode::kInternal, "nlmsg_alloc_simple failed");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_handle = handle;
  t.tcm_parent = TC_H_ROOT;
  int rc = nlmsg_append(msg.get(), &t, sizeof t, NLMSG_ALIGNTO);
  if (rc == 0) rc = nla_put_string(msg.get(), TCA_KIND, kind.c_str());
  if (rc == 0 && !opts->empty()) {
    const auto* a = reinterpret_cast<const nlattr*>(opts->data());
    rc = nla_put(msg.get(), a->nla_type, nla_len(a), nla_data(a));
  }
  if (rc < 0) return nlError("snapshotting the root qdisc of " + iface, rc);
  nlmsghdr* h = nlmsg_hdr(msg.get());
  const auto* bytes = reinterpret_cast<const unsigned char*>(h);
  return QdiscPriorRoot{kind, hexHandle(handle), {bytes, bytes + h->nlmsg_len}};
}

}  // namespace

bool isOurRoot(rtnl_qdisc* q) {
  return q != nullptr && rtnl_tc_get_handle(TC_CAST(q)) == TC_HANDLE(kQdiscRootMajor, 0) &&
         std::string(rtnl_tc_get_kind(TC_CAST(q))) == "htb";
}

Result<RootSnapshot> snapshotRoot(nl_sock* sock, int ifindex, const std::string& iface) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  RootSnapshot out;
  if (!root || rtnl_tc_get_handle(TC_CAST(root.get())) == 0) return out;
  if (isOurRoot(root.get())) {
    out.ours = true;
    out.oursOverDefault = rtnl_htb_get_defcls(root.get()) == kDefaultMinor;
    return out;
  }
  CHAOSD_TRY(checkRestorable(cache->get(), ifindex, root.get(), iface));
  auto user = userRoot(sock, ifindex, root.get(), iface);
  if (!user) return std::move(user).error();
  out.prior = std::move(*user);
  return out;
}

Result<void> restoreRoot(nl_sock* sock, const QdiscPriorRoot& prior, const std::string& iface) {
  if (prior.request.empty()) return success();
  if (prior.request.size() < sizeof(nlmsghdr)) {
    return Error(ErrorCode::kInvalid, "short snapshot");
  }
  // nlmsg_convert copies nlmsg_len bytes: never more than the record holds.
  std::vector<unsigned char> bytes = prior.request;
  auto* h = reinterpret_cast<nlmsghdr*>(bytes.data());
  if (h->nlmsg_len > bytes.size()) return Error(ErrorCode::kInvalid, "short snapshot");
  Msg msg(nlmsg_convert(h));
  if (!msg) return Error(ErrorCode::kInternal, "nlmsg_convert failed");
  const int rc = sendAndAck(sock, msg.get());
  if (rc < 0 && rc != -NLE_EXIST) {
    return nlError("restoring the root qdisc " + prior.kind + " " + prior.handle + " of " + iface,
                   rc);
  }
  return success();
}

Result<std::string> deviceKey(int ifindex) {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) {
    return Error::fromErrno("stat /proc/thread-self/ns/net", errno);
  }
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(ifindex);
}

}  // namespace chaosd::qdisc
