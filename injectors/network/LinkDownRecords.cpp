#include "injectors/network/LinkDownRecords.h"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cctype>
#include <cstdint>
#include <string>

#include "injectors/RecordFields.h"

namespace chaosd {
namespace {

using nlohmann::json;

constexpr std::string_view kWhat = "network.down undo record";

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalid, std::string(kWhat) + ": " + message);
}

std::string familyName(int family) { return family == AF_INET6 ? "inet6" : "inet"; }

Result<int> familyOf(const std::string& name) {
  if (name == "inet") return AF_INET;
  if (name == "inet6") return AF_INET6;
  return invalid("family '" + name + "' is not inet or inet6");
}

// An address of `family`, optionally "/prefix" (allowed only when withPrefix).
bool isAddress(const std::string& text, int family, bool withPrefix) {
  const size_t slash = text.find('/');
  if (slash != std::string::npos && !withPrefix) return false;
  const std::string host = text.substr(0, slash);
  unsigned char buf[16];
  if (::inet_pton(family, host.c_str(), buf) != 1) return false;
  if (slash == std::string::npos) return !withPrefix;
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3) return false;
  for (char c : len) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  }
  return std::stoi(len) <= (family == AF_INET ? 32 : 128);
}

bool optionalAddress(const std::string& text, int family) {
  return text.empty() || isAddress(text, family, false);
}

}  // namespace

bool isInterfaceName(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) != 0 || c == '\0') {
      return false;
    }
  }
  return true;
}

json LinkAddress::toJson() const {
  return {{"family", familyName(family)},
          {"local", local},
          {"peer", peer},
          {"broadcast", broadcast},
          {"scope", scope},
          {"flags", flags},
          {"label", label}};
}

Result<LinkAddress> LinkAddress::fromJson(const json& j) {
  LinkAddress a;
  std::string family;
  uint64_t flags = 0;
  RecordFields f(j, std::string(kWhat) + " address");
  f.required("family", family)
      .required("local", a.local)
      .optional("peer", a.peer)
      .optional("broadcast", a.broadcast)
      .optional("scope", a.scope)
      .optional("flags", flags)
      .optional("label", a.label);
  CHAOSD_TRY(f.done());
  if (flags > UINT32_MAX) return invalid("address flags out of range");
  a.flags = static_cast<uint32_t>(flags);
  auto fam = familyOf(family);
  if (!fam) return std::move(fam).error();
  a.family = *fam;
  if (!isAddress(a.local, a.family, true) || !optionalAddress(a.peer, a.family) ||
      !optionalAddress(a.broadcast, a.family)) {
    return invalid("address '" + a.local + "' (peer '" + a.peer + "', broadcast '" + a.broadcast +
                   "') is not an " + family + " address/prefix");
  }
  if (a.scope < 0 || a.scope > 255) return invalid("address scope out of range");
  if (a.label.size() > 15) return invalid("address label longer than 15");
  return a;
}

bool LinkRoute::kernelMade() const { return protocol == RTPROT_KERNEL; }

bool LinkRoute::sameRoute(const LinkRoute& o) const {
  return family == o.family && table == o.table && dst == o.dst && priority == o.priority &&
         tos == o.tos && type == o.type && gateway == o.gateway;
}

std::string LinkRoute::describe() const {
  std::string out;
  if (type == RTN_LOCAL) out += "local ";
  if (type == RTN_BROADCAST) out += "broadcast ";
  if (type == RTN_MULTICAST) out += "multicast ";
  out += dst;
  if (!gateway.empty()) out += " via " + gateway;
  if (table != RT_TABLE_MAIN) {
    out += " table " + (table == RT_TABLE_LOCAL ? std::string("local") : std::to_string(table));
  }
  if (priority != 0) out += " metric " + std::to_string(priority);
  if (!src.empty()) out += " src " + src;
  if (protocol == RTPROT_KERNEL) out += " proto kernel";
  return out;
}

json LinkRoute::toJson() const {
  json m = json::array();
  for (const auto& [id, value] : metrics) m.push_back({{"id", id}, {"value", value}});
  return {{"family", familyName(family)},
          {"table", table},
          {"dst", dst},
          {"gateway", gateway},
          {"priority", priority},
          {"scope", scope},
          {"protocol", protocol},
          {"type", type},
          {"src", src},
          {"tos", tos},
          {"onlink", onlink},
          {"metrics", m}};
}

