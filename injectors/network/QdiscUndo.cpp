#include "injectors/network/QdiscUndo.h"

#include <cstdint>
#include <cstdio>
#include <set>
#include <utility>

#include "injectors/network/QdiscJsonReader.h"

namespace chaosd {
namespace {

using json = nlohmann::json;
using qdisc::integerIn;
using qdisc::JsonReader;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string toHex(const std::vector<unsigned char>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

Result<std::vector<unsigned char>> fromHex(const std::string& s) {
  if (s.size() % 2 != 0) return Error(ErrorCode::kInvalid, "odd-length hex in undo record");
  std::vector<unsigned char> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned v = 0;
    if (std::sscanf(s.c_str() + 2 * i, "%2x", &v) != 1) {
      return Error(ErrorCode::kInvalid, "bad hex in undo record");
    }
    out[i] = static_cast<unsigned char>(v);
  }
  return out;
}

Result<QdiscPriorRoot> priorFromJson(const json& j) {
  JsonReader r(j, "qdisc undo record: prior");
  QdiscPriorRoot p;
  p.kind = r.string("kind");
  if (!p.isDefault()) {
    p.handle = r.string("handle");
    const std::string hex = r.string("request");
    CHAOSD_TRY(r.finish());
    auto bytes = fromHex(hex);
    if (!bytes) return std::move(bytes).error();
    if (bytes->empty()) return Error(ErrorCode::kInvalid, "qdisc undo record: an empty snapshot");
    p.request = std::move(*bytes);
  }
  CHAOSD_TRY(r.finish());
  return p;
}

json priorJson(const QdiscPriorRoot& p) {
  if (p.isDefault()) return {{"kind", "default"}};
  return {{"kind", p.kind}, {"handle", p.handle}, {"request", toHex(p.request)}};
}

Result<U32Key> keyFromJson(const json& k) {
  std::optional<int64_t> value, mask, offset;
  if (k.is_array() && k.size() == 3) {
    value = integerIn(k[0], 0, UINT32_MAX);
    mask = integerIn(k[1], 0, UINT32_MAX);
    offset = integerIn(k[2], INT32_MIN, INT32_MAX);
  }
  if (!value || !mask || !offset) {
    return Error(ErrorCode::kInvalid,
                 "qdisc undo record: a u32 key is not [value, mask, offset]: " + k.dump());
  }
  return U32Key{static_cast<uint32_t>(*value), static_cast<uint32_t>(*mask),
                static_cast<int>(*offset)};
}

Result<U32Filter> filterFromJson(const json& f) {
  JsonReader r(f, "qdisc undo record: a filter");
  U32Filter out;
  out.family = static_cast<int>(r.optInteger("family", 0, 6).value_or(0));
  const json& keys = r.member("keys");
  CHAOSD_TRY(r.finish());
  if (out.family != 0 && out.family != 4 && out.family != 6) {
    return Error(ErrorCode::kInvalid, "qdisc undo record: a filter of family " + f.dump());
  }
  if (!keys.is_array()) return Error(ErrorCode::kInvalid, "qdisc undo record: keys not a list");
  for (const auto& k : keys) {
    auto key = keyFromJson(k);
    if (!key) return std::move(key).error();
    out.keys.push_back(*key);
  }
  return out;
}

Result<std::vector<U32Filter>> filtersFromJson(const json& list) {
  if (!list.is_array()) return Error(ErrorCode::kInvalid, "qdisc undo record: filters not a list");
  std::vector<U32Filter> out;
  for (const auto& f : list) {
    auto filter = filterFromJson(f);
    if (!filter) return std::move(filter).error();
    out.push_back(std::move(*filter));
  }
  return out;
}

json filtersJson(const std::vector<U32Filter>& filters) {
  json out = json::array();
  for (const auto& f : filters) {
    json keys = json::array();
    for (const auto& k : f.keys) keys.push_back({k.value, k.mask, k.offset});
    out.push_back({{"family", f.family}, {"keys", keys}});
  }
  return out;
}

// The devices a record may name: only ifb devices of ours are ever created or deleted.
Result<void> checkDevices(const QdiscUndo& u, bool hasIfb) {
  if (hasIfb && u.ifb.rfind(kQdiscIfbPrefix, 0) != 0) {
    return Error(ErrorCode::kInvalid, "refusing to touch device " + json(u.ifb).dump());
  }
  if (u.ingress() && !hasIfb) {
    return Error(ErrorCode::kInvalid, "qdisc undo record: an ingress fault without its ifb");
  }
  return success();
}

// leafNeeded: apply needs it; revert and audit take a damaged one as the default.
Result<QdiscUndo> undoFromJson(const json& record, bool leafNeeded) {
  JsonReader r(record, "not a qdisc undo record");
  QdiscUndo u;
  u.faultId = r.string("faultId");
  u.faultType = r.string("faultType");
  u.netns = r.string("netns");
  u.iface = r.string("iface");
  u.direction = r.take(qdiscDirectionFrom(r.string("direction")));
  u.slot = static_cast<uint32_t>(r.integer("slot", 0, kQdiscSlots - 1));
  if (leafNeeded) {
    u.leaf = r.take(QdiscLeaf::fromJson(r.member("leaf")));
  } else if (const json* leaf = r.optMember("leaf")) {
    u.leaf = QdiscLeaf::fromJson(*leaf).valueOr(QdiscLeaf{});
  }
  u.filters = r.take(filtersFromJson(r.member("filters")));
  u.prior = r.take(priorFromJson(r.member("prior")));
  const std::optional<std::string> ifb = r.optString("ifb");
  CHAOSD_TRY(r.finish());
  u.ifb = ifb.value_or("");
  CHAOSD_TRY(checkDevices(u, ifb.has_value()));
  return u;
}

}  // namespace

uint32_t qdiscSlot(const std::string& faultId) {
  return static_cast<uint32_t>(fnv1a(faultId) % kQdiscSlots);
}

std::string qdiscIfbName(const std::string& faultId) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "cdifb%010llx",
                static_cast<unsigned long long>(fnv1a(faultId) & 0xffffffffffULL));
  return buf;
}

NetnsRef QdiscUndo::netnsRef() const {
  NetnsRef ref;
  ref.path = netns;
  return ref;
}

std::string QdiscUndo::where() const { return netns.empty() ? "host" : netns; }

std::vector<int> QdiscUndo::families() const {
  std::set<int> fams;
  for (const auto& f : filters) fams.insert(f.family);
  return {fams.begin(), fams.end()};
}

Result<QdiscUndo> QdiscUndo::fromJson(const json& record) { return undoFromJson(record, true); }

Result<QdiscUndo> QdiscUndo::fromJsonForRevert(const json& record) {
  return undoFromJson(record, false);
}

json QdiscUndo::toJson() const {
  json out = {{"faultId", faultId},
              {"faultType", faultType},
              {"netns", netns},
              {"iface", iface},
              {"direction", std::string(qdiscDirectionName(direction))},
              {"slot", slot},
              {"leaf", leaf.toJson()},
              {"filters", filtersJson(filters)},
              {"prior", priorJson(prior)}};
  if (!ifb.empty()) out["ifb"] = ifb;
  return out;
}

}  // namespace chaosd
