#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chaosd/base/Result.h"

// The undo record of network.down (injectors/network/LinkDownInjector.h): the link, as it was
// before the fault, with every address on it and every route through it in every table of its
// namespace. revert brings the link up and re-adds what is missing of these, from the record
// alone (the guardian's case). fromJson never throws and refuses a record it could not act on
// safely (kInvalid): a bad interface name, a namespace path that is not absolute, an address or
// route that does not parse.
namespace chaosd {

// One address of the link as the kernel listed it (RTM_GETADDR).
struct LinkAddress {
  int family = 0;         // AF_INET or AF_INET6
  std::string local;      // "10.0.0.1/24", "fd00::1/64"
  std::string peer;       // point-to-point peer ("" none)
  std::string broadcast;  // IPv4 broadcast ("" none)
  int scope = 0;          // RT_SCOPE_*
  uint32_t flags = 0;     // IFA_F_*: nodad, noprefixroute, ... (permanent = static)
  std::string label;      // IPv4 label ("" none)

  bool sameAddress(const LinkAddress& other) const {
    return family == other.family && local == other.local;
  }
  nlohmann::json toJson() const;
  static Result<LinkAddress> fromJson(const nlohmann::json& j);
};

// One route whose single nexthop goes out of the link (RTM_GETROUTE, every table).
struct LinkRoute {
  int family = 0;
  uint32_t table = 0;     // RT_TABLE_MAIN = 254, local = 255, or a user table
  std::string dst;        // "10.77.0.0/16", "0.0.0.0/0"
  std::string gateway;    // "" when on-link
  uint32_t priority = 0;  // the metric
  int scope = 0;          // RT_SCOPE_*
  int protocol = 0;       // RTPROT_*: kernel (2) routes come back with their address
  int type = 0;           // RTN_UNICAST, RTN_LOCAL, ...
  std::string src;        // preferred source ("" none)
  int tos = 0;
  bool onlink = false;                            // RTNH_F_ONLINK on the nexthop
  std::vector<std::pair<int, uint32_t>> metrics;  // RTAX_* ids (mtu, advmss, ...) and values

  // Made by the kernel from an address or the link state (proto kernel): it comes back by itself
  // when the link is up with its addresses, so revert leaves it to the kernel.
  bool kernelMade() const;
  // The kernel's identity of a route: same family, table, destination, metric, tos, type and
  // gateway.
  bool sameRoute(const LinkRoute& other) const;
  // "10.77.0.0/16 via 10.0.0.2 table 100 metric 50" for reports.
  std::string describe() const;
  nlohmann::json toJson() const;
  static Result<LinkRoute> fromJson(const nlohmann::json& j);
};

struct LinkDownUndo {
  int version = 1;
  std::string faultId;
  std::string netnsPath;  // the namespace's file; "" for the host's
  std::string iface;
  int ifindex = 0;  // the link's index when prepared: a link recreated under the same name
                    // is not ours, and is left alone
  std::vector<LinkAddress> addresses;
  std::vector<LinkRoute> routes;

  // kInvalid when the record belongs to another fault; "" accepts any.
  Result<void> belongsTo(std::string_view otherFaultId) const;
  nlohmann::json toJson() const;
  static Result<LinkDownUndo> fromJson(const nlohmann::json& undo);
};

// Whether a string can be an interface name (1..15 bytes, no '/', whitespace or ':').
bool isInterfaceName(std::string_view name);

}  // namespace chaosd
