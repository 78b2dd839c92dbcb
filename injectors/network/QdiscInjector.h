#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "injectors/Injector.h"

// The qdisc faults: network.delay/loss/duplicate/corrupt/reorder/rate (netem) and
// network.bandwidth (tbf), all through libnl-route in the target interface's namespace.
//
// Layout on the device (the interface for egress, the fault's own ifb for ingress):
//   root   HTB  c4a0:         ours, shared by every qdisc fault on the device
//   class  c4a0:1             default class at line rate: unmatched traffic
//   class  c4a0:M             one per fault, M derived from the fault id
//     leaf M:                 the fault's netem or tbf
//   filters u32 at parent c4a0:, priorities derived from M, steering matching packets to c4a0:M
// A revert deletes its filters and class; the last class of ours takes the root with it, and a
// root qdisc the user had before (snapshotted into the undo at prepare) is put back. Ingress:
// an ifb device of the fault's own (cdifb + hash of the fault id), an ingress qdisc on the
// interface with a terminal match-all u32 and a mirred egress redirect (policy stolen) to it,
// and the tree above on the ifb. docs/faults/network.md.
namespace chaosd {

inline constexpr uint32_t kQdiscRootMajor = 0xc4a0;

class QdiscInjector final : public Injector {
 public:
  // Resolves the interface, checks the kernel (netem), snapshots the device's root qdisc and
  // decides class, priorities, filters and ifb name. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Idempotent; returns the leaf's packet and drop counters when it was still there.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;
};

// ---- exposed for unit tests -------------------------------------------------------------

// The fault's slot: the class minor is 0x1000 + slot, its filter priorities 2*slot+2 (IPv4 or
// all) and 2*slot+3 (IPv6).
uint32_t qdiscSlot(const std::string& faultId);
// The ifb device of an ingress fault: "cdifb" + 10 hex digits of a hash of the id (15 chars).
std::string qdiscIfbName(const std::string& faultId);

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
};
// The filters for the fault's `to`, `from` and `protocol` args (any of them matching sends a
// packet to the fault's class). No filter args: one match-all filter (family 0).
Result<std::vector<U32Filter>> qdiscFilters(const nlohmann::json& args);
// A port range as value/mask blocks (8000-8003 -> 8000/0xfffc).
std::vector<std::pair<uint16_t, uint16_t>> portBlocks(uint16_t first, uint16_t last);

}  // namespace chaosd
