// libFuzzer target for the experiment parser: arbitrary bytes in, diagnostics out.
// parseExperimentText promises never to throw and never to crash on hostile input, so
// nothing here catches: an exception escaping is a finding (libFuzzer reports it as a crash).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"

namespace {

// Built once: registering the builtin faults per input would dominate the run time.
const chaosd::FaultRegistry& registry() {
  static const chaosd::FaultRegistry kRegistry = [] {
    chaosd::FaultRegistry r;
    chaosd::registerBuiltinFaults(r);
    return r;
  }();
  return kRegistry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chaosd::ParseOptions options;
  options.registry = &registry();
  // Exercise the variable substitution path too; fixed so a crash input replays the same way.
  options.vars["api_url"] = "http://127.0.0.1:8080/health";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const chaosd::ParseResult result = chaosd::parseExperimentText(text, "fuzz.yaml", options);
  // The result's invariant: an experiment exactly when there are no diagnostics.
  if (result.ok() != result.experiment.has_value()) __builtin_trap();
  for (const chaosd::Diagnostic& d : result.diagnostics) {
    if (d.str().empty()) __builtin_trap();
  }
  return 0;
}
