#include "injectors/network/QdiscNetlink.h"

#include <netlink/errno.h>

#include <cstdio>

namespace chaosd::qdisc {

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

std::string hexHandle(uint32_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
  return buf;
}

Result<Cache> qdiscCache(nl_sock* sock) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_qdisc_alloc_cache(sock, &raw);
  if (rc < 0) return nlError("listing qdiscs", rc);
  return Cache(raw);
}

Qdisc qdiscAt(nl_cache* cache, int ifindex, uint32_t parent) {
  return Qdisc(rtnl_qdisc_get_by_parent(cache, ifindex, parent));
}

}  // namespace chaosd::qdisc
