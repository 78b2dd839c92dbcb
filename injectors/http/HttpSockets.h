#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/base/Units.h"

// The TCP connections of a network namespace through sock_diag (NETLINK_SOCK_DIAG): listing the
// established ones to a dependency and destroying them (SOCK_DESTROY, CONFIG_INET_DIAG_DESTROY),
// so http.fault's `resetExisting` makes pooled clients reconnect through the proxy. Both act in
// the calling thread's network namespace.
namespace chaosd::http {

// One established TCP socket as sock_diag lists it: enough to name it again (the cookie too, so
// a destroy never hits a socket that reused the same addresses).
struct OpenConnection {
  int family = 0;                 // AF_INET or AF_INET6 (the socket's; v4-mapped stays v6)
  std::array<uint32_t, 4> src{};  // network byte order, as inet_diag_sockid holds them
  std::array<uint32_t, 4> dst{};
  uint16_t sport = 0, dport = 0;  // host byte order
  uint32_t ifindex = 0;
  std::array<uint32_t, 2> cookie{};
  std::string text() const;  // "10.0.0.1:40222 -> 10.0.0.2:8080"
};

// Which connections: to one of `ports` (never 22), to an address in `to` (empty: any), not
// carrying `skipMark` (the proxy's own upstream connections).
struct ConnectionMatch {
  std::vector<uint16_t> ports;
  std::vector<units::Cidr> to;
  uint32_t skipMark = 0;
};

// Whether a connection to `dst` (family, address in network order) port `dport` matches.
bool connectionMatches(const ConnectionMatch& match, int family, const std::array<uint32_t, 4>& dst,
                       uint16_t dport);

// The established TCP connections (both families) of the calling thread's namespace that
// match.
Result<std::vector<OpenConnection>> listConnections(const ConnectionMatch& match);

// Destroys each (the local socket is aborted with ECONNABORTED, its peer gets a reset); how many
// were destroyed. Those already gone are skipped, not errors.
Result<size_t> destroyConnections(const std::vector<OpenConnection>& connections);

}  // namespace chaosd::http
