#include "chaosd/engine/TargetKeys.h"

#include <filesystem>
#include <set>

#include "injectors/container/ContainerFinder.h"

namespace chaosd {
namespace {

void collectTargets(const std::vector<StepSpec>& steps, std::set<std::string>& names) {
  for (const auto& s : steps) {
    if (s.kind == StepKind::kFault && !s.target.empty()) names.insert(s.target);
    if (s.kind == StepKind::kParallel) collectTargets(s.parallel, names);
  }
}

}  // namespace

std::vector<TargetKey> targetKeys(const Experiment& experiment, const ProcessTable* processes) {
  std::set<std::string> used;
  collectTargets(experiment.method, used);
  std::vector<TargetKey> out;
  for (const auto& name : used) {
    const TargetSpec* t = experiment.findTarget(name);
    if (t == nullptr) continue;
    switch (t->kind) {
      case TargetKind::kInterface:
        out.push_back(
            {"interface:" + t->interface.netns.describe() + ":" + t->interface.name, name,
             "interface " + t->interface.name + " (" + t->interface.netns.describe() + ")"});
        break;
      case TargetKind::kPath: {
        std::error_code ec;
        auto canonical = std::filesystem::weakly_canonical(t->path, ec);
        std::string p = ec ? t->path : canonical.string();
        out.push_back({"path:" + p, name, "path " + p});
        break;
      }
      case TargetKind::kProcess: {
        bool any = false;
        if (processes != nullptr) {
          auto matched = processes->match(t->process);
          if (matched) {
            for (const auto& p : *matched) {
              out.push_back({"pid:" + std::to_string(p.pid), name,
                             "process " + std::to_string(p.pid) + " (" + p.comm + ")"});
              any = true;
            }
          }
        }
        if (!any) {
          std::string sel = describeSelector(*t);
          out.push_back({"process:" + sel, name, "processes " + sel});
        }
        break;
      }
      case TargetKind::kContainer: {
        // Every running container that matches (not only the one a mode would pick), by id.
        auto api = makeCurlContainerApi();
        auto found = findContainers(t->container, ContainerSources{api.get(), "/proc"});
        bool any = false;
        for (const auto& c : found ? *found : std::vector<ContainerMatch>{}) {
          out.push_back(
              {"container:" + c.id, name, "container " + c.name + " (" + c.shortId() + ")"});
          any = true;
        }
        if (!any) {
          const std::string sel = describeContainerSpec(t->container);
          out.push_back({"container:" + sel, name, sel});
        }
        break;
      }
      default:
        break;  // exec: a process the run starts itself
    }
  }
  return out;
}

}  // namespace chaosd
