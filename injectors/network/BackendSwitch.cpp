#include "injectors/network/BackendSwitch.h"

#include <utility>

namespace chaosd {
namespace {

std::string recordText(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Result<BackendArgs> BackendArgs::fromJson(const nlohmann::json& args) {
  BackendArgs out;
  if (!args.is_object() || !args.contains("backend")) return out;
  if (!args["backend"].is_string()) {
    return Error(ErrorCode::kInvalid, "the backend arg is no name: " + recordText(args["backend"]));
  }
  out.backend = args["backend"].get<std::string>();
  return out;
}

nlohmann::json BackendArgs::toJson() const { return {{"backend", backend}}; }

Result<BackendUndo> BackendUndo::fromJson(const nlohmann::json& undo) {
  if (!undo.is_object() || !undo.contains("backend") || !undo["backend"].is_string() ||
      !undo.contains("inner")) {
    return Error(ErrorCode::kInvalid, "undo record names no backend: " + recordText(undo));
  }
  return BackendUndo{undo["backend"].get<std::string>(), undo["inner"]};
}

nlohmann::json BackendUndo::toJson() const { return {{"backend", backend}, {"inner", inner}}; }

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

Result<Injector*> BackendSwitch::injectorFor(const std::string& backend) {
  auto it = injectors_.find(backend);
  if (it != injectors_.end()) return it->second.get();
  for (const auto& b : backends_) {
    if (b.name == backend && b.factory) {
      auto [pos, _] = injectors_.emplace(backend, b.factory());
      return pos->second.get();
    }
  }
  return Error(ErrorCode::kUnsupported,
               "undo record names backend '" + backend + "', which this build does not have");
}

Result<PreparedFault> BackendSwitch::prepare(const FaultRequest& request) {
  auto args = BackendArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  auto backend = choose(args->backend);
  if (!backend) return std::move(backend).error();
  auto injector = injectorFor((*backend)->name);
  if (!injector) return std::move(injector).error();
  auto prepared = (*injector)->prepare(request);
  if (!prepared) return std::move(prepared).error();
  prepared->undo = BackendUndo{(*backend)->name, std::move(prepared->undo)}.toJson();
  return prepared;
}

Result<AppliedFault> BackendSwitch::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto record = BackendUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto injector = injectorFor(record->backend);
  if (!injector) return std::move(injector).error();
  return (*injector)->apply(faultId, record->inner);
}

Result<nlohmann::json> BackendSwitch::revert(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto record = BackendUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto injector = injectorFor(record->backend);
  if (!injector) return std::move(injector).error();
  return (*injector)->revert(faultId, record->inner);
}

Result<std::vector<std::string>> BackendSwitch::audit(const nlohmann::json& undo) {
  auto record = BackendUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto injector = injectorFor(record->backend);
  if (!injector) return std::move(injector).error();
  return (*injector)->audit(record->inner);
}

}  // namespace chaosd

namespace chaosd {

Result<nlohmann::json> BackendSwitch::reprepare(const std::string& faultId,
                                                const nlohmann::json& undo,
                                                const nlohmann::json& args) {
  auto record = BackendUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto injector = refreshOf(record->backend);
  if (!injector) return std::move(injector).error();
  auto inner = (*injector)->reprepare(faultId, record->inner, args);
  if (!inner) return std::move(inner).error();
  return BackendUndo{record->backend, std::move(*inner)}.toJson();
}

Result<void> BackendSwitch::update(const std::string& faultId, const nlohmann::json& undo,
                                   const nlohmann::json& next) {
  auto before = BackendUndo::fromJson(undo);
  if (!before) return std::move(before).error();
  auto after = BackendUndo::fromJson(next);
  if (!after) return std::move(after).error();
  if (after->backend != before->backend) {
    return Error(ErrorCode::kInvalid, "a refresh cannot move fault " + faultId + " from backend " +
                                          before->backend + " to " + after->backend);
  }
  auto injector = refreshOf(after->backend);
  if (!injector) return std::move(injector).error();
  return (*injector)->update(faultId, before->inner, after->inner);
}

Result<FilterRefresh*> BackendSwitch::refreshOf(const std::string& backend) {
  auto injector = injectorFor(backend);
  if (!injector) return std::move(injector).error();
  auto* refresh = dynamic_cast<FilterRefresh*>(*injector);
  if (refresh == nullptr) {
    return Error(ErrorCode::kUnsupported,
                 "backend " + backend + " cannot change its filter while the fault is held");
  }
  return refresh;
}

}  // namespace chaosd
