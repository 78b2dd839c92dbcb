#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscContext.h"
#include "injectors/network/QdiscUndo.h"
#include "injectors/network/TcKernel.h"

// Our HTB tree on a device (the interface for egress, the fault's ifb for ingress):
//   root   HTB c4a0:   default class c4a0:1 (or :2 over a user's root) at line rate
//   class  c4a0:M      one per fault, M = 0x1000 + slot, with the fault's leaf M:
//   filters u32 at parent c4a0:, priorities from the slot, steering matching packets to c4a0:M
// Everything goes through TcNetns (TcKernel.h), in the device's namespace.
namespace chaosd::qdisc {

inline constexpr uint32_t kClassBase = 0x1000;

inline uint32_t classMinor(uint32_t slot) { return kClassBase + slot; }
inline uint32_t leafMajor(uint32_t slot) { return kClassBase + slot; }
inline uint32_t prioFor(uint32_t slot, int family) { return 2 * slot + (family == 6 ? 3 : 2); }
// The fault's class as tc prints it ("c4a0:1abc").
std::string className(uint32_t slot);

// Adds our root (if the device has none of ours yet; kConflict when its root is no longer the
// one prepare saw), the fault's class, leaf and filters.
Result<void> applyTree(TcNetns& tc, int ifindex, const QdiscUndo& undo, const std::string& dev);
// Removes the fault's filters and class; the last class of ours takes our root with it and the
// user's root comes back (and leaves the context's snapshot of it). Returns the leaf's
// counters ({} when it was not there).
Result<nlohmann::json> revertTree(QdiscContext& context, TcNetns& tc, int ifindex,
                                  const QdiscUndo& undo, const std::string& dev);
// Appends what is left of the fault's part of the tree on dev, one line each.
Result<void> auditTree(TcNetns& tc, int ifindex, const QdiscUndo& undo, const std::string& dev,
                       std::vector<std::string>& out);
// The leaf's packet, byte, drop and overlimit counters; {} when it is not there.
nlohmann::json leafCounters(TcNetns& tc, int ifindex, uint32_t slot);

}  // namespace chaosd::qdisc
