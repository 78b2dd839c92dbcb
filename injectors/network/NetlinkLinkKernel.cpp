// LinkKernel over libnl-route: a namespace entered with NetnsGuard and route sockets made inside
// it, for as long as the LinkNetns lives.
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "chaosd/base/Netns.h"
#include "injectors/network/LinkKernel.h"
#include "injectors/network/QdiscNetlink.h"

namespace chaosd {
namespace {

using qdisc::nlError;

// The address flags a RTM_NEWADDR may carry; the others (permanent, tentative, deprecated, ...)
// are the kernel's own state.
constexpr uint32_t kSettableAddressFlags = IFA_F_NODAD | IFA_F_OPTIMISTIC | IFA_F_NOPREFIXROUTE |
                                           IFA_F_MCAUTOJOIN | IFA_F_MANAGETEMPADDR |
                                           IFA_F_HOMEADDRESS;

struct AddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtAddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct RoutePut {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
using Addr = std::unique_ptr<nl_addr, AddrPut>;
using RtAddr = std::unique_ptr<rtnl_addr, RtAddrPut>;
using Route = std::unique_ptr<rtnl_route, RoutePut>;

// "10.0.0.1" or, withPrefix, "10.0.0.1/24"; an address of no bytes (a default route's dst) is
// the family's zero address. "" for nullptr.
std::string text(nl_addr* a, int family, bool withPrefix) {
  if (a == nullptr) return "";
  unsigned char buf[16] = {};
  const unsigned len = nl_addr_get_len(a);
  const unsigned want = family == AF_INET6 ? 16 : 4;
  if (len != 0 && len != want) return "";
  if (len != 0) std::memcpy(buf, nl_addr_get_binary_addr(a), len);
  char out[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family, buf, out, sizeof out) == nullptr) return "";
  std::string s = out;
  if (withPrefix) s += "/" + std::to_string(len == 0 ? 0 : nl_addr_get_prefixlen(a));
  return s;
}

Result<Addr> parse(const std::string& s, int family) {
  nl_addr* raw = nullptr;
  const int rc = nl_addr_parse(s.c_str(), family, &raw);
  if (rc < 0) return nlError("address " + s, rc);
  return Addr(raw);
}

LinkAddress addressFrom(rtnl_addr* a) {
  LinkAddress out;
  out.family = rtnl_addr_get_family(a);
  out.local = text(rtnl_addr_get_local(a), out.family, false);
  out.local += "/" + std::to_string(rtnl_addr_get_prefixlen(a));
  out.peer = text(rtnl_addr_get_peer(a), out.family, false);
  if (out.peer == out.local.substr(0, out.local.find('/'))) out.peer.clear();  // IPv4 lists both
  out.broadcast = text(rtnl_addr_get_broadcast(a), out.family, false);
  out.scope = rtnl_addr_get_scope(a);
  out.flags = rtnl_addr_get_flags(a);
  const char* label = rtnl_addr_get_label(a);
  if (label != nullptr) out.label = label;
  return out;
}

LinkRoute routeFrom(rtnl_route* r, rtnl_nexthop* nh) {
  LinkRoute out;
  out.family = rtnl_route_get_family(r);
  out.table = rtnl_route_get_table(r);
  out.dst = text(rtnl_route_get_dst(r), out.family, true);
  out.gateway = text(rtnl_route_nh_get_gateway(nh), out.family, false);
  out.priority = rtnl_route_get_priority(r);
  out.scope = rtnl_route_get_scope(r);
  out.protocol = rtnl_route_get_protocol(r);
  out.type = rtnl_route_get_type(r);
  out.src = text(rtnl_route_get_pref_src(r), out.family, false);
  out.tos = rtnl_route_get_tos(r);
  out.onlink = (rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK) != 0;
  for (int id = 1; id <= RTAX_MAX; ++id) {
    uint32_t value = 0;
    if (rtnl_route_get_metric(r, id, &value) == 0) out.metrics.emplace_back(id, value);
  }
  return out;
}

// "0100007F" (a u32 as the kernel prints it, in memory order) into bytes.
bool hexWords(const std::string& hex, unsigned char* out, size_t words) {
  if (hex.size() != words * 8) return false;
  for (size_t i = 0; i < words; ++i) {
    uint32_t w = 0;
    try {
      w = static_cast<uint32_t>(std::stoul(hex.substr(i * 8, 8), nullptr, 16));
    } catch (const std::exception&) {
      return false;
    }
    std::memcpy(out + i * 4, &w, 4);
  }
  return true;
}

// The peers of established connections on local port 22 in /proc/thread-self/net/tcp{,6}: the
// calling thread's namespace (/proc/self/net would be the main thread's).
std::vector<std::string> sshPeersIn(const std::string& file, int family) {
  std::vector<std::string> out;
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);  // header
  const size_t words = family == AF_INET6 ? 4 : 1;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, state;
    fields >> sl >> local >> remote >> state;
    const size_t lc = local.find(':');
    const size_t rc = remote.find(':');
    if (state != "01" || lc == std::string::npos || rc == std::string::npos) continue;
    if (local.substr(lc + 1) != "0016") continue;
    unsigned char buf[16] = {};
    if (!hexWords(remote.substr(0, rc), buf, words)) continue;
    char addr[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(family, buf, addr, sizeof addr) != nullptr) out.emplace_back(addr);
  }
  return out;
}

