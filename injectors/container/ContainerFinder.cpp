#include "injectors/container/ContainerFinder.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/ProcessTable.h"
#include "injectors/container/CgroupLayout.h"

namespace chaosd {
namespace {

bool specMatches(const ContainerSpec& spec, const ContainerMatch& m) {
  if (!spec.id.empty() && !m.id.starts_with(spec.id)) return false;
  if (!spec.name.empty() && m.name != spec.name) return false;
  if (!spec.pod.empty() && m.pod != spec.pod) return false;
  for (const auto& [k, v] : spec.labels) {
    auto it = m.labels.find(k);
    if (it == m.labels.end() || it->second != v) return false;
  }
  return true;
}

std::map<std::string, std::string> labelsOf(const nlohmann::json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::string firstName(const nlohmann::json& names) {
  if (!names.is_array() || names.empty() || !names[0].is_string()) return "";
  std::string n = names[0].get<std::string>();
  if (!n.empty() && n.front() == '/') n.erase(0, 1);  // Docker's "/web"
  return n;
}

Result<nlohmann::json> getJson(ContainerApi& api, const std::string& socket,
                               const std::string& path) {
  auto r = api.get(socket, path);
  if (!r) return std::move(r).error();
  // A route the server does not serve (Docker has no libpod routes): not a missing socket.
  if (r->status == 404) return Error(ErrorCode::kUnsupported, "GET " + path + ": 404");
  if (r->status != 200) {
    return Error(ErrorCode::kIo, "GET " + path + " on " + socket + ": HTTP " +
                                     std::to_string(r->status) + " " + r->body.substr(0, 200));
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Error(ErrorCode::kIo, "GET " + path + ": not JSON");
  return j;
}

// Podman's own list: pid, pod and labels in one request.
Result<std::vector<ContainerMatch>> listLibpod(ContainerApi& api, const std::string& socket) {
  auto list = getJson(api, socket, "/v4.0.0/libpod/containers/json");
  if (!list) return std::move(list).error();
  std::vector<ContainerMatch> out;
  if (!list->is_array()) return out;
  for (const auto& c : *list) {
    if (c.value("State", "") != "running") continue;
    ContainerMatch m;
    m.id = c.value("Id", "");
    m.name = firstName(c.value("Names", nlohmann::json::array()));
    m.pod = c.value("PodName", "");
    m.pid = c.value("Pid", 0);
    m.labels = labelsOf(c.value("Labels", nlohmann::json::object()));
    m.runtime = ContainerRuntime::kPodman;
    m.foundBy = "podman API on " + socket;
    out.push_back(std::move(m));
  }
  return out;
}

// Docker's list, then an inspect of each candidate for its pid (the list has none).
Result<std::vector<ContainerMatch>> listDocker(ContainerApi& api, const std::string& socket,
                                               const ContainerSpec& spec) {
  auto list = getJson(api, socket, "/containers/json");
  if (!list) return std::move(list).error();
  std::vector<ContainerMatch> out;
  if (!list->is_array()) return out;
  for (const auto& c : *list) {
    ContainerMatch m;
    m.id = c.value("Id", "");
    m.name = firstName(c.value("Names", nlohmann::json::array()));
    m.labels = labelsOf(c.value("Labels", nlohmann::json::object()));
    m.runtime = spec.runtime == ContainerRuntime::kPodman ? ContainerRuntime::kPodman
                                                          : ContainerRuntime::kDocker;
    if (!specMatches(spec, m) || m.id.size() < 12) continue;
    auto inspect = getJson(api, socket, "/containers/" + m.id + "/json");
    if (!inspect) continue;  // gone between the list and now
    const auto state = inspect->value("State", nlohmann::json::object());
    if (!state.value("Running", false)) continue;
    m.pid = state.value("Pid", 0);
    m.foundBy = std::string(containerRuntimeName(m.runtime)) + " API on " + socket;
    out.push_back(std::move(m));
  }
  return out;
}

// Every process whose cgroups name a container, grouped by container; each container's init is
// its process whose parent is outside it (the earliest started, if several).
std::vector<ContainerMatch> scanCgroups(const ContainerSpec& spec, const std::string& procRoot) {
  auto table = ProcessTable::scan(procRoot, 0);
  if (!table) return {};
  struct Group {
    CgroupContainer where;
    std::vector<const ProcessInfo*> members;
  };
  std::map<std::string, Group> groups;
  for (const auto& p : table->processes()) {
    if (p.isKernelThread) continue;
    auto text = readKernelFile(procRoot + "/" + std::to_string(p.pid) + "/cgroup");
    if (!text) continue;
    auto c = containerOfCgroupFile(*text);
    if (!c) continue;
    if (spec.runtime != ContainerRuntime::kAuto && c->runtime != ContainerRuntime::kAuto &&
        c->runtime != spec.runtime) {
      continue;
    }
    auto& g = groups[c->id];
    if (g.members.empty()) g.where = *c;
    g.members.push_back(&p);
  }
  std::vector<ContainerMatch> out;
  for (auto& [id, g] : groups) {
    std::set<pid_t> inside;
    for (const auto* p : g.members) inside.insert(p->pid);
    const ProcessInfo* init = nullptr;
    for (const auto* p : g.members) {
      if (inside.contains(p->ppid)) continue;
      if (init == nullptr || p->startTime < init->startTime) init = p;
    }
    if (init == nullptr) continue;
    ContainerMatch m;
    m.id = id;
    m.name = id.substr(0, 12);
    m.runtime = g.where.runtime;
    m.pid = init->pid;
    m.startTime = init->startTime;
    m.foundBy = "cgroup " + g.where.layout + " (" + g.where.driver + " driver)";
    out.push_back(std::move(m));
  }
  return out;
}

// A kubelet container log link's name: <pod>_<namespace>_<container>-<64 hex id>.log. Pod,
// namespace and container names are DNS labels (no '_'), so the three split unambiguously.
struct PodLogLink {
  std::string pod, ns, container, id;
};

std::optional<PodLogLink> parsePodLogLink(std::string_view name) {
  if (!name.ends_with(".log")) return std::nullopt;
  name.remove_suffix(4);
  if (name.size() < 66 || name[name.size() - 65] != '-') return std::nullopt;
  PodLogLink out;
  out.id = std::string(name.substr(name.size() - 64));
  if (!std::all_of(out.id.begin(), out.id.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return std::nullopt;
  }
  name.remove_suffix(65);
  const size_t a = name.find('_');
  const size_t b = a == std::string_view::npos ? a : name.find('_', a + 1);
  if (b == std::string_view::npos || name.find('_', b + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  out.pod = std::string(name.substr(0, a));
  out.ns = std::string(name.substr(a + 1, b - a - 1));
  out.container = std::string(name.substr(b + 1));
  if (out.pod.empty() || out.ns.empty() || out.container.empty()) return std::nullopt;
  return out;
}

// A Kubernetes pod's running containers: the kubelet's log links name them (and their ids), the
// runtime's cgroups hold their processes. A link whose container no longer runs (the kubelet
// keeps the last one's for a while) has no processes, and the pod's sandbox (pause) has no link.
Result<std::vector<ContainerMatch>> findKubernetes(const ContainerSpec& spec,
                                                   const std::string& procRoot) {
  const KubernetesPodSpec& k = *spec.kubernetes;
  std::error_code ec;
  std::filesystem::directory_iterator it(k.logDir, ec);
  if (ec) {
    return Error(ErrorCode::kNotFound, "cannot read the kubelet's container log links in " +
                                           k.logDir + " (" + ec.message() +
                                           "): is this a Kubernetes node? (logDir: names another)");
  }
  std::map<std::string, PodLogLink> byId;
  for (const auto& entry : it) {
    auto link = parsePodLogLink(entry.path().filename().string());
    if (!link || link->ns != k.ns) continue;
    if (::fnmatch(k.pod.c_str(), link->pod.c_str(), 0) != 0) continue;
    if (!k.container.empty() && link->container != k.container) continue;
    byId[link->id] = std::move(*link);
  }
  ContainerSpec byCgroup;
  byCgroup.runtime = spec.runtime;
  std::vector<ContainerMatch> out;
  for (auto& m : scanCgroups(byCgroup, procRoot)) {
    auto link = byId.find(m.id);
    if (link == byId.end()) continue;
    m.name = link->second.container;
    m.pod = link->second.ns + "/" + link->second.pod;
    m.foundBy = "kubelet log link " + link->second.pod + "_" + link->second.ns + "_" +
                link->second.container + "-" + m.shortId() + "....log in " + k.logDir + ", " +
                m.foundBy;
    out.push_back(std::move(m));
  }
  return out;
}

void completeFromProc(ContainerMatch& m, const std::string& procRoot) {
  if (m.startTime == 0) {
    if (auto st = readStartTime(m.pid, procRoot)) m.startTime = *st;
  }
  if (auto cg = cgroup2PathOfPid(m.pid, procRoot)) {
    // Only a group of the container's own: on hybrid machines a runtime may leave it in its
    // caller's v2 group, which is not the container's.
    if (cg->find(m.id) != std::string::npos) m.cgroup = *cg;
  }
}

}  // namespace

nlohmann::json ContainerMatch::toJson() const {
  nlohmann::json j{{"id", id},
                   {"name", name},
                   {"runtime", std::string(containerRuntimeName(runtime))},
                   {"pid", pid},
                   {"foundBy", foundBy}};
  if (!pod.empty()) j["pod"] = pod;
  if (!cgroup.empty()) j["cgroup"] = cgroup;
  if (!labels.empty()) j["labels"] = labels;
  return j;
}

std::vector<std::string> containerSockets(const ContainerSpec& spec) {
  if (!spec.socket.empty()) return {spec.socket};
  switch (spec.runtime) {
    case ContainerRuntime::kPodman:
      return {"/run/podman/podman.sock"};
    case ContainerRuntime::kDocker:
      return {"/run/docker.sock", "/var/run/docker.sock"};
    case ContainerRuntime::kAuto:
      return {"/run/podman/podman.sock", "/run/docker.sock", "/var/run/docker.sock"};
    case ContainerRuntime::kContainerd:
    case ContainerRuntime::kCrio:
      return {};
  }
  return {};
}

std::string describeContainerSpec(const ContainerSpec& spec) {
  std::string s;
  auto add = [&s](const std::string& what) { s += (s.empty() ? "" : " AND ") + what; };
  if (!spec.id.empty()) add("id=" + spec.id + "...");
  if (!spec.name.empty()) add("name=" + spec.name);
  for (const auto& [k, v] : spec.labels) add("label " + k + "=" + v);
  if (!spec.pod.empty()) add("pod=" + spec.pod);
  if (spec.kubernetes) {
    const auto& k = *spec.kubernetes;
    add("kubernetes pod " + k.ns + "/" + k.pod +
        (k.container.empty() ? std::string() : " container " + k.container));
  }
  return "container " + s + " (" + std::string(containerRuntimeName(spec.runtime)) + ")";
}

Result<std::vector<ContainerMatch>> findContainers(const ContainerSpec& spec,
                                                   const ContainerSources& sources) {
  std::vector<ContainerMatch> all;
  std::string tried;
  bool viaApi = false;
  if (spec.kubernetes) {
    auto found = findKubernetes(spec, sources.procRoot);
    if (!found) return std::move(found).error();
    all = std::move(*found);
    viaApi = true;  // selected already: no socket, no cgroup scan again
  }
  for (const auto& socket : viaApi ? std::vector<std::string>{} : containerSockets(spec)) {
    if (sources.api == nullptr) break;
    Result<std::vector<ContainerMatch>> listed = spec.runtime == ContainerRuntime::kDocker
                                                     ? listDocker(*sources.api, socket, spec)
                                                     : listLibpod(*sources.api, socket);
    if (!listed && listed.error().code() == ErrorCode::kUnsupported &&
        spec.runtime != ContainerRuntime::kPodman) {
      listed = listDocker(*sources.api, socket, spec);  // a Docker daemon: no libpod routes
    }
    if (!listed) {
      if (listed.error().code() == ErrorCode::kNotFound && !spec.socket.empty()) {
        return Error(ErrorCode::kNotFound, listed.error().message());
      }
      if (listed.error().code() == ErrorCode::kNotFound) {
        tried += (tried.empty() ? "" : ", ") + socket;
        continue;
      }
      return std::move(listed).error().withContext("listing containers");
    }
    all = std::move(*listed);
    viaApi = true;
    break;
  }
  if (!viaApi) {
    if (!spec.name.empty() || !spec.labels.empty() || !spec.pod.empty()) {
      return Error(ErrorCode::kNotFound,
                   "a container is found by name, label or pod through its runtime's API, and "
                   "no API socket answered" +
                       (tried.empty() ? std::string() : " (tried " + tried + ")") +
                       "; start it (podman system service, or the podman.socket unit), give "
                       "socket:, or select by id: (found through cgroups)");
    }
    all = scanCgroups(spec, sources.procRoot);
  }
  std::vector<ContainerMatch> out;
  for (auto& m : all) {
    if (m.pid <= 0 || (!spec.kubernetes && !specMatches(spec, m))) continue;
    completeFromProc(m, sources.procRoot);
    // The runtime still names an init that has exited (podman's state lags a restart by a few
    // milliseconds): the container is not running now, whatever the API says.
    if (m.startTime == 0) continue;
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const ContainerMatch& a, const ContainerMatch& b) { return a.pid < b.pid; });
  return out;
}

Result<ContainerMatch> findContainerAgain(const ContainerSpec& spec, const ContainerMatch& before,
                                          const ContainerSources& sources) {
  if (spec.kubernetes) {
    // The same pod's same container: a restart gives it a new id (and a new log link).
    ContainerSpec again = spec;
    again.kubernetes->pod = before.pod.substr(before.pod.find('/') + 1);
    again.kubernetes->container = before.name;
    auto found = findContainers(again, sources);
    if (!found) return std::move(found).error();
    for (const auto& m : *found) {
      if (m.id == before.id) return m;
    }
    if (found->empty()) {
      return Error(ErrorCode::kNotFound, "container " + before.name + " of pod " + before.pod +
                                             " (" + before.shortId() + ") no longer runs");
    }
    return found->front();
  }
  ContainerSpec again = spec;
  again.id = before.id;
  again.labels.clear();
  again.pod.clear();
  again.name.clear();
  ContainerSources through = sources;
  if (before.foundBy.starts_with("cgroup")) through.api = nullptr;  // cgroups again
  auto found = findContainers(again, through);
  if (!found) return std::move(found).error();
  if (found->empty() && !spec.name.empty() && through.api != nullptr) {
    // Re-created under the same name (a new id): that one is the container now.
    again.id.clear();
    again.name = spec.name;
    found = findContainers(again, through);
    if (!found) return std::move(found).error();
  }
  if (found->empty()) {
    return Error(ErrorCode::kNotFound,
                 "container " + before.name + " (" + before.shortId() + ") no longer runs");
  }
  return found->front();
}

}  // namespace chaosd
