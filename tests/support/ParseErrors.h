#pragma once

// Every diagnostic of a parse, one per line: for a test's failure message or a search in it.
#include <string>

#include "experiments/parser/ExperimentParser.h"

namespace chaosd::testing {

inline std::string errorsOf(const ParseResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

}  // namespace chaosd::testing
