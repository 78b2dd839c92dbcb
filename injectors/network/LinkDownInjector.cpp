#include "injectors/network/LinkDownInjector.h"

#include <linux/rtnetlink.h>

#include <cstdlib>
#include <sstream>
#include <utility>

#include "chaosd/base/Log.h"
#include "experiments/model/Experiment.h"

namespace chaosd {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

Result<LinkDownUndo> recordOf(const json& undo, const std::string& faultId) {
  auto record = LinkDownUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(record->belongsTo(faultId));
  return record;
}

std::string where(const LinkDownUndo& u) {
  return u.iface + " (" + (u.netnsPath.empty() ? std::string("host") : u.netnsPath) + ")";
}

// The namespace could not be entered at all (gone, no longer a namespace, not allowed).
bool cannotEnter(const Error& e) {
  const ErrorCode c = e.code();
  return c == ErrorCode::kNotFound || c == ErrorCode::kInvalid || c == ErrorCode::kPermission;
}

bool hasAddress(const LinkState& s, const LinkAddress& a) {
  for (const auto& x : s.addresses) {
    if (x.sameAddress(a)) return true;
  }
  return false;
}

bool hasRoute(const LinkState& s, const LinkRoute& r) {
  for (const auto& x : s.routes) {
    if (x.sameRoute(r)) return true;
  }
  return false;
}

bool isDefault(const LinkRoute& r) {
  return r.type == RTN_UNICAST && r.dst.size() > 2 && r.dst.compare(r.dst.size() - 2, 2, "/0") == 0;
}

// The client address of the SSH session chaosd was started from, if any ("ip port ip port").
std::string sshConnectionClient() {
  const char* env = std::getenv("SSH_CONNECTION");
  if (env == nullptr) return "";
  std::istringstream in(env);
  std::string client;
  in >> client;
  return client;
}

// The safety rules of prepare: kInvalid naming the guardrail that would allow it.
Result<void> checkSafety(LinkNetns& ns, const LinkState& link, const std::string& iface,
                         const std::string& where, const FaultRequest& request) {
  const bool allowDefault = request.guardrails && request.guardrails->allowDefaultRouteDown;
  const bool allowSsh = request.guardrails && request.guardrails->allowSsh;
  auto ours = ns.isOurs();
  if (!ours) return std::move(ours).error();
  if (link.loopback && *ours) {
    return Error(ErrorCode::kInvalid, "network.down: " + iface +
                                          " is the loopback of chaosd's own namespace (" + where +
                                          "): taken down only inside another network namespace");
  }
  for (const auto& r : link.routes) {
    if (isDefault(r) && !allowDefault) {
      return Error(ErrorCode::kInvalid,
                   "network.down: " + iface + " in " + where + " holds the default route (" +
                       r.describe() +
                       "): refused; set guardrails.allowDefaultRouteDown: true to take it down");
    }
  }
  if (allowSsh) return success();
  auto peers = ns.sshPeers();
  if (!peers) return std::move(peers).error();
  if (*ours) {
    if (std::string client = sshConnectionClient(); !client.empty()) peers->push_back(client);
  }
  for (const auto& peer : *peers) {
    auto oif = ns.routeOut(peer);
    if (!oif) return std::move(oif).error().withContext("the route to SSH peer " + peer);
    if (*oif == link.ifindex) {
      return Error(ErrorCode::kInvalid,
                   "network.down: " + iface + " in " + where + " carries the SSH session of " +
                       peer + ": refused; set guardrails.allowSsh: true to take it down");
    }
  }
  return success();
}

}  // namespace

LinkDownInjector::LinkDownInjector(std::shared_ptr<LinkKernel> kernel)
    : kernel_(std::move(kernel)) {}

