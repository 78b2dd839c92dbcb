#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscArgs.h"

// The u32 filters a qdisc fault steers its packets with, computed from its filter args. Pure
// (no netlink): U32Classifier.h puts them in the kernel.
namespace chaosd {

// One u32 filter: 32-bit words (host order value and mask) at 4-aligned offsets from the
// network header, all of which must match. `family` 4, 6, or 0 for all traffic.
struct U32Key {
  uint32_t value = 0;
  uint32_t mask = 0;
  int offset = 0;
  bool operator==(const U32Key&) const = default;
};
struct U32Filter {
  int family = 0;
  std::vector<U32Key> keys;
  bool operator==(const U32Filter&) const = default;
};

// The filters for the fault's `to`, `from` and `protocol` (any of them matching sends a packet
// to the fault's class). No filter args: one match-all filter (family 0). kInvalid when they
// match nothing or need more than 256 filters.
Result<std::vector<U32Filter>> u32FiltersFor(const QdiscMatch& match);
// The same from the fault's args json (QdiscArgs::fromJson, then u32FiltersFor).
Result<std::vector<U32Filter>> qdiscFilters(const nlohmann::json& args);
// A port range as value/mask blocks (8000-8003 -> 8000/0xfffc).
std::vector<std::pair<uint16_t, uint16_t>> portBlocks(uint16_t first, uint16_t last);

}  // namespace chaosd
