#pragma once

// The registry of every built-in fault type, built once per test binary, for the tests that
// parse experiments or check fault arguments against it.
#include "injectors/FaultRegistry.h"

namespace chaosd::testing {

inline const FaultRegistry& builtinFaults() {
  static const FaultRegistry kRegistry = [] {
    FaultRegistry r;
    registerBuiltinFaults(r);
    return r;
  }();
  return kRegistry;
}

}  // namespace chaosd::testing
