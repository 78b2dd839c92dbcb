#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/LinkDownRecords.h"

// The kernel surface of network.down: the links, addresses and routes of one network namespace
// (rtnetlink through libnl-route, NetlinkLinkKernel.cpp), plus what the safety checks need (the
// SSH sessions of the namespace and the route the kernel picks for a peer). A fake keeps the
// same state in memory for unit tests. Errors: kNotFound for a link or a namespace that is not
// there, kConflict for an address or route that exists already, else what the kernel said.
namespace chaosd {

// A link as prepare reads it.
struct LinkState {
  int ifindex = 0;
  bool up = false;        // IFF_UP (administratively up)
  bool loopback = false;  // IFF_LOOPBACK
  std::vector<LinkAddress> addresses;
  std::vector<LinkRoute> routes;  // single-nexthop routes out of the link, every table
  int multipathRoutes = 0;        // routes with several nexthops, one through the link (not kept)
};

// One namespace, entered for as long as the object lives (destroy it on the thread that made it).
class LinkNetns {
 public:
  virtual ~LinkNetns() = default;

  // The link of this name with its addresses and routes; kNotFound when there is none.
  virtual Result<LinkState> link(const std::string& name) = 0;
  // Sets or clears IFF_UP on the link of this index.
  virtual Result<void> setUp(int ifindex, bool up) = 0;
  virtual Result<void> addAddress(int ifindex, const LinkAddress& address) = 0;
  virtual Result<void> addRoute(int ifindex, const LinkRoute& route) = 0;
  // Whether this is the namespace chaosd itself runs in (the host's, for the daemon).
  virtual Result<bool> isOurs() = 0;
  // The remote addresses of established TCP connections on local port 22 in this namespace.
  virtual Result<std::vector<std::string>> sshPeers() = 0;
  // The ifindex of the link the kernel would send a packet to `address` out of; 0 when it has
  // no route.
  virtual Result<int> routeOut(const std::string& address) = 0;
};

class LinkKernel {
 public:
  virtual ~LinkKernel() = default;
  // Enters the namespace at netnsPath ("" the host's, i.e. the caller's) on the calling thread.
  // kNotFound when it is gone.
  virtual Result<std::unique_ptr<LinkNetns>> enter(const std::string& netnsPath) = 0;
};

// The real one (libnl-route).
std::shared_ptr<LinkKernel> netlinkLinkKernel();

}  // namespace chaosd
