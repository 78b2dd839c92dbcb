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
  if (choice.selected.empty() && target.emptySkip) {
    const TargetSpec* skipped = nullptr;  // `empty: skip`: nothing runs, nothing to do
    return skipped;
  }
  auto view = containersView(target, choice.selected, *kind,
                             result_.faults[index].type.starts_with("process."));
  if (!view) return std::move(view).error();
  if (choice.seed)
    note(target.name + ": container chosen with seed " + std::to_string(*choice.seed));
  auto& held = containers_[index];
  held.view = std::move(*view);
  held.container = choice.selected.front();
  held.others.assign(choice.selected.begin() + 1, choice.selected.end());
  held.downSince.assign(choice.selected.size(), std::nullopt);
  for (const ContainerMatch& c : choice.selected) {
    note(result_.faults[index].step + ": container " + c.name + " (" + c.shortId() + ", pid " +
         std::to_string(c.pid) + ") found by " + c.foundBy);
  }
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
  std::vector<std::pair<size_t, size_t>> changed;  // (fault, which container)
  const auto moved = [](const ContainerMatch& c) {
    auto start = readStartTime(c.pid);
    return !start || *start != c.startTime;
  };
  for (auto& [index, held] : containers_) {
    const FaultRecordOut& f = result_.faults[index];
    if (!f.appliedMono) continue;  // not applied (yet): nothing to follow
    if (!held.firstApplied) {
      held.firstApplied = f.appliedMono;
      held.heldUntil = *f.appliedMono + (f.plannedEnd - f.plannedStart);
    }
    if (moved(held.container)) changed.emplace_back(index, 0);
    for (size_t k = 0; k < held.others.size(); ++k) {
      if (moved(held.others[k])) changed.emplace_back(index, k + 1);
    }
  }
  for (auto [index, which] : changed) containerChanged(index, which);
  return containerWatchDue_;
}

void Engine::containerChanged(size_t index, size_t which) {
  ContainerHeld& held = containers_.at(index);
  FaultRecordOut& f = result_.faults[index];
  const TargetSpec* target = experiment_.findTarget(f.target);
  if (target == nullptr) return;
  // Over several containers each is reported by name, and the fault stays: its processes were
  // chosen when it was applied, its namespace is the pod's.
  const bool several = !held.others.empty();
  ContainerMatch& c = which == 0 ? held.container : held.others[which - 1];
  std::optional<Clock::TimePoint>& downSince = held.downSince[which];
  const auto now = deps_.clock->now();
  const auto ms = [&held](Clock::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - *held.firstApplied).count();
  };
  ContainerSources sources;
  sources.api = containerApi_.get();
  auto again = findContainerAgain(target->container, c, sources);
  if (!again) {
    if (downSince) return;  // still down: said already
    downSince = now;
    nlohmann::json event{{"event", "stopped"},
                         {"atMs", ms(now)},
                         {"pid", c.pid},
                         {"detail", again.error().describe()}};
    if (several) event["container"] = c.name;
    addEvent(f, std::move(event));
    note(f.step + ": container " + c.name + " stopped (" + again.error().describe() + ")");
    if (!several && f.state == FaultState::kApplied && f.revertible) {
      revertFault(index);  // what it held died with the container; the revert notes what is gone
      held.revertedByWatch = true;
    }
    return;
  }
  if (again->pid == c.pid && again->startTime == c.startTime) return;
  nlohmann::json event{
      {"event", "restarted"}, {"atMs", ms(now)}, {"oldPid", c.pid}, {"pid", again->pid}};
  if (several) event["container"] = c.name;
  if (again->id != c.id) event["id"] = again->id;  // re-created under its name
  if (downSince) event["downMs"] = ms(now) - ms(*downSince);
  note(f.step + ": container " + c.name + " restarted, pid " + std::to_string(c.pid) + " -> " +
       std::to_string(again->pid));
  downSince.reset();
  if (!several && f.state == FaultState::kApplied && f.revertible) {
    revertFault(index);  // on the old init's namespaces: gone, noted by the revert
    held.revertedByWatch = true;
  }
  // A fault still due that the container's going away ended: followed, or only reported.
  const bool ended = f.state == FaultState::kReverted && held.revertedByWatch;
  if (several || !ended || !target->container.followRestart ||
      deps_.clock->now() >= held.heldUntil) {
    if (several || ended) event["followed"] = false;
    c = *again;
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
