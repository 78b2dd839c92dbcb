#include "injectors/http/HttpSockets.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chaosd/base/Fd.h"

namespace chaosd::http {
namespace {

constexpr uint16_t kSsh = 22;

// The netlink macros' arithmetic without their C casts (-Wold-style-cast).
constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }
const nlmsghdr* firstMessage(const char* buf, size_t len) {
  return len >= sizeof(nlmsghdr) ? reinterpret_cast<const nlmsghdr*>(buf) : nullptr;
}
// The message after h, or nullptr at the end of the buffer (or a damaged length).
bool messageFits(const nlmsghdr* h, const char* end) {
  const auto left = static_cast<size_t>(end - reinterpret_cast<const char*>(h));
  return left >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) && h->nlmsg_len <= left;
}
const nlmsghdr* nextMessage(const nlmsghdr* h) {
  return reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(h) + align4(h->nlmsg_len));
}
template <typename T>
const T* payload(const nlmsghdr* h) {
  return reinterpret_cast<const T*>(reinterpret_cast<const char*>(h) + align4(sizeof(nlmsghdr)));
}

Result<Fd> diagSocket() {
  Fd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return Error::fromErrno("socket(NETLINK_SOCK_DIAG)", errno);
  timeval tv{5, 0};  // a dump or an ack never takes this long; never hang a fault on it
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

struct Request {
  nlmsghdr h;
  inet_diag_req_v2 r;
};

Result<void> sendRequest(const Fd& fd, const Request& req) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd.get(), &req, sizeof req, 0, reinterpret_cast<const sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return Error::fromErrno("send to sock_diag", errno);
  }
  return success();
}

bool prefixHolds(const unsigned char* addr, const units::Cidr& c) {
  const int full = c.prefix / 8, rest = c.prefix % 8;
  if (std::memcmp(addr, c.addr, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (addr[full] & mask) == (c.addr[full] & mask);
}

// One dump of a family's established TCP sockets into `out`.
Result<void> dumpFamily(const Fd& fd, int family, const ConnectionMatch& match,
                        std::vector<OpenConnection>& out) {
  Request req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = static_cast<uint32_t>(family);
  req.r.sdiag_family = static_cast<uint8_t>(family);
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 1u << TCP_ESTABLISHED;
  CHAOSD_TRY(sendRequest(fd, req));
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read the sock_diag dump", errno);
    if (n == 0) return Error(ErrorCode::kKernel, "sock_diag: the dump ended early");
    const char* end = buf + n;
    for (const nlmsghdr* h = firstMessage(buf, static_cast<size_t>(n)); h && messageFits(h, end);
         h = nextMessage(h)) {
      if (h->nlmsg_type == NLMSG_DONE) return success();
      if (h->nlmsg_type == NLMSG_ERROR) {
        return Error::fromErrno("sock_diag dump", -payload<nlmsgerr>(h)->error);
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      const auto* m = payload<inet_diag_msg>(h);
      // The mark, when the kernel gives it (CAP_NET_ADMIN): the proxy's own connections.
      uint32_t mark = 0;
      const char* attrs = reinterpret_cast<const char*>(m) + align4(sizeof *m);
      const char* attrsEnd = reinterpret_cast<const char*>(h) + h->nlmsg_len;
      while (attrs + sizeof(rtattr) <= attrsEnd) {
        const auto* a = reinterpret_cast<const rtattr*>(attrs);
        if (a->rta_len < sizeof(rtattr) || attrs + a->rta_len > attrsEnd) break;
        if (a->rta_type == INET_DIAG_MARK && a->rta_len >= align4(sizeof(rtattr)) + sizeof mark) {
          std::memcpy(&mark, attrs + align4(sizeof(rtattr)), sizeof mark);
        }
        attrs += align4(a->rta_len);
      }
      OpenConnection c;
      c.family = m->idiag_family;
      std::memcpy(c.src.data(), m->id.idiag_src, sizeof m->id.idiag_src);
      std::memcpy(c.dst.data(), m->id.idiag_dst, sizeof m->id.idiag_dst);
      c.sport = ntohs(m->id.idiag_sport);
      c.dport = ntohs(m->id.idiag_dport);
      c.ifindex = m->id.idiag_if;
      c.cookie = {m->id.idiag_cookie[0], m->id.idiag_cookie[1]};
      if (match.skipMark != 0 && mark == match.skipMark) continue;
      if (!connectionMatches(match, c.family, c.dst, c.dport)) continue;
      out.push_back(c);
    }
  }
}

}  // namespace

std::string OpenConnection::text() const {
  char s[INET6_ADDRSTRLEN]{}, d[INET6_ADDRSTRLEN]{};
  ::inet_ntop(family, src.data(), s, sizeof s);
  ::inet_ntop(family, dst.data(), d, sizeof d);
  const bool v6 = family == AF_INET6;
  return (v6 ? "[" : "") + std::string(s) + (v6 ? "]:" : ":") + std::to_string(sport) + " -> " +
         (v6 ? "[" : "") + d + (v6 ? "]:" : ":") + std::to_string(dport);
}

bool connectionMatches(const ConnectionMatch& match, int family, const std::array<uint32_t, 4>& dst,
                       uint16_t dport) {
  if (dport == kSsh) return false;
  bool portHolds = false;
  for (uint16_t p : match.ports) portHolds = portHolds || p == dport;
  if (!portHolds) return false;
  if (match.to.empty()) return true;
  const auto* bytes = reinterpret_cast<const unsigned char*>(dst.data());
  // A v6 socket connected to an IPv4 address holds it v4-mapped (::ffff:a.b.c.d).
  const bool mapped =
      family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(dst.data()));
  const int as = mapped ? AF_INET : family;
  const unsigned char* addr = mapped ? bytes + 12 : bytes;
  for (const units::Cidr& c : match.to) {
    if (c.family == as && prefixHolds(addr, c)) return true;
  }
  return false;
}

