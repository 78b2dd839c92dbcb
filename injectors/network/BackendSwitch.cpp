#include "injectors/network/BackendSwitch.h"

#include <utility>

namespace chaosd {

BackendSwitch::BackendSwitch(std::vector<Backend> backends) : backends_(std::move(backends)) {}

Result<const BackendSwitch::Backend*> BackendSwitch::choose(const std::string& wanted) {
  std::string tried;
  for (const auto& b : backends_) {
    if (wanted != "auto" && b.name != wanted) continue;
    if (!b.factory) {  // a mechanism this build does not have
      if (wanted != "auto") break;
      continue;
    }
    if (wanted != "auto" || !b.available) return &b;
    auto ok = b.available();
    if (!ok) return std::move(ok).error().withContext("checking whether " + b.name + " works here");
    if (*ok) return &b;
    tried += (tried.empty() ? "" : ", ") + b.name;
  }
  if (wanted == "auto") {
    return Error(ErrorCode::kUnsupported,
                 "no backend of this fault works here (tried " + tried + ")");
  }
  return Error(ErrorCode::kUnsupported,
               "backend '" + wanted + "' is not implemented in this build for this fault");
}

Result<Injector*> BackendSwitch::injectorFor(const nlohmann::json& undo) {
  if (!undo.is_object() || !undo.contains("backend") || !undo["backend"].is_string() ||
      !undo.contains("inner")) {
    return Error(ErrorCode::kInvalid, "undo record names no backend: " + undo.dump());
  }
  const std::string name = undo["backend"].get<std::string>();
  auto it = injectors_.find(name);
  if (it != injectors_.end()) return it->second.get();
  for (const auto& b : backends_) {
    if (b.name == name) {
      auto [pos, _] = injectors_.emplace(name, b.factory());
      return pos->second.get();
    }
  }
  return Error(ErrorCode::kUnsupported,
               "undo record names backend '" + name + "', which this build does not have");
}

Result<PreparedFault> BackendSwitch::prepare(const FaultRequest& request) {
  const std::string wanted = request.args.is_object() && request.args.contains("backend")
                                 ? request.args["backend"].get<std::string>()
                                 : std::string("auto");
  auto backend = choose(wanted);
  if (!backend) return std::move(backend).error();
  const nlohmann::json selector = {{"backend", (*backend)->name}, {"inner", nullptr}};
  auto injector = injectorFor(selector);
  if (!injector) return std::move(injector).error();
  auto prepared = (*injector)->prepare(request);
  if (!prepared) return std::move(prepared).error();
  prepared->undo = {{"backend", (*backend)->name}, {"inner", std::move(prepared->undo)}};
  return prepared;
}

Result<AppliedFault> BackendSwitch::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto injector = injectorFor(undo);
  if (!injector) return std::move(injector).error();
  return (*injector)->apply(faultId, undo["inner"]);
}

Result<nlohmann::json> BackendSwitch::revert(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto injector = injectorFor(undo);
  if (!injector) return std::move(injector).error();
  return (*injector)->revert(faultId, undo["inner"]);
}

Result<std::vector<std::string>> BackendSwitch::audit(const nlohmann::json& undo) {
  auto injector = injectorFor(undo);
  if (!injector) return std::move(injector).error();
  return (*injector)->audit(undo["inner"]);
}

}  // namespace chaosd
