#pragma once

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/TcKernel.h"

// libnl-route ownership and the netlink calls behind NetlinkTcKernel (TcKernel.h's real
// implementation). Internal to it: the tree logic (QdiscTree, QdiscRoot, IfbIngress) never
// includes this. namespace chaosd::qdisc.
namespace chaosd::qdisc {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct QdiscPut {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct ClassPut {
  void operator()(rtnl_class* c) const { rtnl_class_put(c); }
};
struct ClsPut {
  void operator()(rtnl_cls* c) const { rtnl_cls_put(c); }
};
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using Sock = std::unique_ptr<nl_sock, SockFree>;
using Cache = std::unique_ptr<nl_cache, CacheFree>;
using Qdisc = std::unique_ptr<rtnl_qdisc, QdiscPut>;
using Class = std::unique_ptr<rtnl_class, ClassPut>;
using Cls = std::unique_ptr<rtnl_cls, ClsPut>;
using Link = std::unique_ptr<rtnl_link, LinkPut>;
using Msg = std::unique_ptr<nl_msg, MsgFree>;

// A libnl error code as an Error: kConflict for "exists", kPermission, kNotFound for an object
// or device that is not there, else kKernel.
Error nlError(const std::string& what, int rc);
// Whether rc says the object or the device is not there (nothing left to delete).
bool gone(int rc);

// A route socket of the namespace the calling thread is in (a socket stays in the namespace it
// was made in).
Result<Sock> routeSocket();
Result<int> ifindexOf(nl_sock* sock, const std::string& name);
// Sends msg and waits for the kernel's ack; a libnl error code.
int sendAndAck(nl_sock* sock, nl_msg* msg);

// The TcNetns operations (TcKernel.h has their contracts) on a route socket of the namespace.
// QdiscNetlink.cpp: listings, HTB, ingress, links.
Result<std::vector<TcQdisc>> listQdiscs(nl_sock* sock, int ifindex);
Result<std::vector<TcClass>> listClasses(nl_sock* sock, int ifindex);
Result<std::vector<std::string>> listLinks(nl_sock* sock);
Result<void> addHtbRoot(nl_sock* sock, int ifindex, uint32_t handle, uint32_t defaultMinor,
                        TcRootAdd how);
Result<void> addHtbClass(nl_sock* sock, int ifindex, uint32_t classid);
Result<void> addIngressQdisc(nl_sock* sock, int ifindex);
Result<void> deleteQdisc(nl_sock* sock, int ifindex, uint32_t parent, uint32_t handle);
Result<void> deleteClass(nl_sock* sock, int ifindex, uint32_t classid);
Result<int> createIfb(nl_sock* sock, const std::string& name);
Result<void> deleteLink(nl_sock* sock, const std::string& name);
// QdiscLeafNetlink.cpp.
Result<void> addLeaf(nl_sock* sock, int ifindex, uint32_t parent, uint32_t handle,
                     const QdiscLeaf& leaf);
// QdiscRootNetlink.cpp.
Result<QdiscPriorRoot> rootRequest(nl_sock* sock, int ifindex);
Result<void> restoreRoot(nl_sock* sock, const QdiscPriorRoot& prior);

}  // namespace chaosd::qdisc