Result<PreparedFault> LinkDownInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, "network.down needs an interface target");
  }
  LinkDownUndo u;
  u.faultId = request.faultId;
  u.iface = target->interface.name;
  u.netnsPath = target->interface.netns.nsPath();
  const std::string whereText = target->interface.netns.describe();
  auto ns = kernel_->enter(u.netnsPath);
  if (!ns) return std::move(ns).error().withContext("network.down: " + whereText);
  auto link = (*ns)->link(u.iface);
  if (!link) return std::move(link).error().withContext("network.down in " + whereText);
  if (!link->up) {
    return Error(ErrorCode::kInvalid,
                 "network.down: " + u.iface + " in " + whereText +
                     " is down already; the fault takes down only a link that is up");
  }
  CHAOSD_TRY(checkSafety(**ns, *link, u.iface, whereText, request));
  u.ifindex = link->ifindex;
  u.addresses = link->addresses;
  u.routes = link->routes;
  int kernelMade = 0;
  for (const auto& r : u.routes) kernelMade += r.kernelMade() ? 1 : 0;

  PreparedFault out;
  std::ostringstream d;
  d << "link " << u.iface << " down in " << whereText << " (ifindex " << u.ifindex << "); "
    << u.addresses.size() << " address" << (u.addresses.size() == 1 ? "" : "es") << " and "
    << u.routes.size() - kernelMade << " route" << (u.routes.size() - kernelMade == 1 ? "" : "s")
    << " recorded to restore";
  if (link->multipathRoutes > 0) {
    d << "; " << link->multipathRoutes << " multipath route(s) through it are not restored";
  }
  out.description = d.str();
  out.resources = {"link:" + u.netnsPath + ":" + u.iface};
  out.undo = u.toJson();
  return out;
}

Result<AppliedFault> LinkDownInjector::apply(const std::string& faultId, const json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  auto ns = kernel_->enter(u->netnsPath);
  if (!ns) return std::move(ns).error();
  auto link = (*ns)->link(u->iface);
  if (!link) return std::move(link).error();
  if (link->ifindex != u->ifindex || !link->up) {
    std::lock_guard lock(mutex_);
    foundDown_.insert(faultId);
    return Error(ErrorCode::kConflict,
                 "network.down: " + where(*u) +
                     (link->up ? " was recreated since prepare" : " went down since prepare") +
                     "; left as it is");
  }
  CHAOSD_TRY((*ns)->setUp(u->ifindex, false));
  {
    std::lock_guard lock(mutex_);
    downAt_[faultId] = Clock::now();
  }
  log::get("network")->info("network.down applied fault={} link={} ifindex={}", faultId, where(*u),
                            u->ifindex);
  AppliedFault applied;
  applied.backend = "rtnetlink";
  json dropped = json::array();
  json droppedRoutes = json::array();
  if (auto after = (*ns)->link(u->iface)) {
    for (const auto& a : u->addresses) {
      if (!hasAddress(*after, a)) dropped.push_back(a.local);
    }
    for (const auto& r : u->routes) {
      if (!hasRoute(*after, r)) droppedRoutes.push_back(r.describe());
    }
  }
  applied.observed = {{"link", u->iface},
                      {"netns", u->netnsPath.empty() ? "host" : u->netnsPath},
                      {"ifindex", u->ifindex},
                      {"addressesDroppedByKernel", dropped},
                      {"routesDroppedByKernel", droppedRoutes}};
  return applied;
}

