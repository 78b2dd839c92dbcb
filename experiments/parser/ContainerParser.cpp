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

// A DNS label (RFC 1123), as Kubernetes names namespaces, pods and containers; a pod may also
// be a glob of one (*, ?, [...]).
bool dnsLabelOrGlob(const std::string& s, bool glob) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
  static const std::regex kGlob("[-a-z0-9.*?\\[\\]!]{1,253}");
  return std::regex_match(s, glob ? kGlob : kLabel);
}

void parseKubernetesPod(ReadContext& ctx, const Field& f, ContainerSpec& c) {
  MapReader k(ctx, f, {"namespace", "pod", "container", "logDir"});
  if (!k.valid()) return;
  KubernetesPodSpec pod;
  auto named = [&](const char* key, std::string& into, bool glob, const char* what) {
    auto v = k.string(key);
    if (!v) return;
    if (!dnsLabelOrGlob(*v, glob)) {
      ctx.diag.error(k.get(key)->node.Mark(), joinPath(f.path, key),
                     quoteText(*v) + " is not a Kubernetes " + what,
                     glob ? "lower-case letters, digits, '-' and '.', or a glob of them like web-*"
                          : "lower-case letters, digits, '-' and '.' (a DNS label)");
    }
    into = *v;
  };
  named("namespace", pod.ns, false, "namespace");
  if (!k.has("pod")) {
    ctx.diag.error(f.node.Mark(), f.path, "no pod", "pod: its name, or a glob like web-*");
  }
  named("pod", pod.pod, true, "pod name");
  named("container", pod.container, false, "container name");
  if (auto dir = k.string("logDir")) {
    if (dir->empty() || dir->front() != '/') {
      ctx.diag.error(k.get("logDir")->node.Mark(), joinPath(f.path, "logDir"),
                     quoteText(*dir) + " is not an absolute path",
                     "the kubelet's container log links, /var/log/containers by default");
    }
    pod.logDir = *dir;
  }
  c.kubernetes = std::move(pod);
}

}  // namespace

std::optional<ContainerSpec> parseContainerSpec(ReadContext& ctx, const Field& f) {
  MapReader m(ctx, f,
              {"id", "name", "label", "pod", "kubernetes", "runtime", "socket", "interface", "path",
               "init", "onRestart"});
  if (!m.valid()) return std::nullopt;
  ContainerSpec c;
  if (!m.has("id") && !m.has("name") && !m.has("label") && !m.has("pod") && !m.has("kubernetes")) {
    ctx.diag.error(f.node.Mark(), f.path, "the container selector selects nothing",
                   "at least one of: id, name, label, pod, kubernetes");
    return std::nullopt;
  }
  if (auto k = m.get("kubernetes")) {
    for (const char* other : {"id", "name", "label", "pod", "socket"}) {
      if (!m.has(other)) continue;
      ctx.diag.error(m.get(other)->node.Mark(), joinPath(f.path, other),
                     std::string(other) + " beside kubernetes",
                     "a Kubernetes pod's containers are selected by kubernetes: {namespace, pod, "
                     "container} alone (no labels: they are the API server's, not the node's)");
    }
    parseKubernetesPod(ctx, *k, c);
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
      !c.kubernetes && (!c.name.empty() || !c.labels.empty() || !c.pod.empty())) {
    ctx.diag.error(m.get("runtime")->node.Mark(), joinPath(f.path, "runtime"),
                   std::string(containerRuntimeName(c.runtime)) +
                       " containers are found by their cgroups only, which know no names, "
                       "labels or pods",
                   "id: with runtime " + std::string(containerRuntimeName(c.runtime)) +
                       ", or kubernetes: {namespace, pod, container} on a Kubernetes node");
  }
  return c;
}

}  // namespace chaosd::parser
