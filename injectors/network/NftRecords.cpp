#include "injectors/network/NftRecords.h"

#include <cctype>
#include <cstdint>
#include <utility>

namespace chaosd {
namespace {

using nlohmann::json;

// Both records: a table record is an nftables undo record too.
constexpr std::string_view kRecord = "an nftables undo record";

// The netem-only args, in the order their error is reported.
constexpr const char* kNetemOnlyForLoss[] = {"delay",       "jitter",          "duplicate",
                                             "corrupt",     "reorder",         "rate",
                                             "correlation", "lossCorrelation", "gap"};

// A port range as the args write it ({first, last}); last defaults to first.
Result<units::PortRange> portRangeOf(const json& p) {
  const auto first = p.value("first", int64_t{0});
  const auto last = p.value("last", first);
  if (first < 0 || first > 65535 || last < 0 || last > 65535) {
    return Error(ErrorCode::kInvalid, "not a port range: " + recordText(p));
  }
  return units::PortRange{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

// The record's table: a string, and one of ours.
Result<std::string> ourTable(const json& undo) {
  if (!undo.contains("table") || !undo["table"].is_string()) {
    return Error(ErrorCode::kInvalid, "not " + std::string(kRecord) + ": " + recordText(undo));
  }
  auto table = undo["table"].get<std::string>();
  if (!isChaosdTable(table)) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + table + ": not ours");
  }
  return table;
}

// The readers behind each fromJson, run in parseJsonObject's frame (an object; a JSON type
// error is kInvalid).

Result<NftEndpoint> readEndpoint(const json& j) {
  NftEndpoint e;
  e.cidrs = j.value("cidr", std::vector<std::string>{});
  e.hostAddresses = j.value("hostAddresses", std::vector<std::string>{});
  for (const auto& p : j.value("ports", json::array())) {
    auto range = portRangeOf(p);
    if (!range) return std::move(range).error();
    e.ports.push_back(*range);
  }
  return e;
}

Result<NftPartitionArgs> readPartitionArgs(const json& args) {
  auto peers = NftEndpoint::fromJson(args);
  if (!peers) return std::move(peers).error();
  NftPartitionArgs a;
  a.peers = std::move(*peers);
  a.protocol = args.value("protocol", a.protocol);
  a.direction = args.value("direction", a.direction);
  a.reject = args.value("reject", a.reject);
  return a;
}

Result<NftLossArgs> readLossArgs(const json& args) {
  for (const char* k : kNetemOnlyForLoss) {
    if (args.contains(k)) {
      return Error(ErrorCode::kUnsupported,
                   std::string("'") + k + "' needs the netem backend (backend: netem)");
    }
  }
  NftLossArgs a;
  a.loss = args.value("loss", 0.0);
  a.egress = args.value("direction", std::string("egress")) == "egress";
  a.protocol = args.value("protocol", a.protocol);
  for (auto [key, side] : {std::pair{"to", &a.to}, std::pair{"from", &a.from}}) {
    if (!args.contains(key)) continue;
    auto e = NftEndpoint::fromJson(args[key]);
    if (!e) return std::move(e).error();
    *side = std::move(*e);
  }
  return a;
}

Result<NftRuleUndo> readRuleUndo(const json& undo) {
  auto table = ourTable(undo);
  if (!table) return std::move(table).error();
  if (!undo.contains("script") || !undo.contains("comment")) {
    return Error(ErrorCode::kInvalid, "not an nftables fault undo record: " + recordText(undo));
  }
  NftRuleUndo u;
  u.faultId = undo.value("faultId", std::string());
  u.table = std::move(*table);
  u.netnsPath = undo.value("netns", std::string());
  u.iface = undo.value("iface", std::string());
  u.comment = undo["comment"].get<std::string>();
  u.script = undo["script"].get<std::string>();
  u.faultType = undo.value("faultType", std::string());
  u.hostSet = undo.value("hostSet", std::string());
  u.hostAddresses = undo.value("hostAddresses", std::vector<std::string>{});
  for (char c : u.hostSet) {
    // Spliced into nft text: only the characters nftablesHostSet() writes.
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Error(ErrorCode::kInvalid, "not an nftables set name: " + u.hostSet);
    }
  }
  return u;
}

Result<NftTableUndo> readTableUndo(const json& undo) {
  auto table = ourTable(undo);
  if (!table) return std::move(table).error();
  NftTableUndo u;
  u.table = std::move(*table);
  u.netnsPath = undo.value("netns", std::string());
  u.script = undo.value("script", std::string());
  return u;
}

}  // namespace

NetnsRef netnsAtPath(const std::string& path) {
  NetnsRef ref;
  ref.path = path;
  return ref;
}

bool isChaosdTable(std::string_view table) { return table.starts_with("chaosd_"); }

Result<void> sameFault(std::string_view recorded, std::string_view asked) {
  if (!asked.empty() && recorded != asked) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to another fault");
  }
  return success();
}

std::string recordText(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<NftEndpoint> NftEndpoint::fromJson(const json& j) {
  return parseJsonObject("an address and port filter", j, readEndpoint);
}

json NftEndpoint::toJson() const {
  json out = json::object();
  if (!cidrs.empty()) out["cidr"] = cidrs;
  if (!hostAddresses.empty()) out["hostAddresses"] = hostAddresses;
  if (!ports.empty()) {
    json list = json::array();
    for (const auto& p : ports) list.push_back({{"first", p.first}, {"last", p.last}});
    out["ports"] = std::move(list);
  }
  return out;
}

Result<NftPartitionArgs> NftPartitionArgs::fromJson(const json& args) {
  return parseJsonObject("the args of network.partition", args, readPartitionArgs);
}

json NftPartitionArgs::toJson() const {
  json out = peers.toJson();
  out["protocol"] = protocol;
  out["direction"] = direction;
  out["reject"] = reject;
  return out;
}

Result<NftLossArgs> NftLossArgs::fromJson(const json& args) {
  return parseJsonObject("the args of network.loss", args, readLossArgs);
}

json NftLossArgs::toJson() const {
  json out = {{"loss", loss}, {"direction", egress ? "egress" : "ingress"}, {"protocol", protocol}};
  for (auto [key, side] : {std::pair{"to", &to}, std::pair{"from", &from}}) {
    if (!side->cidrs.empty() || !side->ports.empty() || !side->hostAddresses.empty()) {
      out[key] = side->toJson();
    }
  }
  return out;
}

NetnsRef NftRuleUndo::netns() const { return netnsAtPath(netnsPath); }

Result<void> NftRuleUndo::belongsTo(std::string_view otherFaultId) const {
  return sameFault(faultId, otherFaultId);
}

Result<NftRuleUndo> NftRuleUndo::fromJson(const json& undo) {
  return parseJsonObject(kRecord, undo, readRuleUndo);
}

json NftRuleUndo::toJson() const {
  json out = {{"faultId", faultId}, {"table", table},     {"family", "inet"}, {"netns", netnsPath},
              {"iface", iface},     {"comment", comment}, {"script", script}};
  if (!hostSet.empty()) {
    out["faultType"] = faultType;
    out["hostSet"] = hostSet;
    out["hostAddresses"] = hostAddresses;
  }
  return out;
}

NetnsRef NftTableUndo::netns() const { return netnsAtPath(netnsPath); }

Result<NftTableUndo> NftTableUndo::fromJson(const json& undo) {
  return parseJsonObject(kRecord, undo, readTableUndo);
}

json NftTableUndo::toJson() const {
  return {{"table", table}, {"family", "inet"}, {"netns", netnsPath}, {"script", script}};
}

}  // namespace chaosd
