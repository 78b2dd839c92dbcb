#include <iostream>
#include <nlohmann/json.hpp>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/base/ExitCode.h"

namespace chaosd::cli {
namespace {

nlohmann::json specJson(const ArgSpec& s) {
  nlohmann::json j{{"name", s.name},
                   {"type", std::string(argTypeName(s.type))},
                   {"required", s.required},
                   {"help", s.help}};
  if (s.defaultValue) j["default"] = *s.defaultValue;
  if (s.min) j["min"] = *s.min;
  if (s.max) j["max"] = *s.max;
  if (!s.choices.empty()) j["choices"] = s.choices;
  if (s.element) j["element"] = specJson(*s.element);
  for (const auto& f : s.fields) j["fields"].push_back(specJson(f));
  return j;
}

}  // namespace

int faultTypesCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl fault-types options");
  CommonOptions common;
  std::vector<std::string> names;
  desc.add_options()("name", po::value(&names), "fault types to document (default: all)");
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("name", -1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl fault-types [NAME...]", desc, pos, args, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  const FaultRegistry& registry = builtinRegistry();
  if (names.empty()) names = registry.names();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : names) {
    const FaultType* t = registry.find(name);
    if (!t) {
      std::cerr << "chaosctl fault-types: unknown fault type '" << name << "'\n";
      return kExitInvalid;
    }
    std::vector<std::string> kinds;
    for (auto k : t->targetKinds) kinds.emplace_back(targetKindName(k));
    if (common.json()) {
      nlohmann::json j{{"name", t->name},
                       {"summary", t->summary},
                       {"targets", kinds},
                       {"targetOptional", t->targetOptional},
                       {"revertible", t->revertible},
                       {"needsDuration", t->needsDuration},
                       {"implemented", static_cast<bool>(t->factory)}};
      for (const auto& a : t->schema.args) j["args"].push_back(specJson(a));
      out.push_back(j);
      continue;
    }
    std::cout << t->name << ": " << t->summary << "\n  target: ";
    for (size_t i = 0; i < kinds.size(); ++i) std::cout << (i ? " or " : "") << kinds[i];
    if (kinds.empty()) std::cout << "none";
    if (t->targetOptional) std::cout << ", or none (the host)";
    std::cout << (t->needsDuration ? "; needs a duration" : "; duration optional")
              << (t->revertible ? "" : "; cannot be reverted")
              << (t->factory ? "" : "; not yet implemented in this build (validate/plan only)")
              << "\n  args:\n"
              << describeSchema(t->schema) << "\n";
  }
  if (common.json()) std::cout << out.dump(2) << "\n";
  return kExitOk;
}

}  // namespace chaosd::cli
