#include "injectors/network/QdiscNetlink.h"

#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/route/qdisc/htb.h>

namespace chaosd::qdisc {
namespace {

// HTB classes at "line rate": high enough that no device here reaches it (an HTB class at this
// rate did not reduce veth throughput), with buffers and quantum the kernel accepts.
constexpr uint64_t kLineRateBytes = 100'000'000'000ULL / 8;
constexpr uint32_t kHtbBuffer = 1U << 20;
constexpr uint32_t kHtbQuantum = 200000;

std::string kindOf(rtnl_tc* tc) {
  const char* kind = rtnl_tc_get_kind(tc);
  return kind != nullptr ? kind : "";
}

TcQdisc qdiscFrom(rtnl_qdisc* q) {
  TcQdisc out;
  rtnl_tc* tc = TC_CAST(q);
  out.handle = rtnl_tc_get_handle(tc);
  out.parent = rtnl_tc_get_parent(tc);
  out.kind = kindOf(tc);
  if (out.kind == "htb") out.htbDefault = rtnl_htb_get_defcls(q);
  out.counters = {rtnl_tc_get_stat(tc, RTNL_TC_PACKETS), rtnl_tc_get_stat(tc, RTNL_TC_BYTES),
                  rtnl_tc_get_stat(tc, RTNL_TC_DROPS), rtnl_tc_get_stat(tc, RTNL_TC_OVERLIMITS)};
  return out;
}

}  // namespace

Error nlError(const std::string& what, int rc) {
  ErrorCode code = ErrorCode::kKernel;
  if (rc == -NLE_EXIST) code = ErrorCode::kConflict;
  if (rc == -NLE_PERM) code = ErrorCode::kPermission;
  if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV) code = ErrorCode::kNotFound;
  return Error(code, what + ": " + nl_geterror(rc));
}

bool gone(int rc) { return rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV; }

Result<Sock> routeSocket() {
  Sock s(nl_socket_alloc());
  if (!s) return Error(ErrorCode::kInternal, "nl_socket_alloc failed");
  const int rc = nl_connect(s.get(), NETLINK_ROUTE);
  if (rc < 0) return nlError("netlink connect", rc);
  return s;
}

Result<int> ifindexOf(nl_sock* sock, const std::string& name) {
  rtnl_link* raw = nullptr;
  const int rc = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw);
  if (rc < 0) return nlError("interface " + name, rc);
  Link link(raw);
  return rtnl_link_get_ifindex(link.get());
}

int sendAndAck(nl_sock* sock, nl_msg* msg) {
  const int rc = nl_send_auto_complete(sock, msg);
  if (rc < 0) return rc;
  return nl_wait_for_ack(sock);
}

Result<std::vector<TcQdisc>> listQdiscs(nl_sock* sock, int ifindex) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_qdisc_alloc_cache(sock, &raw);
  if (rc < 0) return nlError("listing qdiscs", rc);
  Cache cache(raw);
  std::vector<TcQdisc> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* q = reinterpret_cast<rtnl_qdisc*>(o);
    if (rtnl_tc_get_ifindex(TC_CAST(q)) == ifindex) out.push_back(qdiscFrom(q));
  }
  return out;
}

Result<std::vector<TcClass>> listClasses(nl_sock* sock, int ifindex) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_class_alloc_cache(sock, ifindex, &raw);
  if (rc < 0) return nlError("listing classes", rc);
  Cache cache(raw);
  std::vector<TcClass> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    rtnl_tc* tc = TC_CAST(reinterpret_cast<rtnl_class*>(o));
    out.push_back({rtnl_tc_get_handle(tc), rtnl_tc_get_parent(tc), kindOf(tc)});
  }
  return out;
}

Result<std::vector<std::string>> listLinks(nl_sock* sock) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw);
  if (rc < 0) return nlError("listing links", rc);
  Cache links(raw);
  std::vector<std::string> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(o));
    if (name != nullptr) out.emplace_back(name);
  }
  return out;
}

Result<void> addHtbRoot(nl_sock* sock, int ifindex, uint32_t handle, uint32_t defaultMinor,
                        TcRootAdd how) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q.get()), handle);
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_defcls(q.get(), defaultMinor);
  if (rc == 0) {
    const int flags = how == TcRootAdd::kExclusive ? NLM_F_EXCL : NLM_F_REPLACE;
    rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | flags);
  }
  if (rc < 0) return nlError("adding the HTB root " + hexHandle(handle), rc);
  return success();
}

Result<void> addHtbClass(nl_sock* sock, int ifindex, uint32_t classid) {
  Class c(rtnl_class_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), TC_H_MAJ(classid));
  rtnl_tc_set_handle(TC_CAST(c.get()), classid);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_rate64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_ceil64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_rbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_cbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_quantum(c.get(), kHtbQuantum);
  if (rc == 0) rc = rtnl_class_add(sock, c.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0) return nlError("adding HTB class " + hexHandle(classid), rc);
  return success();
}

Result<void> addIngressQdisc(nl_sock* sock, int ifindex) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(0xffff, 0));
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  if (rc == 0) rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0) return nlError("adding the ingress qdisc", rc);
  return success();
}

Result<void> deleteQdisc(nl_sock* sock, int ifindex, uint32_t parent, uint32_t handle) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), parent);
  rtnl_tc_set_handle(TC_CAST(q.get()), handle);
  const int rc = rtnl_qdisc_delete(sock, q.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting qdisc " + hexHandle(handle), rc);
  return success();
}

Result<void> deleteClass(nl_sock* sock, int ifindex, uint32_t classid) {
  Class c(rtnl_class_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), TC_H_MAJ(classid));
  rtnl_tc_set_handle(TC_CAST(c.get()), classid);
  const int rc = rtnl_class_delete(sock, c.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting class " + hexHandle(classid), rc);
  return success();
}

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

}  // namespace chaosd::qdisc
