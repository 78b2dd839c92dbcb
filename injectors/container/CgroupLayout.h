#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "experiments/model/Experiment.h"

// The cgroups container runtimes make, read back: which container a process belongs to from
// its cgroup path alone, without the runtime's API. Pure functions over paths (tests feed them
// the layouts of every runtime and driver).
namespace chaosd {

struct CgroupContainer {
  ContainerRuntime runtime = ContainerRuntime::kAuto;  // kAuto: containerd or CRI-O, unsure
  std::string id;                                      // 64 hex digits
  std::string driver;  // "systemd" (a .scope unit) or "cgroupfs" (a plain folder)
  std::string layout;  // the component that told: "libpod-<id>.scope", "/docker/<id>"
};

// The container a cgroup path (v1 or v2, as /proc/PID/cgroup shows it) belongs to, or nullopt:
//   podman      systemd: .../libpod-<id>.scope        cgroupfs: /libpod_parent/libpod-<id>
//   docker      systemd: .../docker-<id>.scope        cgroupfs: /docker/<id>
//   containerd  systemd: .../cri-containerd-<id>.scope  cgroupfs: /kubepods/.../<id>
//   cri-o       systemd: .../crio-<id>.scope          cgroupfs: /kubepods/.../<id>
// The innermost match wins (a container's own sub-cgroups, /docker/<id>/init.scope, stay its).
// The runtimes' monitors (libpod-conmon-<id>.scope, crio-conmon-<id>.scope) are not containers.
std::optional<CgroupContainer> containerOfCgroup(std::string_view path);

// containerOfCgroup over every line of a /proc/PID/cgroup text ("N:controllers:/path"): the
// first line that names a container.
std::optional<CgroupContainer> containerOfCgroupFile(std::string_view text);

}  // namespace chaosd
