// The request that recreates a device's root qdisc, and sending it back: TcNetns's rootRequest
// and restoreRoot over libnl (QdiscNetlink.h).
#include <linux/pkt_sched.h>
#include <netlink/errno.h>

#include <utility>
#include <vector>

#include "injectors/network/QdiscNetlink.h"

namespace chaosd::qdisc {
namespace {

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

// The device's root as listed: kind and handle (kNotFound for the kernel's default).
Result<std::pair<std::string, uint32_t>> rootOf(nl_sock* sock, int ifindex) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_qdisc_alloc_cache(sock, &raw);
  if (rc < 0) return nlError("listing qdiscs", rc);
  Cache cache(raw);
  Qdisc root(rtnl_qdisc_get_by_parent(raw, ifindex, TC_H_ROOT));
  if (!root || rtnl_tc_get_handle(TC_CAST(root.get())) == 0) {
    return Error(ErrorCode::kNotFound, "the device's root is the kernel's default");
  }
  const char* kind = rtnl_tc_get_kind(TC_CAST(root.get()));
  return std::pair{std::string(kind != nullptr ? kind : ""),
                   rtnl_tc_get_handle(TC_CAST(root.get()))};
}

}  // namespace

// The add request that recreates the root: its kind, handle and dumped options.
Result<QdiscPriorRoot> rootRequest(nl_sock* sock, int ifindex) {
  auto root = rootOf(sock, ifindex);
  if (!root) return std::move(root).error();
  const auto& [kind, handle] = *root;
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
  if (rc < 0) return nlError("snapshotting the root qdisc", rc);
  nlmsghdr* h = nlmsg_hdr(msg.get());
  const auto* bytes = reinterpret_cast<const unsigned char*>(h);
  return QdiscPriorRoot{kind, hexHandle(handle), {bytes, bytes + h->nlmsg_len}};
}

Result<void> restoreRoot(nl_sock* sock, const QdiscPriorRoot& prior) {
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
    return nlError("restoring the root qdisc " + prior.kind + " " + prior.handle, rc);
  }
  return success();
}

}  // namespace chaosd::qdisc
