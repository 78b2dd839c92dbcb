#include "injectors/FaultRegistry.h"

namespace chaosd {

Result<void> FaultRegistry::add(FaultType type) {
  if (types_.contains(type.name)) {
    return Error(ErrorCode::kConflict, "fault type '" + type.name + "' is registered twice");
  }
  std::string name = type.name;
  types_.emplace(std::move(name), std::move(type));
  return success();
}

const FaultType* FaultRegistry::find(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> FaultRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(types_.size());
  for (const auto& [name, type] : types_) {
    if (!type.internal) out.push_back(name);
  }
  return out;
}

}  // namespace chaosd
