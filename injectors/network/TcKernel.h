#pragma once

#include <linux/pkt_sched.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscFilters.h"
#include "injectors/network/QdiscLeaf.h"
#include "injectors/network/QdiscUndo.h"

// The kernel surface of the qdisc faults: traffic control (qdiscs, classes, u32 filters) and the
// links of one network namespace. QdiscInjector's tree logic (QdiscTree, QdiscRoot, IfbIngress)
// runs against it; NetlinkTcKernel.cpp is the real one (libnl-route, QdiscNetlink.h),
// tests/support/FakeTc.h keeps the same state in memory. Errors: kConflict for an object that
// exists already, kNotFound for one (or a device, a namespace) that is not there, else what the
// kernel said.
namespace chaosd {

// A tc handle from its major and minor (libnl's TC_HANDLE without libnl).
constexpr uint32_t tcHandle(uint32_t major, uint32_t minor) {
  return TC_H_MAKE(major << 16, minor);
}

// The counters of a qdisc.
struct TcCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t drops = 0;
  uint64_t overlimits = 0;
  bool operator==(const TcCounters&) const = default;
};

// A qdisc of a device as the kernel lists it: what the tree logic reads back.
struct TcQdisc {
  uint32_t handle = 0;  // 0: the kernel's default root
  uint32_t parent = 0;  // TC_H_ROOT, TC_H_INGRESS or a class
  std::string kind;
  uint32_t htbDefault = 0;  // htb: the minor of its default class
  TcCounters counters;
};

// A class of a device.
struct TcClass {
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::string kind;
};

// How an HTB root goes in: only where the device has none of its own (kConflict otherwise), or
// replacing the root there (the only way to replace one).
enum class TcRootAdd { kExclusive, kReplace };

// One network namespace's traffic control, entered for as long as the object lives (on the
// thread that entered it: destroy it there). ifindex values are this namespace's.
class TcNetns {
 public:
  virtual ~TcNetns() = default;

  // The interface's index; kNotFound when the namespace has no link of that name.
  virtual Result<int> ifindex(const std::string& name) = 0;
  // The names of the namespace's links.
  virtual Result<std::vector<std::string>> links() = 0;
  // What names this namespace while it lives (QdiscContext's device keys start with it).
  virtual Result<std::string> id() = 0;
  // Every qdisc of the device (root, ingress, leaves), with counters.
  virtual Result<std::vector<TcQdisc>> qdiscs(int ifindex) = 0;
  // Every class of the device.
  virtual Result<std::vector<TcClass>> classes(int ifindex) = 0;
  // The priorities holding a filter at parent; none when parent is not there.
  virtual Result<std::set<uint32_t>> filterPrios(int ifindex, uint32_t parent) = 0;

  // An HTB root of handle `handle` whose unclassified traffic goes to class `defaultMinor`.
  virtual Result<void> addHtbRoot(int ifindex, uint32_t handle, uint32_t defaultMinor,
                                  TcRootAdd how) = 0;
  // An HTB class at line rate under the HTB qdisc of classid's major.
  virtual Result<void> addHtbClass(int ifindex, uint32_t classid) = 0;
  // The fault's leaf (tbf or netem) of handle `handle` under class `parent`; kUnsupported for a
  // netem leaf on a kernel without netem.
  virtual Result<void> addLeaf(int ifindex, uint32_t parent, uint32_t handle,
                               const QdiscLeaf& leaf) = 0;
  // The ingress qdisc (ffff:) of the device.
  virtual Result<void> addIngressQdisc(int ifindex) = 0;
  // A terminal u32 filter at (parent, prio) sending what matches to class `classid`.
  virtual Result<void> addU32Filter(int ifindex, uint32_t parent, uint32_t prio,
                                    const U32Filter& filter, uint32_t classid) = 0;
  // A terminal u32 filter at (parent, prio) redirecting what matches to the egress of
  // `toIfindex` (mirred, the packet stolen).
  virtual Result<void> addMirredRedirect(int ifindex, uint32_t parent, uint32_t prio,
                                         const U32Filter& filter, int toIfindex) = 0;
  // The filters at (parent, prio) for the family's protocol; nothing there is success.
  virtual Result<void> deleteU32Filters(int ifindex, uint32_t parent, uint32_t prio,
                                        int family) = 0;
  // The qdisc at (parent, handle) and everything under it; nothing there is success.
  virtual Result<void> deleteQdisc(int ifindex, uint32_t parent, uint32_t handle) = 0;
  // The class and its leaf; nothing there is success; kConflict while a filter points to it.
  virtual Result<void> deleteClass(int ifindex, uint32_t classid) = 0;
  // An ifb device of this name, up; its ifindex.
  virtual Result<int> createIfb(const std::string& name) = 0;
  // The link and its qdiscs; nothing there is success.
  virtual Result<void> deleteLink(const std::string& name) = 0;

  // The request that recreates the device's root qdisc as it is (kind, handle, options as the
  // kernel dumps them): what QdiscPriorRoot keeps.
  virtual Result<QdiscPriorRoot> rootRequest(int ifindex) = 0;
  // Sends a root's request back (a default prior is nothing to do); a root already there is
  // success; kInvalid for a request that is not one.
  virtual Result<void> restoreRoot(const QdiscPriorRoot& prior) = 0;
};

// Opens namespaces' traffic control; shared by the injectors of a registry.
class TcKernel {
 public:
  virtual ~TcKernel() = default;

  // Enters the namespace of netnsPath ("" for the host's) on the calling thread until the
  // returned object is destroyed; kNotFound when the namespace is gone.
  virtual Result<std::unique_ptr<TcNetns>> enter(const std::string& netnsPath) = 0;
  // Whether the kernel can add a netem qdisc (NetemSupport.h); an error when it cannot tell.
  virtual Result<bool> hasNetem() = 0;
};

// The kernel's own, through libnl-route (NetlinkTcKernel.cpp).
std::shared_ptr<TcKernel> netlinkTcKernel();

namespace qdisc {
// A tc handle as tc prints it: "c4a0:1", "8:0".
inline std::string hexHandle(uint32_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
  return buf;
}
}  // namespace qdisc

}  // namespace chaosd
