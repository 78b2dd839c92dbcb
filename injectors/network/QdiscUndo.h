#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Result.h"
#include "injectors/network/QdiscArgs.h"
#include "injectors/network/QdiscFilters.h"
#include "injectors/network/QdiscLeaf.h"

namespace chaosd {

// The handle major of our HTB root on a device (c4a0:).
inline constexpr uint32_t kQdiscRootMajor = 0xc4a0;
// A fault's slot on a device: its class minor is 0x1000 + slot, its filter priorities 2*slot+2
// (IPv4 or all) and 2*slot+3 (IPv6).
inline constexpr uint32_t kQdiscSlots = 0x3000;
// Every ifb device chaosd makes is named so; a record naming another device is refused.
inline constexpr std::string_view kQdiscIfbPrefix = "cdifb";

// The fault's slot, from a hash of its id.
uint32_t qdiscSlot(const std::string& faultId);
// The ifb device of an ingress fault: "cdifb" + 10 hex digits of a hash of the id (15 chars).
std::string qdiscIfbName(const std::string& faultId);

// The device's root before our tree replaced it, which the revert removing the tree puts back.
struct QdiscPriorRoot {
  std::string kind = "default";  // "default": the kernel's own root (restored by deleting ours)
  std::string handle;            // the user's root: its handle ("8:0")
  std::vector<unsigned char> request;  // and the RTM_NEWQDISC request that recreates it
  bool isDefault() const { return kind == "default"; }
  bool operator==(const QdiscPriorRoot&) const = default;
};

// Everything a qdisc fault's apply, revert and audit need, decided at prepare and journalled:
// revert works from it alone, in another process. Its JSON (toJson) is the journal's format:
//   {"faultId", "faultType", "netns": path or "" for the host, "iface", "direction": "egress" |
//    "ingress", "slot", "leaf": QdiscLeaf, "filters": [{"family", "keys": [[value, mask,
//    offset], ...]}], "prior": {"kind": "default"} | {"kind", "handle", "request": hex},
//    "ifb": ingress only}
struct QdiscUndo {
  std::string faultId;
  std::string faultType;
  std::string netns;  // the namespace file; "" for the host's
  std::string iface;
  QdiscDirection direction = QdiscDirection::kEgress;
  uint32_t slot = 0;
  QdiscLeaf leaf;
  std::vector<U32Filter> filters;
  QdiscPriorRoot prior;
  std::string ifb;  // ingress: the fault's ifb device

  bool ingress() const { return direction == QdiscDirection::kIngress; }
  NetnsRef netnsRef() const;
  std::string where() const;          // the namespace for messages: "host" or its path
  std::vector<int> families() const;  // of its filters, each once

  bool operator==(const QdiscUndo&) const = default;

  // kInvalid, never a throw, for a record that is not one of ours: a member missing or of the
  // wrong type, a slot out of range, an ifb not named cdifb..., an ingress record without one.
  // Members it does not know are ignored.
  static Result<QdiscUndo> fromJson(const nlohmann::json& record);
  // As fromJson, but a leaf that is missing or damaged reads as a default one: revert and audit
  // need only the device, the slot, the filters and the prior root, and a record whose leaf is
  // damaged must still come off the machine.
  static Result<QdiscUndo> fromJsonForRevert(const nlohmann::json& record);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
