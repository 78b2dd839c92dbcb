#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"
#include "injectors/container/ContainerFinder.h"

// How a fault sees a container target: as the kind of target its injector already acts on,
// built from the container's init as the host sees it. No shell, no agent inside:
//   interface  the container's `interface` in the init's network namespace (/proc/PID/ns/net,
//              entered with setns by the network injectors; never the host's)
//   path       the container's `path` through /proc/PID/root (its mount namespace's view)
//   process    the processes of the container's cgroup, its init left out unless `init:` says
//              otherwise (resource faults join the same cgroup)
namespace chaosd {

// The kind a fault type that accepts containers sees one as: the first of interface, path and
// process among its kinds; nullopt when it takes none of them.
std::optional<TargetKind> containerViewKind(const std::vector<TargetKind>& kinds);

// The most durable path to a pid's network namespace. A file under one of `pinDirs` that pins
// the same namespace (a podman pod's infra namespace, CNI's pod sandboxes, `ip netns add`, all
// bind mounts under /run/netns) outlives the container's init; /proc/PID/ns/net dies with the
// init while such a namespace lives on, and a revert through it (the run's after a container
// stopped or restarted, the guardian's, the next start's) would find it "gone" and leave the
// fault's rules behind in the live namespace. /proc/PID/ns/net when nothing pins it.
std::string durableNetnsPath(pid_t pid, const std::string& procRoot = "/proc",
                             const std::vector<std::string>& pinDirs = {"/run/netns",
                                                                        "/var/run/netns"});

// Where a container's network namespace is looked up (fixture trees in tests).
struct NetnsLookup {
  std::string procRoot = "/proc";
  std::vector<std::string> pinDirs = {"/run/netns", "/var/run/netns"};
};

// The container as a target of `kind` (an interface in durableNetnsPath()). kInvalid for a path
// view without `path:`; kUnsupported for a process view of a container whose processes have no
// cgroup v2 group of their own (only `init: only` works then). `signals` is true for faults that
// signal the processes (process.kill, pause): only they spare the init under `init: protect`;
// resource faults join the container's cgroup through every one of its processes.
Result<TargetSpec> containerView(const TargetSpec& target, const ContainerMatch& container,
                                 TargetKind kind, bool signals = true,
                                 const NetnsLookup& netns = {});

// Several containers (`mode: all` over a pod, a label, a name glob) as one target of `kind`.
// One container: containerView's. Several:
//   process  faults that signal processes (process.kill, process.pause) act on the processes
//            of every container's cgroup v2 group, each init spared under `init: protect`;
//            every victim is still named by pid and start time
//   network  when they share one network namespace (a pod's containers) that something pins
//            under /run/netns: one fault in it, named by the pin (its revert must not depend on
//            one container's init living on)
// Anything else over several acts on one namespace, path, group or pid (a resource fault,
// `init: only`): kInvalid, naming the containers and what to write instead.
Result<TargetSpec> containersView(const TargetSpec& target,
                                  const std::vector<ContainerMatch>& chosen, TargetKind kind,
                                  bool signals = true, const NetnsLookup& netns = {});

struct ContainerChoice {
  std::vector<ContainerMatch> matched;   // every running container the spec matches
  std::vector<ContainerMatch> selected;  // what the target's mode picks
  std::optional<uint64_t> seed;          // the seed that picked (when the mode chose)
};

// The target's mode over the matches, as for processes: sorted by init pid, shuffled with
// mt19937_64(seed) when the mode chooses. `seed` is used when the target names none.
ContainerChoice chooseContainers(const TargetSpec& target, std::vector<ContainerMatch> matched,
                                 uint64_t seed);

// The one container a fault acts on: the choice's, or why there is not exactly one (none
// matches: kNotFound; several selected: kInvalid, naming them).
Result<ContainerMatch> oneContainer(const TargetSpec& target, const ContainerChoice& choice);

}  // namespace chaosd
