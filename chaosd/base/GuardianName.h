#pragma once

#include <string_view>

// How a chaosd guardian (chaosd/engine/Guardian.h) shows in the process table: its comm once
// it runs, and the hidden subcommand in its argv while it starts. Here, in the lowest layer,
// because process selection (injectors) must never pick a guardian, ours or another run's.
namespace chaosd {

inline constexpr std::string_view kGuardianSubcommand = "__guardian";
inline constexpr std::string_view kGuardianComm = "chaosd-guardian";

}  // namespace chaosd