Result<std::string> netnsId(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return Error::fromErrno(std::string("stat ") + path, errno);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

int onRouteReply(nl_msg* msg, void* arg) {
  rtnl_route* raw = nullptr;
  if (rtnl_route_parse(nlmsg_hdr(msg), &raw) < 0) return NL_SKIP;
  Route route(raw);
  if (rtnl_route_get_nnexthops(raw) > 0) {
    *static_cast<int*>(arg) = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(raw, 0));
  }
  return NL_OK;
}

// Keeps the kernel's errno of a failed lookup (libnl folds ENETUNREACH into NLE_FAILURE).
int onRouteError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  *static_cast<int*>(arg) = -e->error;
  return NL_STOP;
}

class NetlinkLinkNetns final : public LinkNetns {
 public:
  NetlinkLinkNetns(NetnsGuard guard, qdisc::Sock sock, std::string ours)
      : guard_(std::move(guard)), sock_(std::move(sock)), ours_(std::move(ours)) {}

  Result<LinkState> link(const std::string& name) override {
    rtnl_link* raw = nullptr;
    int rc = rtnl_link_get_kernel(sock(), 0, name.c_str(), &raw);
    if (rc < 0) return nlError("interface " + name, rc);
    qdisc::Link l(raw);
    LinkState out;
    out.ifindex = rtnl_link_get_ifindex(raw);
    out.up = (rtnl_link_get_flags(raw) & IFF_UP) != 0;
    out.loopback = (rtnl_link_get_flags(raw) & IFF_LOOPBACK) != 0;

    nl_cache* addrs = nullptr;
    if ((rc = rtnl_addr_alloc_cache(sock(), &addrs)) < 0) return nlError("listing addresses", rc);
    qdisc::Cache addrCache(addrs);
    for (nl_object* o = nl_cache_get_first(addrs); o != nullptr; o = nl_cache_get_next(o)) {
      auto* a = reinterpret_cast<rtnl_addr*>(o);
      const int family = rtnl_addr_get_family(a);
      if (rtnl_addr_get_ifindex(a) != out.ifindex || (family != AF_INET && family != AF_INET6)) {
        continue;
      }
      out.addresses.push_back(addressFrom(a));
    }

    nl_cache* routes = nullptr;
    if ((rc = rtnl_route_alloc_cache(sock(), AF_UNSPEC, 0, &routes)) < 0) {
      return nlError("listing routes", rc);
    }
    qdisc::Cache routeCache(routes);
    for (nl_object* o = nl_cache_get_first(routes); o != nullptr; o = nl_cache_get_next(o)) {
      auto* r = reinterpret_cast<rtnl_route*>(o);
      const int family = rtnl_route_get_family(r);
      if ((family != AF_INET && family != AF_INET6) || (rtnl_route_get_flags(r) & RTM_F_CLONED)) {
        continue;
      }
      const int n = rtnl_route_get_nnexthops(r);
      bool through = false;
      for (int i = 0; i < n; ++i) {
        through = through || rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, i)) == out.ifindex;
      }
      if (!through) continue;
      if (n == 1) {
        out.routes.push_back(routeFrom(r, rtnl_route_nexthop_n(r, 0)));
      } else {
        ++out.multipathRoutes;
      }
    }
    return out;
  }

  Result<void> setUp(int ifindex, bool up) override {
    rtnl_link* raw = nullptr;
    int rc = rtnl_link_get_kernel(sock(), ifindex, nullptr, &raw);
    if (rc < 0) return nlError("interface " + std::to_string(ifindex), rc);
    qdisc::Link orig(raw);
    qdisc::Link change(rtnl_link_alloc());
    if (!change) return Error(ErrorCode::kInternal, "rtnl_link_alloc failed");
    if (up) {
      rtnl_link_set_flags(change.get(), IFF_UP);
    } else {
      rtnl_link_unset_flags(change.get(), IFF_UP);
    }
    rc = rtnl_link_change(sock(), orig.get(), change.get(), 0);
    if (rc < 0) return nlError(std::string("setting ") + (up ? "up" : "down"), rc);
    return success();
  }

  Result<void> addAddress(int ifindex, const LinkAddress& a) override {
    RtAddr addr(rtnl_addr_alloc());
    if (!addr) return Error(ErrorCode::kInternal, "rtnl_addr_alloc failed");
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), a.family);
    auto local = parse(a.local, a.family);
    if (!local) return std::move(local).error();
    const int prefix = nl_addr_get_prefixlen(local->get());
    if (!a.peer.empty()) {
      auto peer = parse(a.peer, a.family);
      if (!peer) return std::move(peer).error();
      nl_addr_set_prefixlen(peer->get(), prefix);
      rtnl_addr_set_peer(addr.get(), peer->get());
    }
    int rc = rtnl_addr_set_local(addr.get(), local->get());
    if (rc < 0) return nlError("address " + a.local, rc);
    rtnl_addr_set_prefixlen(addr.get(), prefix);
    if (!a.broadcast.empty()) {
      auto brd = parse(a.broadcast, a.family);
      if (!brd) return std::move(brd).error();
      rtnl_addr_set_broadcast(addr.get(), brd->get());
    }
    rtnl_addr_set_scope(addr.get(), a.scope);
    rtnl_addr_set_flags(addr.get(), a.flags & kSettableAddressFlags);
    if (!a.label.empty()) rtnl_addr_set_label(addr.get(), a.label.c_str());
    rc = rtnl_addr_add(sock(), addr.get(), NLM_F_EXCL);
    if (rc < 0) return nlError("adding address " + a.local, rc);
    return success();
  }

  Result<void> addRoute(int ifindex, const LinkRoute& r) override {
    Route route(rtnl_route_alloc());
    if (!route) return Error(ErrorCode::kInternal, "rtnl_route_alloc failed");
    rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.family));
    rtnl_route_set_table(route.get(), r.table);
    auto dst = parse(r.dst, r.family);
    if (!dst) return std::move(dst).error();
    rtnl_route_set_dst(route.get(), dst->get());
    rtnl_route_set_priority(route.get(), r.priority);
    rtnl_route_set_scope(route.get(), static_cast<uint8_t>(r.scope));
    rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(r.protocol));
    rtnl_route_set_type(route.get(), static_cast<uint8_t>(r.type));
    rtnl_route_set_tos(route.get(), static_cast<uint8_t>(r.tos));
    if (!r.src.empty()) {
      auto src = parse(r.src, r.family);
      if (!src) return std::move(src).error();
      rtnl_route_set_pref_src(route.get(), src->get());
    }
    for (const auto& [id, value] : r.metrics) rtnl_route_set_metric(route.get(), id, value);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();  // owned by the route once added to it
    if (nh == nullptr) return Error(ErrorCode::kInternal, "rtnl_route_nh_alloc failed");
    rtnl_route_nh_set_ifindex(nh, ifindex);
    if (r.onlink) rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
    if (!r.gateway.empty()) {
      auto gw = parse(r.gateway, r.family);
      if (!gw) {
        rtnl_route_nh_free(nh);
        return std::move(gw).error();
      }
      rtnl_route_nh_set_gateway(nh, gw->get());
    }
    rtnl_route_add_nexthop(route.get(), nh);
    const int rc = rtnl_route_add(sock(), route.get(), NLM_F_EXCL);
    if (rc < 0) return nlError("adding route " + r.describe(), rc);
    return success();
  }

  Result<bool> isOurs() override {
    auto here = netnsId("/proc/thread-self/ns/net");
    if (!here) return std::move(here).error();
    return *here == ours_;
  }

  Result<std::vector<std::string>> sshPeers() override {
    auto out = sshPeersIn("/proc/thread-self/net/tcp", AF_INET);
    for (auto& p : sshPeersIn("/proc/thread-self/net/tcp6", AF_INET6)) out.push_back(std::move(p));
    return out;
  }

  Result<int> routeOut(const std::string& address) override {
    const int family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    unsigned char buf[16] = {};
    if (::inet_pton(family, address.c_str(), buf) != 1) {
      return Error(ErrorCode::kInvalid, "not an address: " + address);
    }
    auto s = qdisc::routeSocket();  // its own: the callback below is set on it
    if (!s) return std::move(s).error();
    nl_socket_disable_auto_ack(s->get());
    qdisc::Msg msg(nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST));
    if (!msg) return Error(ErrorCode::kInternal, "nlmsg_alloc failed");
    rtmsg rtm{};
    rtm.rtm_family = static_cast<unsigned char>(family);
    rtm.rtm_dst_len = family == AF_INET6 ? 128 : 32;
    const int len = family == AF_INET6 ? 16 : 4;
    if (nlmsg_append(msg.get(), &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 ||
        nla_put(msg.get(), RTA_DST, len, buf) < 0) {
      return Error(ErrorCode::kInternal, "building a route lookup");
    }
    int oif = 0;
    int kernelErrno = 0;
    nl_socket_modify_cb(s->get(), NL_CB_VALID, NL_CB_CUSTOM, onRouteReply, &oif);
    nl_socket_modify_err_cb(s->get(), NL_CB_CUSTOM, onRouteError, &kernelErrno);
    int rc = nl_send_auto(s->get(), msg.get());
    if (rc >= 0) rc = nl_recvmsgs_default(s->get());
    // No route to the peer: it does not go out of any link.
    if (kernelErrno == ENETUNREACH || kernelErrno == EHOSTUNREACH || kernelErrno == EACCES ||
        kernelErrno == EINVAL) {
      return 0;
    }
    if (rc < 0) return nlError("route lookup of " + address, rc);
    return oif;
  }

 private:
  nl_sock* sock() { return sock_.get(); }

  // Declared first, destroyed last: the socket goes before the thread leaves the namespace.
  NetnsGuard guard_;
  qdisc::Sock sock_;
  std::string ours_;  // the namespace id of the thread before it entered
};

class NetlinkLinkKernel final : public LinkKernel {
 public:
  Result<std::unique_ptr<LinkNetns>> enter(const std::string& netnsPath) override {
    auto ours = netnsId("/proc/thread-self/ns/net");
    if (!ours) return std::move(ours).error();
    NetnsRef ref;
    ref.path = netnsPath;
    auto guard = NetnsGuard::enter(ref);
    if (!guard) return std::move(guard).error();
    auto sock = qdisc::routeSocket();
    if (!sock) return std::move(sock).error();
    return std::unique_ptr<LinkNetns>(
        std::make_unique<NetlinkLinkNetns>(std::move(*guard), std::move(*sock), *ours));
  }
};

}  // namespace

std::shared_ptr<LinkKernel> netlinkLinkKernel() { return std::make_shared<NetlinkLinkKernel>(); }

}  // namespace chaosd