Result<LinkRoute> LinkRoute::fromJson(const json& j) {
  LinkRoute r;
  std::string family;
  uint64_t table = 0;
  uint64_t priority = 0;
  RecordFields f(j, std::string(kWhat) + " route");
  f.required("family", family)
      .required("table", table)
      .required("dst", r.dst)
      .optional("gateway", r.gateway)
      .optional("priority", priority)
      .optional("scope", r.scope)
      .optional("protocol", r.protocol)
      .optional("type", r.type)
      .optional("src", r.src)
      .optional("tos", r.tos)
      .optional("onlink", r.onlink);
  CHAOSD_TRY(f.done());
  if (table == 0 || table > UINT32_MAX || priority > UINT32_MAX) {
    return invalid("route table or metric out of range");
  }
  r.table = static_cast<uint32_t>(table);
  r.priority = static_cast<uint32_t>(priority);
  auto fam = familyOf(family);
  if (!fam) return std::move(fam).error();
  r.family = *fam;
  if (!isAddress(r.dst, r.family, true) || !optionalAddress(r.gateway, r.family) ||
      !optionalAddress(r.src, r.family)) {
    return invalid("route to '" + r.dst + "' (via '" + r.gateway + "', src '" + r.src +
                   "') does not parse as " + family);
  }
  for (int v : {r.scope, r.protocol, r.type, r.tos}) {
    if (v < 0 || v > 255) return invalid("route " + r.dst + ": a field is out of 0..255");
  }
  if (j.contains("metrics")) {
    if (!j["metrics"].is_array()) return invalid("route metrics is not an array");
    for (const auto& m : j["metrics"]) {
      int id = 0;
      uint64_t value = 0;
      RecordFields mf(m, std::string(kWhat) + " route metric");
      mf.required("id", id).required("value", value);
      CHAOSD_TRY(mf.done());
      if (id < 1 || id > RTAX_MAX || value > UINT32_MAX) {
        return invalid("route metric out of range");
      }
      r.metrics.emplace_back(id, static_cast<uint32_t>(value));
    }
  }
  return r;
}

Result<void> LinkDownUndo::belongsTo(std::string_view otherFaultId) const {
  return checkRecordOwner(kWhat, faultId, otherFaultId);
}

json LinkDownUndo::toJson() const {
  json a = json::array();
  for (const auto& x : addresses) a.push_back(x.toJson());
  json r = json::array();
  for (const auto& x : routes) r.push_back(x.toJson());
  return {{"version", version}, {"faultId", faultId}, {"netns", netnsPath}, {"iface", iface},
          {"ifindex", ifindex}, {"addresses", a},     {"routes", r}};
}

Result<LinkDownUndo> LinkDownUndo::fromJson(const json& undo) {
  LinkDownUndo u;
  RecordFields f(undo, std::string(kWhat));
  f.optional("version", u.version)
      .required("faultId", u.faultId)
      .required("netns", u.netnsPath)
      .required("iface", u.iface)
      .required("ifindex", u.ifindex);
  CHAOSD_TRY(f.done());
  if (u.version != 1) return invalid("version " + std::to_string(u.version) + " is not known");
  if (!isInterfaceName(u.iface)) return invalid("'" + u.iface + "' is not an interface name");
  if (!u.netnsPath.empty() && u.netnsPath.front() != '/') {
    return invalid("namespace path '" + u.netnsPath + "' is not absolute");
  }
  if (u.ifindex <= 0) return invalid("ifindex " + std::to_string(u.ifindex) + " is not a link's");
  for (const char* key : {"addresses", "routes"}) {
    if (!undo.contains(key) || !undo[key].is_array()) {
      return invalid(std::string("no ") + key + " array");
    }
  }
  for (const auto& j : undo["addresses"]) {
    auto a = LinkAddress::fromJson(j);
    if (!a) return std::move(a).error();
    u.addresses.push_back(std::move(*a));
  }
  for (const auto& j : undo["routes"]) {
    auto r = LinkRoute::fromJson(j);
    if (!r) return std::move(r).error();
    u.routes.push_back(std::move(*r));
  }
  return u;
}

}  // namespace chaosd
