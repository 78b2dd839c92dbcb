#pragma once

#include <cstdint>
#include <set>

#include "chaosd/base/Result.h"
#include "injectors/network/QdiscFilters.h"
#include "injectors/network/QdiscNetlink.h"

// u32 filters in the kernel over libnl (NetlinkTcKernel's filter operations; TcKernel.h has
// their contracts): the steering filters under our HTB root and the redirect filters on an
// interface's ingress qdisc (QdiscFilters.h computes their keys).
namespace chaosd::qdisc {

Result<void> addU32Filter(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                          const U32Filter& filter, uint32_t classid);
Result<void> addMirredRedirect(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                               const U32Filter& filter, int toIfindex);
Result<void> deleteU32Filters(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio,
                              int family);
Result<std::set<uint32_t>> filterPrios(nl_sock* sock, int ifindex, uint32_t parent);

}  // namespace chaosd::qdisc
