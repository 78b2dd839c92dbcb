#pragma once

#include <string_view>

namespace chaosd {

// What a fault may be aimed at; the experiment's target must be of one of these kinds.
// kContainer is seen by a fault as the kind it acts on (an interface in the container's network
// namespace, a path under its root, its processes): injectors/container/ContainerView.h.
enum class TargetKind { kProcess, kExec, kInterface, kPath, kContainer };
std::string_view targetKindName(TargetKind kind);

}  // namespace chaosd
