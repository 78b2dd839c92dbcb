#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscUndo.h"
#include "injectors/network/TcKernel.h"

// The root qdisc of a device: ours (HTB c4a0:), the kernel's default, or the user's, which the
// undo record keeps as the request that recreates it byte for byte.
namespace chaosd::qdisc {

// The default class of our root, and the root's `default`: 1 when the root we replaced was the
// kernel's own (restored by deleting ours), 2 when it was the user's (restored from a snapshot
// only the process that took it, and the journal, hold). So another process finds in the kernel
// whether it may join the tree: with 1 it needs no snapshot.
inline constexpr uint32_t kDefaultMinor = 1;
inline constexpr uint32_t kDefaultMinorUserRoot = 2;

inline uint32_t ourRootHandle() { return tcHandle(kQdiscRootMajor, 0); }

// The device's qdisc at parent (TC_H_ROOT, TC_H_INGRESS) in a listing, or null.
const TcQdisc* qdiscAt(const std::vector<TcQdisc>& qdiscs, uint32_t parent);
bool isOurRoot(const TcQdisc* q);

// What is at the root of a device at prepare.
struct RootSnapshot {
  bool ours = false;             // our HTB, put there by a fault before this one
  bool oursOverDefault = false;  // ours, over the kernel's default root (its default class is 1)
  QdiscPriorRoot prior;          // not ours: the kernel's default or the user's root
};

// kUnsupported for a user's root chaosd cannot recreate exactly (a kind not known to round-trip,
// or one with child qdiscs). Reads only.
Result<RootSnapshot> snapshotRoot(TcNetns& tc, int ifindex, const std::string& iface);
// Puts a user's root back (nothing for the kernel's default); one already there is success.
Result<void> restoreRoot(TcNetns& tc, const QdiscPriorRoot& prior, const std::string& iface);

// The device in QdiscContext's terms: the namespace's id and the ifindex.
Result<std::string> deviceKey(TcNetns& tc, int ifindex);

}  // namespace chaosd::qdisc