Result<json> LinkDownInjector::revert(const std::string& faultId, const json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  std::optional<Clock::time_point> downAt;
  {
    std::lock_guard lock(mutex_);
    if (foundDown_.count(faultId) != 0) {
      return json{{"note", "the fault did not take the link down: left as it is"}};
    }
    if (auto it = downAt_.find(faultId); it != downAt_.end()) {
      downAt = it->second;
      downAt_.erase(it);
    }
  }
  const auto start = Clock::now();
  auto ns = kernel_->enter(u->netnsPath);
  if (!ns && ns.error().code() == ErrorCode::kNotFound) {
    return json{{"note", "the network namespace is gone"}};
  }
  if (!ns) return std::move(ns).error();
  auto link = (*ns)->link(u->iface);
  if (!link && link.error().code() == ErrorCode::kNotFound) {
    return json{{"note", "the link is gone"}};
  }
  if (!link) return std::move(link).error();
  if (link->ifindex != u->ifindex) {
    return json{{"note", "a link of the same name with another index (" +
                             std::to_string(link->ifindex) + ", was " + std::to_string(u->ifindex) +
                             "): not ours, left alone"}};
  }
  const bool raised = !link->up;
  if (raised) CHAOSD_TRY((*ns)->setUp(u->ifindex, true));

  json addresses = json::array();
  auto now = (*ns)->link(u->iface);
  if (!now) return std::move(now).error();
  for (const auto& a : u->addresses) {
    if (hasAddress(*now, a)) continue;
    auto added = (*ns)->addAddress(u->ifindex, a);
    if (!added && added.error().code() != ErrorCode::kConflict) {
      return std::move(added).error().withContext("network.down revert of " + where(*u));
    }
    addresses.push_back(a.local);
  }
  // Routes after the addresses (a gateway needs its on-link prefix, a source its address), in
  // passes: a recorded route may need another recorded one first.
  json routes = json::array();
  std::vector<const LinkRoute*> missing;
  now = (*ns)->link(u->iface);
  if (!now) return std::move(now).error();
  int leftToKernel = 0;
  for (const auto& r : u->routes) {
    if (r.kernelMade()) {
      ++leftToKernel;
    } else if (!hasRoute(*now, r)) {
      missing.push_back(&r);
    }
  }
  std::optional<Error> lastError;
  for (int pass = 0; pass < 3 && !missing.empty(); ++pass) {
    std::vector<const LinkRoute*> failed;
    for (const LinkRoute* r : missing) {
      auto added = (*ns)->addRoute(u->ifindex, *r);
      if (added || added.error().code() == ErrorCode::kConflict) {
        routes.push_back(r->describe());
      } else {
        lastError = std::move(added).error();
        failed.push_back(r);
      }
    }
    if (failed.size() == missing.size()) break;
    missing = std::move(failed);
  }
  if (!missing.empty() && lastError) {
    return std::move(*lastError)
        .withContext("network.down revert of " + where(*u) + ": " + std::to_string(missing.size()) +
                     " route(s) could not be restored");
  }
  const double restoreMs = msSince(start);
  log::get("network")->info(
      "network.down reverted fault={} link={} raised={} addresses={} "
      "routes={} ms={:.2f}",
      faultId, where(*u), raised, addresses.size(), routes.size(), restoreMs);
  json out = {{"link", u->iface},         {"netns", u->netnsPath.empty() ? "host" : u->netnsPath},
              {"raised", raised},         {"addressesRestored", addresses},
              {"routesRestored", routes}, {"routesLeftToKernel", leftToKernel},
              {"restoreMs", restoreMs}};
  if (downAt) out["downMs"] = std::chrono::duration<double, std::milli>(start - *downAt).count();
  return out;
}

Result<std::vector<std::string>> LinkDownInjector::audit(const json& undo) {
  auto u = recordOf(undo, "");
  if (!u) return std::move(u).error();
  {
    std::lock_guard lock(mutex_);
    if (foundDown_.count(u->faultId) != 0) return std::vector<std::string>{};
  }
  auto ns = kernel_->enter(u->netnsPath);
  if (!ns && cannotEnter(ns.error())) return std::vector<std::string>{};
  if (!ns) return std::move(ns).error();
  auto link = (*ns)->link(u->iface);
  if (!link && link.error().code() == ErrorCode::kNotFound) return std::vector<std::string>{};
  if (!link) return std::move(link).error();
  if (link->ifindex != u->ifindex) return std::vector<std::string>{};
  std::vector<std::string> left;
  if (!link->up) left.push_back("link " + where(*u) + " is still down");
  for (const auto& a : u->addresses) {
    if (!hasAddress(*link, a))
      left.push_back("address " + a.local + " of " + where(*u) + " is missing");
  }
  for (const auto& r : u->routes) {
    if (!r.kernelMade() && !hasRoute(*link, r)) {
      left.push_back("route " + r.describe() + " through " + where(*u) + " is missing");
    }
  }
  return left;
}

}  // namespace chaosd
