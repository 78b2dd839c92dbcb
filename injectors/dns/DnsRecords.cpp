#include "injectors/dns/DnsRecords.h"

#include "injectors/RecordFields.h"
#include "injectors/network/NftRecords.h"

namespace chaosd {
namespace {

using nlohmann::json;

// Reads the args' keys from `j` (the args, or the undo record, which carries them too).
Result<DnsErrorArgs> readArgs(RecordFields& f, bool record) {
  DnsErrorArgs a;
  std::string action;
  int64_t port = a.port;
  f.required("names", a.names).optional("types", a.types).required("action", action);
  f.optional(record ? "delayNs" : "delay", a.delayNs).optional("port", port);
  f.optional("protocol", a.protocol).optional("limit", a.limit);
  CHAOSD_TRY(f.done());
  auto parsed = dns::parseAction(action);
  if (!parsed) {
    return Error(ErrorCode::kInvalid,
                 "action: '" + action + "' is not nxdomain, servfail, refused, drop or delay");
  }
  a.action = *parsed;
  CHAOSD_TRY(dns::QueryMatcher::create(a.names, a.types));
  if (a.action == dns::Action::kDelay && a.delayNs <= 0) {
    return Error(ErrorCode::kInvalid, "delay: action delay needs a delay (250ms, 2s)");
  }
  if (port < 1 || port > 65535) {
    return Error(ErrorCode::kInvalid, "port: " + std::to_string(port) + " is not a port");
  }
  a.port = static_cast<uint16_t>(port);
  if (a.protocol != "udp" && a.protocol != "tcp" && a.protocol != "both") {
    return Error(ErrorCode::kInvalid, "protocol: '" + a.protocol + "' is not udp, tcp or both");
  }
  if (a.limit < 1 || a.limit > 1'000'000) {
    return Error(ErrorCode::kInvalid, "limit: " + std::to_string(a.limit) + " is out of range");
  }
  return a;
}

void writeArgs(const DnsErrorArgs& a, json& out, bool record) {
  out["names"] = a.names;
  out["types"] = a.types;
  out["action"] = std::string(dns::actionName(a.action));
  out[record ? "delayNs" : "delay"] = a.delayNs;
  out["port"] = a.port;
  out["protocol"] = a.protocol;
  out["limit"] = a.limit;
}

}  // namespace

Result<DnsErrorArgs> DnsErrorArgs::fromJson(const json& args) {
  RecordFields f(args, "the args of dns.error");
  return readArgs(f, false);
}

json DnsErrorArgs::toJson() const {
  json out = json::object();
  writeArgs(*this, out, false);
  return out;
}

NetnsRef DnsErrorUndo::netns() const { return netnsAtPath(netnsPath); }

Result<void> DnsErrorUndo::belongsTo(std::string_view otherFaultId) const {
  return sameFault(faultId, otherFaultId);
}

Result<DnsErrorUndo> DnsErrorUndo::fromJson(const json& undo) {
  DnsErrorUndo u;
  RecordFields f(undo, "dns.error undo record");
  int64_t queue = -1;
  f.required("faultId", u.faultId).required("table", u.table).required("queue", queue);
  f.optional("netns", u.netnsPath).required("iface", u.iface).optional("rules", u.rules);
  CHAOSD_TRY(f.done());
  if (!isChaosdTable(u.table)) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + u.table + ": not ours");
  }
  if (queue < 0 || queue > UINT16_MAX) {
    return Error(ErrorCode::kInvalid, "NFQUEUE queue " + std::to_string(queue) + " is no queue");
  }
  u.queue = static_cast<uint16_t>(queue);
  auto args = readArgs(f, true);
  if (!args) return std::move(args).error().withContext("dns.error undo record");
  u.args = std::move(*args);
  return u;
}

json DnsErrorUndo::toJson() const {
  json out{{"faultId", faultId}, {"table", table}, {"family", "inet"}, {"netns", netnsPath},
           {"iface", iface},     {"queue", queue}, {"rules", rules}};
  writeArgs(args, out, true);
  return out;
}

}  // namespace chaosd
