#include "injectors/network/QdiscFilters.h"

#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <string>

namespace chaosd {
namespace {

constexpr size_t kMaxFilters = 256;

using Blocks = std::vector<std::pair<uint16_t, uint16_t>>;
using Prefix = std::optional<units::Cidr>;  // nullopt: any address

int familyOf(const units::Cidr& c) { return c.family == AF_INET6 ? 6 : 4; }

// Keys matching a prefix whose address starts at `offset`.
void prefixKeys(const units::Cidr& p, int offset, std::vector<U32Key>& out) {
  const int words = familyOf(p) == 6 ? 4 : 1;
  for (int w = 0; w < words; ++w) {
    const int bits = std::clamp(p.prefix - 32 * w, 0, 32);
    if (bits == 0) break;
    const uint32_t mask = bits == 32 ? 0xffffffffU : ~(0xffffffffU >> bits);
    const uint32_t v = (uint32_t{p.addr[4 * w]} << 24) | (uint32_t{p.addr[4 * w + 1]} << 16) |
                       (uint32_t{p.addr[4 * w + 2]} << 8) | uint32_t{p.addr[4 * w + 3]};
    out.push_back({v & mask, mask, offset + 4 * w});
  }
}

// Adds (value, mask) at offset into the key of the same word, or a new key.
void merge(std::vector<U32Key>& keys, U32Key k) {
  for (auto& e : keys) {
    if (e.offset == k.offset) {
      e.value |= k.value;
      e.mask |= k.mask;
      return;
    }
  }
  keys.push_back(k);
}

Blocks portsOf(const QdiscEndpoint& side) {
  if (side.ports.empty()) return {{0, 0}};
  Blocks out;
  for (const auto& r : side.ports) {
    for (auto b : portBlocks(r.first, r.last)) out.push_back(b);
  }
  return out;
}

// One side's prefixes of a family: {nullopt} when the side names no address; none (and `skip`)
// when it names addresses of the other family only.
std::vector<Prefix> ofFamily(const std::vector<units::Cidr>& all, int family, bool& skip) {
  std::vector<Prefix> v;
  for (const auto& p : all) {
    if (familyOf(p) == family) v.emplace_back(p);
  }
  if (!all.empty() && v.empty()) skip = true;
  if (all.empty()) v.emplace_back(std::nullopt);
  return v;
}

// IP protocol numbers to match; -1 for any.
std::vector<int> protocolsFor(QdiscProtocol protocol, int family, bool anyPorts) {
  switch (protocol) {
    case QdiscProtocol::kTcp:
      return {6};
    case QdiscProtocol::kUdp:
      return {17};
    case QdiscProtocol::kIcmp:
      return {family == 6 ? 58 : 1};
    case QdiscProtocol::kAll:
      break;
  }
  return anyPorts ? std::vector<int>{6, 17} : std::vector<int>{-1};
}

struct Combination {
  int family = 0;
  const Prefix& dst;
  const Prefix& src;
  int proto = -1;
  std::pair<uint16_t, uint16_t> dport;
  std::pair<uint16_t, uint16_t> sport;
};

U32Filter filterFor(const Combination& c) {
  // v4: IHL at byte 0, protocol at 9, addresses at 12/16, ports at 20 (IHL 5, no options);
  // v6: next header at 6, addresses at 8/24, ports at 40 (no extension headers).
  const bool v6 = c.family == 6;
  U32Filter f;
  f.family = c.family;
  if (c.dst) prefixKeys(*c.dst, v6 ? 24 : 16, f.keys);
  if (c.src) prefixKeys(*c.src, v6 ? 8 : 12, f.keys);
  if (c.proto >= 0) {
    if (!v6) {
      merge(f.keys, {static_cast<uint32_t>(c.proto) << 16, 0x00ff0000U, 8});
    } else {
      merge(f.keys, {static_cast<uint32_t>(c.proto) << 8, 0x0000ff00U, 4});
    }
  }
  if (c.dport.second != 0 || c.sport.second != 0) {
    if (!v6) merge(f.keys, {0x05000000U, 0x0f000000U, 0});
    merge(f.keys, {(uint32_t{c.sport.first} << 16) | c.dport.first,
                   (uint32_t{c.sport.second} << 16) | c.dport.second, v6 ? 40 : 20});
  }
  if (f.keys.empty()) f.keys.push_back({0, 0, 0});
  return f;
}

Error tooMany() {
  return Error(ErrorCode::kInvalid, "the filter args need more than " +
                                        std::to_string(kMaxFilters) +
                                        " u32 filters: use fewer addresses or wider port ranges");
}

// The filters of one family: every destination x source x protocol x port block combination.
Result<void> addFamily(int family, const QdiscMatch& m, const Blocks& dports, const Blocks& sports,
                       bool anyPorts, std::vector<U32Filter>& out) {
  bool skip = false;
  const auto dsts = ofFamily(m.to.cidrs, family, skip);
  const auto srcs = ofFamily(m.from.cidrs, family, skip);
  if (skip) return success();
  for (const auto& d : dsts) {
    for (const auto& s : srcs) {
      for (int proto : protocolsFor(m.protocol, family, anyPorts)) {
        for (const auto& dp : dports) {
          for (const auto& sp : sports) {
            out.push_back(filterFor({family, d, s, proto, dp, sp}));
            if (out.size() > kMaxFilters) return tooMany();
          }
        }
      }
    }
  }
  return success();
}

}  // namespace

std::vector<std::pair<uint16_t, uint16_t>> portBlocks(uint16_t first, uint16_t last) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  uint32_t lo = first;
  const uint32_t hi = last;
  while (lo <= hi) {
    // The largest aligned block starting at lo that stays within hi.
    uint32_t size = 1;
    while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < 0x10000) size *= 2;
    out.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff));
    lo += size;
  }
  return out;
}

Result<std::vector<U32Filter>> u32FiltersFor(const QdiscMatch& match) {
  const Blocks dports = portsOf(match.to);
  const Blocks sports = portsOf(match.from);
  const bool anyPorts =
      dports.size() > 1 || dports[0].second != 0 || sports.size() > 1 || sports[0].second != 0;
  if (match.to.cidrs.empty() && match.from.cidrs.empty() && !anyPorts &&
      match.protocol == QdiscProtocol::kAll) {
    return std::vector<U32Filter>{{0, {{0, 0, 0}}}};
  }
  std::vector<U32Filter> out;
  for (int family : {4, 6}) CHAOSD_TRY(addFamily(family, match, dports, sports, anyPorts, out));
  if (out.empty()) return Error(ErrorCode::kInvalid, "the filter args match nothing");
  return out;
}

Result<std::vector<U32Filter>> qdiscFilters(const nlohmann::json& args) {
  auto parsed = QdiscArgs::fromJson(args);
  if (!parsed) return std::move(parsed).error();
  return u32FiltersFor(parsed->match);
}

}  // namespace chaosd
