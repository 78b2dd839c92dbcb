#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "chaosd/base/Result.h"

namespace chaosd {

// An injector's optional capability (next to Injector): a held fault whose packet filter
// follows host names (the `refresh` arg, docs/faults/network.md). The engine finds it with a
// dynamic_cast. The two calls split a change so the engine can journal between them: the
// kernel is touched only after the record that describes the new state is journalled.
class FilterRefresh {
 public:
  virtual ~FilterRefresh() = default;

  // The undo record of the held fault `undo` with the filter of `args` (re-resolved now,
  // addresses only, as prepare() got them): the same kernel objects (names, tables, sets), so a
  // revert from either record removes everything the fault holds at any moment of the change.
  // Reads only. kUnsupported when this fault cannot change its filter while held.
  virtual Result<nlohmann::json> reprepare(const std::string& faultId, const nlohmann::json& undo,
                                           const nlohmann::json& args) = 0;
  // Moves the held fault from `undo` to `next` (what reprepare() returned, already journalled),
  // in one kernel transaction where the mechanism allows it: all of the change or none.
  virtual Result<void> update(const std::string& faultId, const nlohmann::json& undo,
                              const nlohmann::json& next) = 0;
};

}  // namespace chaosd
