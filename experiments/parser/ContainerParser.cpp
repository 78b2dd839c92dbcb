#include <regex>

#include "experiments/parser/Sections.h"

// `container:` targets: which container (id prefix, name, labels, pod), through which runtime,
// and how a fault sees it (its interface, a path inside it, its init).
namespace chaosd::parser {
namespace {

std::optional<ContainerRuntime> runtimeNamed(const std::string& s) {
  for (auto r : {ContainerRuntime::kAuto, ContainerRuntime::kDocker, ContainerRuntime::kPodman,
                 ContainerRuntime::kContainerd, ContainerRuntime::kCrio}) {
    if (s == containerRuntimeName(r)) return r;
  }
  return std::nullopt;
}

void absolute(ReadContext& ctx, MapReader& m, const char* key, const std::string& value,
              const char* example) {
  if (!value.empty() && value.front() != '/') {
    ctx.diag.error(m.get(key)->node.Mark(), joinPath(m.self().path, key),
                   quoteText(value) + " is not an absolute path", example);
  }
}

}  // namespace

std::optional<ContainerSpec> parseContainerSpec(ReadContext& ctx, const Field& f) {
  MapReader m(ctx, f,
              {"id", "name", "label", "pod", "runtime", "socket", "interface", "path", "init",
               "onRestart"});
  if (!m.valid()) return std::nullopt;
  ContainerSpec c;
  if (!m.has("id") && !m.has("name") && !m.has("label") && !m.has("pod")) {
    ctx.diag.error(f.node.Mark(), f.path, "the container selector selects nothing",
                   "at least one of: id, name, label, pod");
    return std::nullopt;
  }
  if (auto id = m.string("id")) {
    static const std::regex kHex("[0-9a-f]{4,64}");
    if (!std::regex_match(*id, kHex)) {
      ctx.diag.error(m.get("id")->node.Mark(), joinPath(f.path, "id"),
                     quoteText(*id) + " is not a container id or a prefix of one",
                     "4 to 64 lower-case hex digits");
    }
    c.id = *id;
  }
  if (auto name = m.string("name")) c.name = *name;
  if (auto label = m.get("label")) c.labels = asStringMap(ctx, *label).value_or(c.labels);
  if (auto pod = m.string("pod")) c.pod = *pod;
  if (auto rt = m.string("runtime")) {
    if (auto r = runtimeNamed(*rt)) {
      c.runtime = *r;
    } else {
      ctx.diag.error(m.get("runtime")->node.Mark(), joinPath(f.path, "runtime"),
                     quoteText(*rt) + " is not a runtime chaosd knows",
                     "auto, docker, podman, containerd or cri-o");
    }
  }
  if (auto sock = m.string("socket")) {
    absolute(ctx, m, "socket", *sock, "the API socket, like /run/podman/podman.sock");
    c.socket = *sock;
  }
  if (auto iface = m.string("interface")) {
    if (iface->size() > 15) {
      ctx.diag.error(m.get("interface")->node.Mark(), joinPath(f.path, "interface"),
                     quoteText(*iface) + " is longer than an interface name can be",
                     "at most 15 characters");
    }
    c.interface = *iface;
  }
  if (auto path = m.string("path")) {
    absolute(ctx, m, "path", *path, "the path as the container sees it, like /var/lib/app");
    c.path = *path;
  }
  if (auto init = m.string("init")) {
    if (*init == "protect") {
      c.init = ContainerInit::kProtect;
    } else if (*init == "include") {
      c.init = ContainerInit::kInclude;
    } else if (*init == "only") {
      c.init = ContainerInit::kOnly;
    } else {
      ctx.diag.error(m.get("init")->node.Mark(), joinPath(f.path, "init"),
                     quoteText(*init) + " is not an init policy",
                     "protect (the default), include or only");
    }
  }
  if (auto on = m.string("onRestart")) {
    if (*on == "follow" || *on == "report") {
      c.followRestart = *on == "follow";
    } else {
      ctx.diag.error(m.get("onRestart")->node.Mark(), joinPath(f.path, "onRestart"),
                     quoteText(*on) + " is not a restart policy", "follow (the default) or report");
    }
  }
  if ((c.runtime == ContainerRuntime::kContainerd || c.runtime == ContainerRuntime::kCrio) &&
      (!c.name.empty() || !c.labels.empty() || !c.pod.empty())) {
    ctx.diag.error(m.get("runtime")->node.Mark(), joinPath(f.path, "runtime"),
                   std::string(containerRuntimeName(c.runtime)) +
                       " containers are found by their cgroups only, which know no names, "
                       "labels or pods",
                   "id: with runtime " + std::string(containerRuntimeName(c.runtime)));
  }
  return c;
}

}  // namespace chaosd::parser
