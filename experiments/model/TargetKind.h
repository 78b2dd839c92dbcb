#pragma once

#include <string_view>

namespace chaosd {

// What a fault may be aimed at; the experiment's target must be of one of these kinds.
enum class TargetKind { kProcess, kExec, kInterface, kPath };
std::string_view targetKindName(TargetKind kind);

}  // namespace chaosd
