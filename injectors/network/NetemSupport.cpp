#include "injectors/network/NetemSupport.h"

#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/tc.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

namespace chaosd {
namespace {

// Runs on a thread of its own: unshare() moves only this thread into the new namespace.
Result<bool> probeInFreshNamespace() {
  if (::unshare(CLONE_NEWNET) != 0) return Error::fromErrno("unshare(CLONE_NEWNET)", errno);
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return Error(ErrorCode::kInternal, "nl_socket_alloc failed");
  int rc = nl_connect(sock, NETLINK_ROUTE);
  if (rc < 0) {
    nl_socket_free(sock);
    return Error(ErrorCode::kKernel, std::string("netlink connect: ") + nl_geterror(rc));
  }
  rtnl_qdisc* q = rtnl_qdisc_alloc();
  rtnl_tc_set_ifindex(TC_CAST(q), 1);  // the new namespace's loopback
  rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(0xc4a0, 0));
  rc = rtnl_tc_set_kind(TC_CAST(q), "netem");
  if (rc == 0) {
    rtnl_netem_set_delay(q, 1000);  // 1 ms, in microseconds
    rc = rtnl_qdisc_add(sock, q, NLM_F_CREATE);
  }
  rtnl_qdisc_put(q);
  nl_socket_free(sock);
  if (rc == 0) return true;
  // The kernel answers ENOENT (libnl: "object not found") for a qdisc kind it does not know.
  if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NOATTR) return false;
  return Error(ErrorCode::kKernel, std::string("adding a test netem qdisc: ") + nl_geterror(rc));
}

}  // namespace

Result<bool> kernelHasNetem() {
  static std::mutex mu;
  static std::optional<bool> cached;
  std::lock_guard lock(mu);
  if (cached) return *cached;
  std::optional<Result<bool>> answer;
  std::thread([&] { answer.emplace(probeInFreshNamespace()); }).join();
  if (!*answer) return std::move(*answer).error();
  cached = **answer;
  return *cached;
}

}  // namespace chaosd
