#include <random>

#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/Engine.h"
#include "injectors/container/ContainerView.h"

// Container targets: the container is found (API socket or cgroups) and chosen when its fault is
// prepared, so a fault applied later in the run sees the container as it is then; the injector
// is handed the container as the kind of target it acts on.
namespace chaosd {

Result<const TargetSpec*> Engine::containerTarget(size_t index, const TargetSpec& target,
                                                  const FaultType* type) {
  auto kind = type ? containerViewKind(type->targetKinds) : std::nullopt;
  if (!kind) {
    return Error(ErrorCode::kInvalid, result_.faults[index].type + " cannot act on a container");
  }
  if (!containerApi_) containerApi_ = makeCurlContainerApi();
  ContainerSources sources;
  sources.api = containerApi_.get();
  auto found = findContainers(target.container, sources);
  if (!found) return std::move(found).error().withContext("finding target " + target.name);
  std::random_device device;
  const uint64_t seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  ContainerChoice choice = chooseContainers(target, std::move(*found), seed);
  auto one = oneContainer(target, choice);
  if (!one) return std::move(one).error();
  auto view =
      containerView(target, *one, *kind, result_.faults[index].type.starts_with("process."));
  if (!view) return std::move(view).error();
  if (choice.seed)
    note(target.name + ": container chosen with seed " + std::to_string(*choice.seed));
  auto& held = containers_[index];
  held.view = std::move(*view);
  held.container = std::move(*one);
  note(result_.faults[index].step + ": container " + held.container.name + " (" +
       held.container.shortId() + ", pid " + std::to_string(held.container.pid) + ") found by " +
       held.container.foundBy);
  return &held.view;
}

namespace {

constexpr auto kWatchEvery = std::chrono::milliseconds(200);

void addEvent(FaultRecordOut& f, nlohmann::json event) {
  if (!f.observed.is_object()) f.observed = nlohmann::json::object();
  if (!f.observed.contains("containerEvents"))
    f.observed["containerEvents"] = nlohmann::json::array();
  f.observed["containerEvents"].push_back(std::move(event));
}

}  // namespace

Clock::TimePoint Engine::watchContainers() {
  if (containers_.empty()) return Clock::TimePoint::max();
  const auto now = deps_.clock->now();
  if (now < containerWatchDue_) return containerWatchDue_;
  containerWatchDue_ = now + kWatchEvery;
  std::vector<size_t> changed;
  for (auto& [index, held] : containers_) {
    const FaultRecordOut& f = result_.faults[index];
    if (!f.appliedMono) continue;  // not applied (yet): nothing to follow
    if (!held.firstApplied) {
      held.firstApplied = f.appliedMono;
      held.heldUntil = *f.appliedMono + (f.plannedEnd - f.plannedStart);
    }
    auto start = readStartTime(held.container.pid);
    if (!start || *start != held.container.startTime) changed.push_back(index);
  }
  for (size_t index : changed) containerChanged(index);
  return containerWatchDue_;
}

void Engine::containerChanged(size_t index) {
  ContainerHeld& held = containers_.at(index);
  FaultRecordOut& f = result_.faults[index];
  const TargetSpec* target = experiment_.findTarget(f.target);
  if (target == nullptr) return;
  const auto now = deps_.clock->now();
  const auto ms = [&held](Clock::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - *held.firstApplied).count();
  };
  ContainerSources sources;
  sources.api = containerApi_.get();
  auto again = findContainerAgain(target->container, held.container, sources);
  if (!again) {
    if (held.downSince) return;  // still down: said already
    held.downSince = now;
    addEvent(f, {{"event", "stopped"},
                 {"atMs", ms(now)},
                 {"pid", held.container.pid},
                 {"detail", again.error().describe()}});
    note(f.step + ": container " + held.container.name + " stopped (" + again.error().describe() +
         ")");
    if (f.state == FaultState::kApplied && f.revertible) {
      revertFault(index);  // what it held died with the container; the revert notes what is gone
      held.revertedByWatch = true;
    }
    return;
  }
  if (again->pid == held.container.pid && again->startTime == held.container.startTime) return;
  nlohmann::json event{{"event", "restarted"},
                       {"atMs", ms(now)},
                       {"oldPid", held.container.pid},
                       {"pid", again->pid}};
  if (again->id != held.container.id) event["id"] = again->id;  // re-created under its name
  if (held.downSince) event["downMs"] = ms(now) - ms(*held.downSince);
  note(f.step + ": container " + held.container.name + " restarted, pid " +
       std::to_string(held.container.pid) + " -> " + std::to_string(again->pid));
  held.downSince.reset();
  if (f.state == FaultState::kApplied && f.revertible) {
    revertFault(index);  // on the old init's namespaces: gone, noted by the revert
    held.revertedByWatch = true;
  }
  // A fault still due that the container's going away ended: followed, or only reported.
  const bool ended = f.state == FaultState::kReverted && held.revertedByWatch;
  if (!ended || !target->container.followRestart || deps_.clock->now() >= held.heldUntil) {
    if (ended) event["followed"] = false;
    held.container = *again;
    addEvent(f, std::move(event));
    return;
  }
  // Follow: the same step again on the new container, journalled under a fault id of its own.
  const std::string base = f.faultId.substr(0, f.faultId.find("-restart"));
  f.faultId = base + "-restart" + std::to_string(++held.reapplied);
  f.state = FaultState::kNotStarted;
  const bool ok = applyFaults({index});
  event["followed"] = ok;
  if (ok) held.revertedByWatch = false;
  addEvent(f, std::move(event));
}

}  // namespace chaosd
