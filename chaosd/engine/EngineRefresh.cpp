#include <algorithm>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/engine/Engine.h"
#include "injectors/FilterRefresh.h"

// Held faults that follow their host names (the `refresh` arg of the network faults,
// docs/faults/network.md): resolved again every `refresh`; a change of addresses is journalled
// before the kernel is touched, so a revert from the journal (the guardian's, after a kill -9)
// always holds a record that names every kernel object of the fault.
namespace chaosd {
namespace {

using nlohmann::json;

// Milliseconds since the fault was applied: when a refresh saw something.
int64_t msSince(const FaultRecordOut& f, Clock::TimePoint now) {
  if (!f.appliedMono) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - *f.appliedMono).count();
}

void append(json& observed, const char* key, json entry) {
  if (!observed.is_object()) observed = json::object();
  if (!observed.contains(key) || !observed[key].is_array()) observed[key] = json::array();
  observed[key].push_back(std::move(entry));
}

}  // namespace

void Engine::startRefreshing(size_t index) {
  const FaultRecordOut& f = result_.faults[index];
  const FaultType* type = deps_.registry->find(f.type);
  if (type == nullptr || !type->refreshArgs || !f.args.is_object()) return;
  const auto every = f.args.find("refresh");
  if (every == f.args.end() || !every->is_number() || every->get<int64_t>() <= 0) return;
  Refreshing r;
  r.every = Duration(every->get<int64_t>());
  r.due = deps_.clock->now() + r.every;
  if (auto it = resolved_.find(index); it != resolved_.end() && it->second.contains("hosts")) {
    r.hosts = it->second["hosts"];
  }
  refreshing_[index] = std::move(r);
}

Clock::TimePoint Engine::refreshHeldFaults() {
  Clock::TimePoint next = Clock::TimePoint::max();
  std::vector<size_t> due;
  for (auto& [index, r] : refreshing_) {
    if (deps_.clock->now() >= r.due) due.push_back(index);
  }
  for (size_t index : due) refreshFault(index);
  for (auto& [index, r] : refreshing_) next = std::min(next, r.due);
  return next;
}

void Engine::refreshFault(size_t index) {
  auto found = refreshing_.find(index);
  if (found == refreshing_.end()) return;
  Refreshing& r = found->second;
  FaultRecordOut& f = result_.faults[index];
  const auto now = deps_.clock->now();
  r.due = now + r.every;  // the next one is due a full period after this one
  const int64_t at = msSince(f, now);
  const FaultType* type = deps_.registry->find(f.type);
  auto refreshed = type->refreshArgs(f.args, r.hosts);
  auto failed = [&](const std::string& what, const Error& e) {
    // The fault keeps what it holds; the report says why it did not follow the names.
    append(f.observed, "hostRefreshErrors", {{"atMs", at}, {"error", what + ": " + e.describe()}});
    log::get("engine")->warn("refresh of {} failed: {}: {}", f.faultId, what, e.describe());
  };
  if (!refreshed) return failed("resolving", refreshed.error());
  // Names that stopped resolving keep their addresses: said once per stretch of failures.
  std::set<std::string> failing;
  for (const auto& [name, why] : refreshed->kept) {
    failing.insert(name);
    if (r.failing.contains(name)) continue;
    append(f.observed, "hostsUnresolved",
           {{"atMs", at}, {"name", name}, {"error", why}, {"kept", r.hosts.value(name, json())}});
    note(f.step + ": " + name + " no longer resolves (" + why + "); it keeps its addresses");
  }
  r.failing = std::move(failing);
  const json hosts = refreshed->resolved.observed.is_object()
                         ? refreshed->resolved.observed.value("hosts", json::object())
                         : json::object();
  if (hosts == r.hosts) return;
  auto* injector = dynamic_cast<FilterRefresh*>(injectors_.at(f.type).get());
  if (injector == nullptr) {
    return failed("changing the filter",
                  Error(ErrorCode::kUnsupported, f.type + " cannot change its filter while held"));
  }
  auto next = injector->reprepare(f.faultId, undo_[index], refreshed->resolved.args);
  if (!next) return failed("preparing the new filter", next.error());
  // The record first: from now until the kernel changes, either state is reverted by it.
  if (deps_.journal) {
    auto journalled = deps_.journal->updateUndo(f.faultId, *next);
    if (!journalled) return failed("journalling the new filter", journalled.error());
  }
  auto updated = injector->update(f.faultId, undo_[index], *next);
  if (!updated) {
    // A failed transaction changed nothing: the kernel holds the old state, which the
    // journalled record also reverts (same objects). The next refresh tries again.
    return failed("updating the filter", updated.error());
  }
  undo_[index] = std::move(*next);
  for (const auto& [name, addresses] : hosts.items()) {
    const json before = r.hosts.value(name, json::array());
    if (before == addresses) continue;
    append(f.observed, "hostChanges",
           {{"atMs", at}, {"name", name}, {"from", before}, {"to", addresses}});
    note(f.step + ": " + name + " now resolves to " + addresses.dump() + " (was " + before.dump() +
         "); the filter follows");
  }
  r.hosts = hosts;
}

}  // namespace chaosd
