#include "injectors/container/ContainerView.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "injectors/process/Selection.h"

namespace chaosd {

std::optional<TargetKind> containerViewKind(const std::vector<TargetKind>& kinds) {
  for (auto k : {TargetKind::kInterface, TargetKind::kPath, TargetKind::kProcess}) {
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) return k;
  }
  return std::nullopt;
}

std::string durableNetnsPath(pid_t pid, const std::string& procRoot,
                             const std::vector<std::string>& pinDirs) {
  const std::string proc = procRoot + "/" + std::to_string(pid) + "/ns/net";
  struct stat ns {};
  if (::stat(proc.c_str(), &ns) != 0) return proc;
  for (const std::string& dir : pinDirs) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    std::string found;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat pin {};
      const std::string path = dir + "/" + name;
      // The same nsfs device and inode: what `ip netns identify` compares.
      if (::stat(path.c_str(), &pin) == 0 && pin.st_dev == ns.st_dev && pin.st_ino == ns.st_ino) {
        found = path;
        break;
      }
    }
    ::closedir(d);
    if (!found.empty()) return found;
  }
  return proc;
}

Result<TargetSpec> containerView(const TargetSpec& target, const ContainerMatch& c, TargetKind kind,
                                 bool signals, const NetnsLookup& netns) {
  TargetSpec view;
  view.name = target.name;
  view.pos = target.pos;
  view.kind = kind;
  view.emptySkip = target.emptySkip;
  const std::string proc = "/proc/" + std::to_string(c.pid);
  switch (kind) {
    case TargetKind::kInterface:
      view.interface.name = target.container.interface;
      view.interface.netns.path = durableNetnsPath(c.pid, netns.procRoot, netns.pinDirs);
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

namespace {

// Several containers' one network namespace, by the file that pins it.
Result<TargetSpec> sharedNetnsView(const TargetSpec& target,
                                   const std::vector<ContainerMatch>& chosen,
                                   const NetnsLookup& netns, const std::string& several,
                                   const std::string& instead) {
  std::optional<std::pair<dev_t, ino_t>> first;
  for (const auto& c : chosen) {
    struct stat st {};
    const std::string path = netns.procRoot + "/" + std::to_string(c.pid) + "/ns/net";
    if (::stat(path.c_str(), &st) != 0) {
      return Error::fromErrno("container " + c.name + "'s network namespace (" + path + ")", errno);
    }
    if (!first) first.emplace(st.st_dev, st.st_ino);
    if (*first != std::pair{st.st_dev, st.st_ino}) {
      return Error(ErrorCode::kInvalid,
                   several +
                       "they are in more than one network namespace, and a network fault "
                       "acts in one" +
                       instead);
    }
  }
  const std::string own = netns.procRoot + "/" + std::to_string(chosen.front().pid) + "/ns/net";
  const std::string pinned = durableNetnsPath(chosen.front().pid, netns.procRoot, netns.pinDirs);
  if (pinned == own) {
    return Error(ErrorCode::kInvalid,
                 several +
                     "they share one network namespace, but no file under /run/netns pins "
                     "it, so a revert could not reach it once " +
                     chosen.front().name + "'s init is gone" + instead);
  }
  TargetSpec view;
  view.name = target.name;
  view.pos = target.pos;
  view.kind = TargetKind::kInterface;
  view.emptySkip = target.emptySkip;
  view.interface.name = target.container.interface;
  view.interface.netns.path = pinned;
  return view;
}

}  // namespace

Result<TargetSpec> containersView(const TargetSpec& target,
                                  const std::vector<ContainerMatch>& chosen, TargetKind kind,
                                  bool signals, const NetnsLookup& netns) {
  if (chosen.empty()) {
    return Error(ErrorCode::kNotFound,
                 "no running container matches " + describeContainerSpec(target.container));
  }
  if (chosen.size() == 1) return containerView(target, chosen.front(), kind, signals, netns);
  std::string names;
  for (const auto& m : chosen) names += (names.empty() ? "" : ", ") + m.name;
  const std::string several = "target '" + target.name + "' selects " +
                              std::to_string(chosen.size()) + " containers (" + names + "); ";
  const std::string instead = ": use mode: one, a narrower selector or a target per container";
  switch (kind) {
    case TargetKind::kInterface:
      return sharedNetnsView(target, chosen, netns, several, instead);
    case TargetKind::kPath:
      return Error(ErrorCode::kInvalid,
                   several + "a disk fault acts on one container's path" + instead);
    case TargetKind::kProcess:
      break;
    default:
      return Error(ErrorCode::kInternal, "a container cannot be seen as that kind of target");
  }
  if (!signals) {
    return Error(ErrorCode::kInvalid,
                 several + "a resource fault joins one container's cgroup" + instead);
  }
  if (target.container.init == ContainerInit::kOnly) {
    return Error(ErrorCode::kInvalid, several + "init: only hits one container's init" + instead);
  }
  TargetSpec view;
  view.name = target.name;
  view.pos = target.pos;
  view.kind = kind;
  view.emptySkip = target.emptySkip;
  for (const auto& c : chosen) {
    if (c.cgroup.empty()) {
      return Error(ErrorCode::kUnsupported,
                   "container " + c.name + " (" + c.shortId() +
                       ") has no cgroup v2 group of its own on this machine, so its "
                       "processes cannot be told apart from others");
    }
    if (view.process.cgroup.empty()) {
      view.process.cgroup = c.cgroup;
    } else {
      view.process.moreCgroups.push_back(c.cgroup);
    }
    if (target.container.init == ContainerInit::kProtect) view.process.exceptPids.push_back(c.pid);
  }
  return view;
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
