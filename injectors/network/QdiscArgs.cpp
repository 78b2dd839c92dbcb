#include "injectors/network/QdiscArgs.h"

#include <utility>

#include "injectors/network/QdiscJsonReader.h"

namespace chaosd {
namespace {

using json = nlohmann::json;
using qdisc::JsonReader;
using qdisc::kInt64Max;
using qdisc::kInt64Min;

constexpr std::pair<QdiscProtocol, std::string_view> kProtocols[] = {
    {QdiscProtocol::kAll, "all"},
    {QdiscProtocol::kTcp, "tcp"},
    {QdiscProtocol::kUdp, "udp"},
    {QdiscProtocol::kIcmp, "icmp"}};

std::string_view protocolName(QdiscProtocol p) {
  for (const auto& [value, name] : kProtocols) {
    if (value == p) return name;
  }
  return "all";
}

Result<QdiscProtocol> protocolFrom(const std::string& name) {
  for (const auto& [value, known] : kProtocols) {
    if (known == name) return value;
  }
  return Error(ErrorCode::kInvalid, "protocol '" + name + "' is not one of all, tcp, udp, icmp");
}

// A list member: its elements, or the value alone (the schema takes one value as a list of one).
std::vector<const json*> elementsOf(const json& list) {
  std::vector<const json*> out;
  if (list.is_array()) {
    for (const auto& e : list) out.push_back(&e);
  } else {
    out.push_back(&list);
  }
  return out;
}

Result<std::vector<units::Cidr>> cidrsFrom(const json& list) {
  std::vector<units::Cidr> out;
  for (const json* c : elementsOf(list)) {
    if (!c->is_string()) return Error(ErrorCode::kInvalid, "not a CIDR: " + c->dump());
    auto cidr = units::parseCidr(c->get<std::string>());
    if (!cidr) return std::move(cidr).error();
    out.push_back(*cidr);
  }
  return out;
}

// {"first": 8000, "last": 8100}; `last` defaults to `first`.
Result<std::vector<units::PortRange>> portsFrom(const json& list) {
  std::vector<units::PortRange> out;
  for (const json* p : elementsOf(list)) {
    JsonReader r(*p, "a port range");
    const int64_t first = r.optInteger("first", 0, 65535).value_or(0);
    const int64_t last = r.optInteger("last", 0, 65535).value_or(first);
    CHAOSD_TRY(r.finish());
    if (first > last) return Error(ErrorCode::kInvalid, "a reversed port range: " + p->dump());
    out.push_back({static_cast<uint16_t>(first), static_cast<uint16_t>(last)});
  }
  return out;
}

Result<QdiscEndpoint> endpointFrom(const json* side, const char* name) {
  QdiscEndpoint out;
  if (side == nullptr || side->is_null()) return out;
  JsonReader r(*side, std::string("the fault's `") + name + "` args");
  if (const json* cidrs = r.optMember("cidr")) out.cidrs = r.take(cidrsFrom(*cidrs));
  if (const json* ports = r.optMember("ports")) out.ports = r.take(portsFrom(*ports));
  CHAOSD_TRY(r.finish());
  return out;
}

json endpointJson(const QdiscEndpoint& e) {
  json out = json::object();
  if (!e.cidrs.empty()) {
    json cidrs = json::array();
    for (const auto& c : e.cidrs) cidrs.push_back(c.str());
    out["cidr"] = std::move(cidrs);
  }
  if (!e.ports.empty()) {
    json ports = json::array();
    for (const auto& p : e.ports) ports.push_back({{"first", p.first}, {"last", p.last}});
    out["ports"] = std::move(ports);
  }
  return out;
}

void readShaping(JsonReader& r, QdiscArgs& a) {
  a.rate = r.optInteger("rate", 0, kInt64Max);
  a.burst = r.optInteger("burst", 0, kInt64Max);
  a.limit = r.optInteger("limit", 0, kInt64Max);
  a.latency = r.optInteger("latency", kInt64Min, kInt64Max);
  a.delay = r.optInteger("delay", kInt64Min, kInt64Max);
  a.jitter = r.optInteger("jitter", kInt64Min, kInt64Max);
  a.correlation = r.optNumber("correlation");
  a.loss = r.optNumber("loss");
  a.lossCorrelation = r.optNumber("lossCorrelation");
  a.duplicate = r.optNumber("duplicate");
  a.corrupt = r.optNumber("corrupt");
  a.reorder = r.optNumber("reorder");
  a.gap = r.optInteger("gap", kInt64Min, kInt64Max);
  a.distribution = r.optString("distribution");
}

template <typename T>
void put(json& out, const char* key, const std::optional<T>& v) {
  if (v) out[key] = *v;
}

}  // namespace

std::string_view qdiscDirectionName(QdiscDirection direction) {
  return direction == QdiscDirection::kIngress ? "ingress" : "egress";
}

Result<QdiscDirection> qdiscDirectionFrom(const std::string& name) {
  if (name == "egress") return QdiscDirection::kEgress;
  if (name == "ingress") return QdiscDirection::kIngress;
  return Error(ErrorCode::kInvalid, "direction '" + name + "' is not egress or ingress");
}

Result<QdiscArgs> QdiscArgs::fromJson(const json& args) {
  const json none = json::object();
  JsonReader r(args.is_null() ? none : args, "the qdisc fault's args");
  QdiscArgs a;
  readShaping(r, a);
  a.match.to = r.take(endpointFrom(r.optMember("to"), "to"));
  a.match.from = r.take(endpointFrom(r.optMember("from"), "from"));
  a.match.protocol = r.take(protocolFrom(r.optString("protocol").value_or("all")));
  a.direction = r.take(qdiscDirectionFrom(r.optString("direction").value_or("egress")));
  CHAOSD_TRY(r.finish());
  return a;
}

json QdiscArgs::toJson() const {
  json out = json::object();
  put(out, "rate", rate);
  put(out, "burst", burst);
  put(out, "limit", limit);
  put(out, "latency", latency);
  put(out, "delay", delay);
  put(out, "jitter", jitter);
  put(out, "correlation", correlation);
  put(out, "loss", loss);
  put(out, "lossCorrelation", lossCorrelation);
  put(out, "duplicate", duplicate);
  put(out, "corrupt", corrupt);
  put(out, "reorder", reorder);
  put(out, "gap", gap);
  put(out, "distribution", distribution);
  if (!match.to.empty()) out["to"] = endpointJson(match.to);
  if (!match.from.empty()) out["from"] = endpointJson(match.from);
  out["protocol"] = std::string(protocolName(match.protocol));
  out["direction"] = std::string(qdiscDirectionName(direction));
  return out;
}

}  // namespace chaosd
