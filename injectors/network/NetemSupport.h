#pragma once

#include "chaosd/base/Result.h"

namespace chaosd {

// Whether this kernel can add a netem qdisc (sch_netem built in or loadable). Found out without
// touching any real interface: a short-lived thread unshares a network namespace of its own,
// adds netem to that namespace's `lo` through libnl-route (the kernel loads the module on
// demand) and exits, which destroys the namespace and the qdisc with it. The answer is cached
// for the life of the process. An error means the probe itself failed (no netlink), not "no".
Result<bool> kernelHasNetem();

}  // namespace chaosd
