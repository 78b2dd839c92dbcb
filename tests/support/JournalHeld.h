#pragma once

// Whether the journal of a state folder holds no fault, as `chaosctl faults` says it: what a
// root test checks after a kill -9 of `chaosctl run` once the guardian has reverted.
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/Shell.h"

namespace chaosd::testing {

// `chaosctl faults --output json --state-dir DIR` exits 0 and lists nothing. CHAOSCTL_PATH is
// the test binary's.
inline bool journalHoldsNothing(const std::string& stateDir) {
  int st = -1;
  const std::string held =
      runShell(std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + stateDir, &st);
  const auto list = nlohmann::json::parse(held, nullptr, false);
  return st == 0 && list.is_array() && list.empty();
}

}  // namespace chaosd::testing
