#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"
#include "injectors/container/ContainerApi.h"

// Finding running containers: through the runtime's REST API on its UNIX socket (Podman's
// libpod routes, else Docker's, which Podman also serves), or, with no socket, through the
// cgroups the runtimes make (injectors/container/CgroupLayout.h). Reads only.
namespace chaosd {

struct ContainerMatch {
  std::string id;  // the full 64-hex id
  std::string name;
  std::string pod;  // podman's pod name, "" for none
  ContainerRuntime runtime = ContainerRuntime::kAuto;
  pid_t pid = 0;           // its init, as the host sees it
  uint64_t startTime = 0;  // of the init: (pid, startTime) names that process and no later one
  std::map<std::string, std::string> labels;
  std::string cgroup;   // the init's cgroup v2 path; "" when it has none of its own
  std::string foundBy;  // "podman API on /run/podman/podman.sock", "cgroup libpod-<id>.scope"
  std::string shortId() const { return id.substr(0, 12); }
  nlohmann::json toJson() const;
};

struct ContainerSources {
  ContainerApi* api = nullptr;  // nullptr: cgroups only
  std::string procRoot = "/proc";
};

// The API sockets tried for a spec, in order: its `socket`, else the runtime's usual ones
// (podman: /run/podman/podman.sock; docker: /run/docker.sock, /var/run/docker.sock; auto: both;
// containerd and cri-o: none, their CRI is gRPC and chaosd reads their cgroups instead).
std::vector<std::string> containerSockets(const ContainerSpec& spec);

// The running containers the spec matches (id prefix, name, every label, pod), sorted by init
// pid. kNotFound when a name, label or pod is asked and no API socket answers (cgroups know
// none of them); an API that answers with an error is kIo.
Result<std::vector<ContainerMatch>> findContainers(const ContainerSpec& spec,
                                                   const ContainerSources& sources);

// The same container again, after a restart or to check it still runs: by its full id, through
// the way it was first found. kNotFound when it no longer runs.
Result<ContainerMatch> findContainerAgain(const ContainerSpec& spec, const ContainerMatch& before,
                                          const ContainerSources& sources);

// The spec in words, for plans and errors: "container name=web label app=web (podman)".
std::string describeContainerSpec(const ContainerSpec& spec);

}  // namespace chaosd
