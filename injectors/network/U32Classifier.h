#pragma once

#include <cstdint>
#include <set>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscFilters.h"
#include "injectors/network/QdiscNetlink.h"

// u32 filters in the kernel: the steering filters under our HTB root and the redirect filters
// on an interface's ingress qdisc (QdiscFilters.h computes their keys).
namespace chaosd::qdisc {

// A u32 classifier on the device at parent, with priority prio, for the family's protocol
// (4: IP, 6: IPv6, else all).
Cls u32At(int ifindex, uint32_t parent, uint32_t prio, int family);
// Makes c a u32 classifier matching the filter's keys; a libnl error code.
int setU32Keys(rtnl_cls* c, const U32Filter& filter);
// Deletes the filters at (parent, prio, family's protocol); nothing there is success.
Result<void> deleteU32Filters(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                              int family);
// Priorities (at parent) holding any filter; none when the parent is not there.
Result<std::set<uint32_t>> filterPrios(nl_sock* sock, int ifindex, uint32_t parent);

}  // namespace chaosd::qdisc
