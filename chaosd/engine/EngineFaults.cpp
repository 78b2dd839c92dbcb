#include <algorithm>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/engine/Engine.h"
#include "chaosd/engine/Guardian.h"
#include "injectors/container/ContainerFinder.h"

// The engine's faults: journal the intent, apply, revert, hold the run's shared needs, and
// audit what is left after the run. Engine.cpp has the run's phases and windows.
namespace chaosd {

WallClock Engine::deadlineNow() const {
  if (result_.startedAt == WallClock{}) return deps_.clock->wallNow();  // before run()
  return result_.startedAt +
         std::chrono::duration_cast<WallClock::duration>(deps_.clock->now() - result_.startedMono);
}

bool Engine::applyFaults(const std::vector<size_t>& indexes) {
  if (deps_.guardian && !deps_.guardian->alive()) {
    for (size_t i : indexes) {
      result_.faults[i].state = FaultState::kSkipped;
      result_.faults[i].error = "the guardian is gone; no fault is applied without one";
    }
    fail(Outcome::kError, "the guardian is gone; no fault is applied without one");
    return false;
  }
  // 1. Prepare: read-only. When one fails, none of the batch is journalled or applied.
  pendingShared_.clear();
  std::vector<FaultIntent> intents;
  std::vector<size_t> ready;  // the batch less the faults `empty: skip` skipped
  for (size_t i : indexes) {
    auto intent = prepareFault(i);
    if (!intent && result_.faults[i].state == FaultState::kSkipped) continue;
    if (!intent) return false;
    intents.push_back(std::move(*intent));
    ready.push_back(i);
  }
  if (ready.empty()) return true;
  // What the batch shares with other faults of the run (the run's nftables table) is held
  // first: journalled and applied before the faults that hang from it.
  if (!holdShared(std::exchange(pendingShared_, {}))) {
    for (size_t i : ready) {
      result_.faults[i].state = FaultState::kSkipped;
      result_.faults[i].error = "not applied: " + result_.reasons.back();
    }
    return false;
  }
  // 2. Journal every intent in one transaction before the kernel is touched.
  if (deps_.journal) {
    auto ok = intents.size() == 1 ? deps_.journal->recordIntent(result_.runId, intents[0])
                                  : deps_.journal->recordIntents(result_.runId, intents);
    if (!ok) {
      const std::string why =
          "journal: " + ok.error().describe() + " (not applied: a fault is journalled first)";
      for (size_t i : ready) {
        result_.faults[i].state = FaultState::kSkipped;
        result_.faults[i].error = why;
      }
      fail(Outcome::kError, why);
      return false;
    }
  }
  const auto wallNow = deps_.clock->wallNow();
  for (size_t i : ready) result_.faults[i].intentAt = wallNow;
  // 3. Apply in order. After a failure the rest of the batch is not applied: skipped. The
  // applied marks of the batch are journalled together, in one commit, once it is done (the
  // intent already makes each fault revertible; a commit per fault was most of a large group's
  // time: FaultJournal::markAppliedAll).
  std::vector<std::string> applied;
  auto markApplied = [&] {
    if (deps_.journal && !applied.empty()) (void)deps_.journal->markAppliedAll(applied);
  };
  for (size_t k = 0; k < ready.size(); ++k) {
    if (applyPrepared(ready[k])) {
      applied.push_back(result_.faults[ready[k]].faultId);
      continue;
    }
    markApplied();
    for (size_t rest = k + 1; rest < ready.size(); ++rest) {
      FaultRecordOut& f = result_.faults[ready[rest]];
      f.state = FaultState::kSkipped;
      f.error = "not applied: step " + result_.faults[ready[k]].step + " failed first";
      if (deps_.journal) (void)deps_.journal->markSkipped(f.faultId, f.error);
    }
    return false;
  }
  markApplied();
  return true;
}

std::optional<FaultIntent> Engine::prepareFault(size_t index) {
  FaultRecordOut& f = result_.faults[index];
  const FaultType* type = deps_.registry->find(f.type);
  Injector& injector = *injectors_.at(f.type);
  FaultRequest req;
  req.runId = result_.runId;
  req.faultId = f.faultId;
  req.stepName = f.step;
  req.faultType = f.type;
  req.target = f.target.empty() ? nullptr : experiment_.findTarget(f.target);
  if (req.target != nullptr && req.target->kind == TargetKind::kExec) {
    // The process the engine started for the target, by pid (and start time, in the victim).
    auto it = execs_.find(f.target);
    if (it != execs_.end()) req.target = &it->second.asProcess;
  }
  if (req.target != nullptr && req.target->kind == TargetKind::kContainer) {
    auto view = containerTarget(index, *req.target, type);
    if (!view) {
      f.state = FaultState::kApplyFailed;
      f.error = view.error().describe();
      fail(view.error().code() == ErrorCode::kInvalid ? Outcome::kAborted : Outcome::kError,
           "step " + f.step + ": " + f.error);
      return std::nullopt;
    }
    if (*view == nullptr) {  // `empty: skip`: the caller goes on with the batch's others
      f.state = FaultState::kSkipped;
      f.error = "no running container matches " + describeContainerSpec(req.target->container) +
                " (empty: skip)";
      note("step " + f.step + ": skipped, " + f.error);
      return std::nullopt;
    }
    req.target = *view;
  }
  req.args = f.args;
  // Host names resolve again now: the addresses of this moment are the ones applied.
  if (type && type->resolveArgs) {
    auto resolved = type->resolveArgs(f.args);
    if (!resolved) {
      f.state = FaultState::kApplyFailed;
      f.error = resolved.error().describe();
      fail(Outcome::kError, "step " + f.step + ": " + f.error);
      return std::nullopt;
    }
    req.args = std::move(resolved->args);
    if (resolved->observed.is_object()) resolved_[index] = std::move(resolved->observed);
  }
  req.duration = f.plannedEnd - f.plannedStart;
  req.guardrails = &experiment_.guardrails;
  auto prepared = injector.prepare(req);
  if (!prepared) {
    f.state = FaultState::kApplyFailed;
    f.error = prepared.error().describe();
    fail(prepared.error().code() == ErrorCode::kInvalid ? Outcome::kAborted : Outcome::kError,
         "step " + f.step + ": " + f.error);
    return std::nullopt;
  }
  // The names a filter gave, with the addresses applied: in the description, which the journal
  // keeps with the undo record (the record itself holds only addresses).
  if (auto it = resolved_.find(index); it != resolved_.end() && it->second.contains("hosts")) {
    std::string names;
    for (const auto& [name, addresses] : it->second["hosts"].items()) {
      names += (names.empty() ? "" : "; ") + name + " =";
      for (const auto& a : addresses) names += " " + a.get<std::string>();
    }
    prepared->description += " [hosts: " + names + "]";
  }
  if (auto it = containers_.find(index); it != containers_.end()) {
    const ContainerMatch& c = it->second.container;
    prepared->description +=
        " [container " + c.name + " " + c.shortId() + ", pid " + std::to_string(c.pid) + "]";
  }
  f.description = prepared->description;
  f.revertible = prepared->revertible;
  for (auto& need : prepared->shared) pendingShared_.push_back(std::move(need));
  undo_[index] = prepared->undo;
  f.deadline = deadlineNow() + std::chrono::duration_cast<WallClock::duration>(req.duration);
  return makeIntent(req, *prepared, f.deadline, type && type->survivesReboot);
}

bool Engine::applyPrepared(size_t index) {
  FaultRecordOut& f = result_.faults[index];
  Injector& injector = *injectors_.at(f.type);
  auto applied = injector.apply(f.faultId, undo_[index]);
  if (!applied) {
    f.state = FaultState::kApplyFailed;
    f.error = applied.error().describe();
    // A partial apply is cleaned up by the revert, which succeeds when nothing is there.
    auto cleanup = injector.revert(f.faultId, undo_[index]);
    if (deps_.journal) {
      (void)(cleanup ? deps_.journal->markReverted(f.faultId)
                     : deps_.journal->markRevertFailed(f.faultId, cleanup.error().describe()));
    }
    if (!cleanup) f.error += "; cleanup failed: " + cleanup.error().describe();
    fail(Outcome::kError, "step " + f.step + ": " + f.type + " failed: " + f.error);
    return false;
  }
  f.backend = applied->backend;
  f.observed = applied->observed;
  if (auto it = resolved_.find(index); it != resolved_.end()) {
    if (!f.observed.is_object()) f.observed = nlohmann::json::object();
    f.observed.update(it->second);
  }
  if (auto it = containers_.find(index); it != containers_.end()) {
    if (!f.observed.is_object()) f.observed = nlohmann::json::object();
    f.observed["container"] = it->second.container.toJson();
  }
  f.state = FaultState::kApplied;
  f.appliedAt = deps_.clock->wallNow();
  f.appliedMono = deps_.clock->now();
  startRefreshing(index);
  if (deps_.observer) deps_.observer->faultApplied(f);
  return true;
}

void Engine::revertFault(size_t index, std::vector<std::string>* revertedIds) {
  FaultRecordOut& f = result_.faults[index];
  if (f.state != FaultState::kApplied) return;
  refreshing_.erase(index);
  Injector& injector = *injectors_.at(f.type);
  auto r = injector.revert(f.faultId, undo_[index]);
  f.revertedAt = deps_.clock->wallNow();
  f.revertedMono = deps_.clock->now();
  if (r) {
    f.state = FaultState::kReverted;
    if (r->is_object()) f.observed.update(*r);
    if (revertedIds != nullptr) {
      revertedIds->push_back(f.faultId);
    } else if (deps_.journal) {
      (void)deps_.journal->markReverted(f.faultId);
    }
  } else {
    f.state = FaultState::kRevertFailed;
    f.error = r.error().describe();
    if (deps_.journal) (void)deps_.journal->markRevertFailed(f.faultId, f.error);
    fail(Outcome::kLeftovers, "step " + f.step + ": revert failed: " + f.error);
  }
  if (deps_.observer) deps_.observer->faultReverted(f);
}

void Engine::revertAllHeld() {
  std::vector<size_t> held;
  for (size_t i = 0; i < result_.faults.size(); ++i) {
    if (result_.faults[i].state == FaultState::kApplied) held.push_back(i);
  }
  // Newest first, the reverse of application, as a stack of changes unwinds.
  std::sort(held.begin(), held.end(), [&](size_t a, size_t b) {
    return result_.faults[a].appliedMono > result_.faults[b].appliedMono;
  });
  std::vector<std::string> reverted;
  for (size_t i : held) revertFault(i, &reverted);
  if (deps_.journal && !reverted.empty()) (void)deps_.journal->markRevertedAll(reverted);
}

bool Engine::holdShared(const std::vector<SharedNeed>& needs) {
  for (const SharedNeed& need : needs) {
    if (std::any_of(shared_.begin(), shared_.end(),
                    [&](const SharedHeld& h) { return h.need.key == need.key; })) {
      continue;
    }
    const FaultType* type = deps_.registry->find(need.faultType);
    if (type == nullptr || !type->factory) {
      fail(Outcome::kError, "shared " + need.faultType + " is not implemented in this build");
      return false;
    }
    auto& injector = injectors_[need.faultType];
    if (!injector) injector = type->factory();
    SharedHeld held{need, result_.runId + "-shared-" + std::to_string(shared_.size() + 1)};
    if (deps_.journal) {
      FaultIntent intent;
      intent.faultId = held.faultId;
      intent.step = "shared";
      intent.faultType = need.faultType;
      intent.target = need.description;
      intent.undo = need.undo;
      intent.resources = {need.key};
      // Held until the run's end: past the rest of the method and the recovery window (plus a
      // minute), the guardian removes it even if we hang. Every fault's deadline is earlier.
      const Duration rest = timeline_.total + experiment_.steadyState.recovery;
      intent.deadline = deadlineNow() + std::chrono::duration_cast<WallClock::duration>(rest) +
                        std::chrono::minutes(1);
      auto ok = deps_.journal->recordIntent(result_.runId, intent);
      if (!ok) {
        fail(Outcome::kError,
             "journal: " + ok.error().describe() + " (not applied: a fault is journalled first)");
        return false;
      }
    }
    auto applied = injector->apply(held.faultId, need.undo);
    if (!applied) {
      auto cleanup = injector->revert(held.faultId, need.undo);
      if (deps_.journal) {
        (void)(cleanup ? deps_.journal->markReverted(held.faultId)
                       : deps_.journal->markRevertFailed(held.faultId, cleanup.error().describe()));
      }
      fail(cleanup ? Outcome::kError : Outcome::kLeftovers,
           need.description + ": " + applied.error().describe() +
               (cleanup ? "" : "; cleanup failed: " + cleanup.error().describe()));
      return false;
    }
    if (deps_.journal) (void)deps_.journal->markApplied(held.faultId);
    shared_.push_back(std::move(held));
  }
  return true;
}

void Engine::releaseShared() {
  while (!shared_.empty()) {
    SharedHeld held = std::move(shared_.back());
    shared_.pop_back();
    Injector& injector = *injectors_.at(held.need.faultType);
    auto r = injector.revert(held.faultId, held.need.undo);
    if (r) {
      if (deps_.journal) (void)deps_.journal->markReverted(held.faultId);
      auto left = injector.audit(held.need.undo);
      if (left && !left->empty()) {
        for (const auto& l : *left) fail(Outcome::kLeftovers, l);
      }
    } else {
      if (deps_.journal) (void)deps_.journal->markRevertFailed(held.faultId, r.error().describe());
      fail(Outcome::kLeftovers, held.need.description + ": revert failed: " + r.error().describe());
    }
  }
}

void Engine::runRollbacks() {
  for (const auto& r : experiment_.rollbacks) {
    RollbackRecord rec = deps_.runRollback(r);
    if (!rec.ok) fail(Outcome::kLeftovers, "rollback " + r.name + " failed: " + rec.detail);
    note("rollback " + r.name + (rec.ok ? ": ok" : ": FAILED: " + rec.detail));
    result_.rollbacks.push_back(std::move(rec));
  }
}

void Engine::audit() {
  for (size_t i = 0; i < result_.faults.size(); ++i) {
    FaultRecordOut& f = result_.faults[i];
    if (f.state == FaultState::kNotStarted || f.state == FaultState::kSkipped || !f.revertible)
      continue;
    auto it = injectors_.find(f.type);
    if (it == injectors_.end()) continue;
    if (undo_[i].is_null()) continue;  // never prepared (prepare failed): nothing was applied
    auto left = it->second->audit(undo_[i]);
    if (!left) {
      f.leftovers.push_back("audit failed: " + left.error().describe());
    } else {
      f.leftovers = *left;
    }
    if (!f.leftovers.empty()) {
      result_.auditClean = false;
      for (const auto& l : f.leftovers)
        fail(Outcome::kLeftovers, "left behind by " + f.step + ": " + l);
    }
  }
}

}  // namespace chaosd
