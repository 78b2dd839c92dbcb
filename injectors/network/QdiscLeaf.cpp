#include "injectors/network/QdiscLeaf.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <utility>

#include "injectors/network/QdiscJsonReader.h"

namespace chaosd {
namespace {

using json = nlohmann::json;
using qdisc::JsonReader;
using qdisc::kInt64Max;
using qdisc::kInt64Min;

// Integers libnl takes as int are kept as written (prepare bounds them) and cast at the call,
// as the record's reader always did.
Result<QdiscLeaf> tbfFromJson(JsonReader& r) {
  TbfLeaf t;
  t.rate = static_cast<uint64_t>(r.integer("rate", 0, kInt64Max));
  t.burst = static_cast<uint64_t>(r.integer("burst", 0, kInt64Max));
  t.limit = r.optInteger("limit", 0, kInt64Max);
  t.latencyUs = r.optInteger("latencyUs", kInt64Min, kInt64Max);
  if (!t.limit && !t.latencyUs && !r.failed()) r.fail("a tbf leaf needs limit or latencyUs");
  CHAOSD_TRY(r.finish());
  return QdiscLeaf{t};
}

Result<QdiscLeaf> netemFromJson(JsonReader& r) {
  NetemLeaf n;
  n.limit = r.optInteger("limit", kInt64Min, kInt64Max).value_or(1000);
  n.delayUs = r.optInteger("delayUs", kInt64Min, kInt64Max);
  n.jitterUs = r.optInteger("jitterUs", kInt64Min, kInt64Max);
  n.correlation = r.optNumber("correlation");
  n.loss = r.optNumber("loss");
  n.lossCorrelation = r.optNumber("lossCorrelation");
  n.duplicate = r.optNumber("duplicate");
  n.corrupt = r.optNumber("corrupt");
  n.reorder = r.optNumber("reorder");
  n.gap = r.optInteger("gap", kInt64Min, kInt64Max);
  n.rateBytes = r.optInteger("rateBytes", 0, kInt64Max);
  n.distributionFile = r.optString("distributionFile");
  CHAOSD_TRY(r.finish());
  return QdiscLeaf{n};
}

template <typename T>
void put(json& out, const char* key, const std::optional<T>& v) {
  if (v) out[key] = *v;
}

json netemJson(const NetemLeaf& n) {
  json out = {{"kind", "netem"}, {"limit", n.limit}};
  put(out, "delayUs", n.delayUs);
  put(out, "jitterUs", n.jitterUs);
  put(out, "correlation", n.correlation);
  put(out, "loss", n.loss);
  put(out, "lossCorrelation", n.lossCorrelation);
  put(out, "duplicate", n.duplicate);
  put(out, "corrupt", n.corrupt);
  put(out, "reorder", n.reorder);
  put(out, "gap", n.gap);
  put(out, "rateBytes", n.rateBytes);
  put(out, "distributionFile", n.distributionFile);
  return out;
}

Result<QdiscLeaf> tbfFor(const QdiscArgs& a) {
  if (!a.rate) return Error(ErrorCode::kInvalid, "network.bandwidth needs a rate");
  const uint64_t rate = *a.rate / 8;  // bytes/s
  if (rate > static_cast<uint64_t>(INT_MAX)) {
    return Error(ErrorCode::kUnsupported,
                 "tbf through libnl 3.7 takes at most 2^31-1 bytes/s (about 17 Gbit/s)");
  }
  const uint64_t burst = a.burst ? *a.burst : std::max<uint64_t>(rate / 250, 16384);
  TbfLeaf t{rate, std::min<uint64_t>(burst, INT_MAX), std::nullopt, std::nullopt};
  if (a.limit) {
    t.limit = std::min<uint64_t>(*a.limit, INT_MAX);
  } else {
    t.latencyUs = a.latency.value_or(50'000'000) / 1000;
  }
  return QdiscLeaf{t};
}

// iproute2's table for a jitter distribution other than uniform.
Result<std::string> distributionTable(const std::string& dist) {
  for (const char* dir :
       {"/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/tc", "/usr/lib64/tc", "/usr/local/lib/tc"}) {
    const std::string p = std::string(dir) + "/" + dist + ".dist";
    if (std::filesystem::exists(p)) return p;
  }
  return Error(
      ErrorCode::kNotFound,
      "no " + dist + ".dist table (iproute2 installs them in /usr/lib/x86_64-linux-gnu/tc)");
}

Result<QdiscLeaf> netemFor(const QdiscArgs& a, const std::string& faultType,
                           const NetemProbe& hasNetem) {
  auto has = hasNetem();
  if (!has) return std::move(has).error().withContext("checking for sch_netem");
  if (!*has) {
    return Error(ErrorCode::kUnsupported,
                 missingNetem() + ": " + faultType + " cannot be applied with netem here");
  }
  NetemLeaf n;
  n.limit = a.limit ? static_cast<int64_t>(std::min<uint64_t>(*a.limit, INT_MAX)) : 1000;
  const int64_t delay = a.delay.value_or(0);
  const int64_t jitter = a.jitter.value_or(0);
  if (delay / 1000 > INT_MAX || jitter / 1000 > INT_MAX) {
    return Error(ErrorCode::kUnsupported, "netem through libnl 3.7 delays at most 2^31-1 us");
  }
  if (delay > 0) n.delayUs = delay / 1000;
  if (jitter > 0) n.jitterUs = jitter / 1000;
  n.correlation = a.correlation;
  n.loss = a.loss;
  n.lossCorrelation = a.lossCorrelation;
  n.duplicate = a.duplicate;
  n.corrupt = a.corrupt;
  n.reorder = a.reorder;
  n.gap = a.gap;
  if (a.rate) n.rateBytes = *a.rate / 8;
  const std::string dist = a.distribution.value_or("uniform");
  if (dist != "uniform") {
    auto table = distributionTable(dist);
    if (!table) return std::move(table).error();
    n.distributionFile = *table;
  }
  return QdiscLeaf{n};
}

}  // namespace

Result<QdiscLeaf> QdiscLeaf::fromJson(const json& leaf) {
  JsonReader r(leaf, "qdisc undo record: leaf");
  const std::string kind = r.string("kind");
  CHAOSD_TRY(r.finish());
  if (kind == "tbf") return tbfFromJson(r);
  if (kind == "netem") return netemFromJson(r);
  return Error(ErrorCode::kInvalid, "qdisc undo record: a leaf of kind '" + kind +
                                        "' (chaosd adds tbf and netem leaves only)");
}

json QdiscLeaf::toJson() const {
  if (const auto* n = std::get_if<NetemLeaf>(&shape)) return netemJson(*n);
  const auto& t = std::get<TbfLeaf>(shape);
  json out = {{"kind", "tbf"}, {"rate", t.rate}, {"burst", t.burst}};
  put(out, "limit", t.limit);
  put(out, "latencyUs", t.latencyUs);
  return out;
}

Result<QdiscLeaf> leafForFault(const std::string& faultType, const QdiscArgs& args,
                               const NetemProbe& hasNetem) {
  if (faultType == "network.bandwidth") return tbfFor(args);
  return netemFor(args, faultType, hasNetem);
}

std::string missingNetem() {
  return "this kernel has no sch_netem (the netem qdisc module is neither built in nor "
         "loadable)";
}

}  // namespace chaosd
