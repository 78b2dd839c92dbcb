#include <iostream>
#include <nlohmann/json.hpp>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/base/ExitCode.h"

namespace chaosd::cli {
namespace {

nlohmann::json diagnosticJson(const Diagnostic& d) {
  return {{"file", d.file},       {"line", d.line},         {"column", d.column}, {"path", d.path},
          {"message", d.message}, {"expected", d.expected}, {"text", d.str()}};
}

size_t faultSteps(const Experiment& e) {
  size_t n = 0;
  for (const auto& s : e.method) {
    n += s.kind == StepKind::kFault ? 1 : 0;
    for (const auto& m : s.parallel) n += m.kind == StepKind::kFault ? 1 : 0;
  }
  return n;
}

}  // namespace

int validateCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl validate options");
  CommonOptions common;
  VarOptions varOpts;
  std::vector<std::string> files;
  desc.add_options()("file", po::value(&files)->required(), "experiment files");
  addVarOptions(desc, varOpts);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("file", -1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl validate [--var NAME=VALUE]... FILE...", desc, pos, args, vm, code)) {
    return code;
  }
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto vars = collectVars(varOpts);
  if (!vars) {
    std::cerr << "chaosctl validate: " << vars.error().describe() << "\n";
    return kExitInvalid;
  }
  ParseOptions options;
  options.vars = *vars;
  options.registry = &builtinRegistry();

  bool allValid = true;
  nlohmann::json report = nlohmann::json::array();
  for (const auto& file : files) {
    ParseResult r = parseExperimentFile(file, options);
    allValid = allValid && r.ok();
    if (common.json()) {
      nlohmann::json entry{{"file", file}, {"valid", r.ok()}, {"errors", nlohmann::json::array()}};
      for (const auto& d : r.diagnostics) entry["errors"].push_back(diagnosticJson(d));
      report.push_back(entry);
      continue;
    }
    if (r.ok()) {
      const Experiment& e = *r.experiment;
      std::cout << file << ": valid: " << e.metadata.name << " (" << faultSteps(e)
                << " fault step(s), " << e.steadyState.probes.size() << " probe(s), "
                << e.targets.size() << " target(s))\n";
    } else {
      for (const auto& d : r.diagnostics) std::cerr << d.str() << "\n";
      std::cerr << file << ": " << r.diagnostics.size() << " error(s)\n";
    }
  }
  if (common.json())
    std::cout << nlohmann::json{{"valid", allValid}, {"files", report}}.dump(2) << "\n";
  return allValid ? kExitOk : kExitInvalid;
}

}  // namespace chaosd::cli