Result<std::vector<OpenConnection>> listConnections(const ConnectionMatch& match) {
  auto fd = diagSocket();
  if (!fd) return std::move(fd).error();
  std::vector<OpenConnection> out;
  CHAOSD_TRY(dumpFamily(*fd, AF_INET, match, out));
  CHAOSD_TRY(dumpFamily(*fd, AF_INET6, match, out));
  return out;
}

Result<size_t> destroyConnections(const std::vector<OpenConnection>& connections) {
  if (connections.empty()) return size_t{0};
  auto fd = diagSocket();
  if (!fd) return std::move(fd).error();
  size_t destroyed = 0;
  uint32_t seq = 0;
  for (const OpenConnection& c : connections) {
    Request req{};
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DESTROY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.h.nlmsg_seq = ++seq;
    req.r.sdiag_family = static_cast<uint8_t>(c.family);
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_sport = htons(c.sport);
    req.r.id.idiag_dport = htons(c.dport);
    std::memcpy(req.r.id.idiag_src, c.src.data(), sizeof req.r.id.idiag_src);
    std::memcpy(req.r.id.idiag_dst, c.dst.data(), sizeof req.r.id.idiag_dst);
    req.r.id.idiag_if = c.ifindex;
    req.r.id.idiag_cookie[0] = c.cookie[0];
    req.r.id.idiag_cookie[1] = c.cookie[1];
    CHAOSD_TRY(sendRequest(*fd, req));
    alignas(nlmsghdr) char buf[1024];
    ssize_t n = 0;
    do {
      n = ::recv(fd->get(), buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Error::fromErrno("read sock_diag's answer to SOCK_DESTROY", errno);
    const nlmsghdr* h = firstMessage(buf, static_cast<size_t>(n));
    if (h == nullptr || !messageFits(h, buf + n) || h->nlmsg_type != NLMSG_ERROR) {
      return Error(ErrorCode::kKernel, "sock_diag: no answer to SOCK_DESTROY");
    }
    const int err = -payload<nlmsgerr>(h)->error;
    if (err == 0) {
      ++destroyed;
    } else if (err != ENOENT) {  // ENOENT: closed meanwhile
      return Error::fromErrno("SOCK_DESTROY " + c.text(), err);
    }
  }
  return destroyed;
}

}  // namespace chaosd::http
