#include "injectors/network/NfqueueRecords.h"

#include <utility>

#include "injectors/network/ReleaseQueue.h"

namespace chaosd {
namespace {

using nlohmann::json;

constexpr std::string_view kRecord = "an NFQUEUE delay undo record";

// The netem-only args, in the order their error is reported.
constexpr const char* kNetemOnlyForDelay[] = {"loss", "duplicate",   "corrupt",         "reorder",
                                              "rate", "correlation", "lossCorrelation", "gap"};

Result<std::optional<NftEndpoint>> endpointAt(const json& j, const char* key) {
  if (!j.contains(key)) return std::optional<NftEndpoint>();
  auto e = NftEndpoint::fromJson(j[key]);
  if (!e) return std::move(e).error();
  return std::optional<NftEndpoint>(std::move(*e));
}

// The readers behind each fromJson, run in parseJsonObject's frame (an object; a JSON type
// error is kInvalid).

Result<NfqueueFilter> readFilter(const json& j) {
  NfqueueFilter f;
  auto to = endpointAt(j, "to");
  if (!to) return std::move(to).error();
  auto from = endpointAt(j, "from");
  if (!from) return std::move(from).error();
  f.to = std::move(*to);
  f.from = std::move(*from);
  if (j.contains("protocol")) f.protocol = j["protocol"].get<std::string>();
  return f;
}

Result<NfqueueDelayArgs> readDelayArgs(const json& args) {
  for (const char* k : kNetemOnlyForDelay) {
    if (args.contains(k)) {
      return Error(ErrorCode::kUnsupported,
                   std::string("'") + k + "' needs the netem backend (NFQUEUE only delays)");
    }
  }
  NfqueueDelayArgs a;
  a.delayNs = args.value("delay", int64_t{0});
  a.jitterNs = args.value("jitter", int64_t{0});
  if (a.delayNs <= 0 && a.jitterNs <= 0) {
    return Error(ErrorCode::kInvalid, "a delay fault needs a delay");
  }
  a.distribution = args.value("distribution", a.distribution);
  CHAOSD_TRY(nfq::parseJitterShape(a.distribution));
  a.limit = args.value("limit", a.limit);
  a.egress = args.value("direction", std::string("egress")) == "egress";
  auto filter = NfqueueFilter::fromJson(args);
  if (!filter) return std::move(filter).error();
  a.filter = std::move(*filter);
  return a;
}

Result<NfqueueDelayUndo> readDelayUndo(const json& undo) {
  if (!undo.contains("table") || !undo.contains("queue") || !undo.contains("filter")) {
    return Error(ErrorCode::kInvalid, "not " + std::string(kRecord) + ": " + recordText(undo));
  }
  NfqueueDelayUndo u;
  u.table = undo["table"].get<std::string>();
  if (!isChaosdTable(u.table)) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + u.table + ": not ours");
  }
  const auto queue = undo["queue"].get<int64_t>();
  if (queue < 0 || queue > UINT16_MAX) {
    return Error(ErrorCode::kInvalid, "NFQUEUE queue " + std::to_string(queue) + " is no queue");
  }
  u.queue = static_cast<uint16_t>(queue);
  auto filter = NfqueueFilter::fromJson(undo["filter"]);
  if (!filter) return std::move(filter).error();
  u.filter = std::move(*filter);
  u.faultId = undo.value("faultId", std::string());
  u.netnsPath = undo.value("netns", std::string());
  u.iface = undo.value("iface", std::string());
  u.egress = undo.value("direction", std::string("egress")) == "egress";
  u.rules = undo.value("rules", std::vector<std::string>{});
  u.delayNs = undo.value("delayNs", int64_t{0});
  u.jitterNs = undo.value("jitterNs", int64_t{0});
  u.distribution = undo.value("distribution", u.distribution);
  u.limit = undo.value("limit", u.limit);
  u.seed = undo.value("seed", uint64_t{0});
  return u;
}

}  // namespace

Result<NfqueueFilter> NfqueueFilter::fromJson(const json& j) {
  return parseJsonObject("a packet filter", j, readFilter);
}

json NfqueueFilter::toJson() const {
  json out = json::object();
  if (to) out["to"] = to->toJson();
  if (from) out["from"] = from->toJson();
  if (protocol) out["protocol"] = *protocol;
  return out;
}

Result<NfqueueDelayArgs> NfqueueDelayArgs::fromJson(const json& args) {
  return parseJsonObject("the args of network.delay", args, readDelayArgs);
}

json NfqueueDelayArgs::toJson() const {
  json out = filter.toJson();
  out["delay"] = delayNs;
  out["jitter"] = jitterNs;
  out["distribution"] = distribution;
  out["limit"] = limit;
  out["direction"] = egress ? "egress" : "ingress";
  return out;
}

NetnsRef NfqueueDelayUndo::netns() const { return netnsAtPath(netnsPath); }

Result<void> NfqueueDelayUndo::belongsTo(std::string_view otherFaultId) const {
  return sameFault(faultId, otherFaultId);
}

Result<NfqueueDelayUndo> NfqueueDelayUndo::fromJson(const json& undo) {
  return parseJsonObject(kRecord, undo, readDelayUndo);
}

json NfqueueDelayUndo::toJson() const {
  return {{"faultId", faultId},
          {"table", table},
          {"family", "inet"},
          {"netns", netnsPath},
          {"iface", iface},
          {"direction", egress ? "egress" : "ingress"},
          {"filter", filter.toJson()},
          {"rules", rules},
          {"queue", queue},
          {"delayNs", delayNs},
          {"jitterNs", jitterNs},
          {"distribution", distribution},
          {"limit", limit},
          {"seed", seed}};
}

}  // namespace chaosd
