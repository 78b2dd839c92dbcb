#include "injectors/container/ContainerView.h"

#include <algorithm>

#include "injectors/process/Selection.h"

namespace chaosd {

std::optional<TargetKind> containerViewKind(const std::vector<TargetKind>& kinds) {
  for (auto k : {TargetKind::kInterface, TargetKind::kPath, TargetKind::kProcess}) {
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) return k;
  }
  return std::nullopt;
}

Result<TargetSpec> containerView(const TargetSpec& target, const ContainerMatch& c, TargetKind kind,
                                 bool signals) {
  TargetSpec view;
  view.name = target.name;
  view.pos = target.pos;
  view.kind = kind;
  view.emptySkip = target.emptySkip;
  const std::string proc = "/proc/" + std::to_string(c.pid);
  switch (kind) {
    case TargetKind::kInterface:
      view.interface.name = target.container.interface;
      view.interface.netns.path = proc + "/ns/net";
      return view;
    case TargetKind::kPath:
      if (target.container.path.empty()) {
        return Error(ErrorCode::kInvalid, "container target '" + target.name +
                                              "' has no path: (the path inside the container "
                                              "that disk faults act on)");
      }
      view.path = proc + "/root" + target.container.path;
      return view;
    case TargetKind::kProcess:
      if (target.container.init == ContainerInit::kOnly) {
        view.process.pid = c.pid;
        return view;
      }
      if (c.cgroup.empty()) {
        return Error(ErrorCode::kUnsupported,
                     "container " + c.name + " (" + c.shortId() +
                         ") has no cgroup v2 group of its own on this machine, so its "
                         "processes cannot be told apart from others; init: only hits its init");
      }
      view.process.cgroup = c.cgroup;
      if (signals && target.container.init == ContainerInit::kProtect) {
        view.process.exceptPids = {c.pid};
      }
      return view;
    default:
      return Error(ErrorCode::kInternal, "a container cannot be seen as that kind of target");
  }
}

ContainerChoice chooseContainers(const TargetSpec& target, std::vector<ContainerMatch> matched,
                                 uint64_t seed) {
  ContainerChoice out;
  std::sort(matched.begin(), matched.end(),
            [](const ContainerMatch& a, const ContainerMatch& b) { return a.pid < b.pid; });
  out.matched = matched;
  const size_t n = selectionSize(target.selection, matched.size());
  if (n == matched.size()) {
    out.selected = std::move(matched);
    return out;
  }
  // The process selection's shuffle, over the containers' init pids.
  std::vector<ProcessInfo> inits;
  for (const auto& m : matched) {
    ProcessInfo init;
    init.pid = m.pid;
    inits.push_back(std::move(init));
  }
  const uint64_t used = target.selection.seed.value_or(seed);
  out.seed = used;
  for (const auto& p : selectProcesses(inits, target.selection, used)) {
    for (const auto& m : matched) {
      if (m.pid == p.pid) out.selected.push_back(m);
    }
  }
  return out;
}

Result<ContainerMatch> oneContainer(const TargetSpec& target, const ContainerChoice& choice) {
  if (choice.selected.empty()) {
    return Error(ErrorCode::kNotFound,
                 "no running container matches " + describeContainerSpec(target.container));
  }
  if (choice.selected.size() > 1) {
    std::string names;
    for (const auto& m : choice.selected) names += (names.empty() ? "" : ", ") + m.name;
    return Error(ErrorCode::kInvalid,
                 "target '" + target.name + "' selects " + std::to_string(choice.selected.size()) +
                     " containers (" + names +
                     "); a fault acts on one container: use mode: one or a narrower selector");
  }
  return choice.selected.front();
}

}  // namespace chaosd
