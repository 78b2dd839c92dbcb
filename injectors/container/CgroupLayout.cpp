#include "injectors/container/CgroupLayout.h"

#include <algorithm>
#include <vector>

namespace chaosd {
namespace {

bool isHexId(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

struct ScopePrefix {
  std::string_view prefix;
  ContainerRuntime runtime;
};

// Prefixes of a systemd scope (or a podman cgroupfs folder) followed by the id.
constexpr ScopePrefix kPrefixes[] = {
    {"libpod-", ContainerRuntime::kPodman},
    {"docker-", ContainerRuntime::kDocker},
    {"cri-containerd-", ContainerRuntime::kContainerd},
    {"crio-", ContainerRuntime::kCrio},
};

std::optional<CgroupContainer> fromComponent(std::string_view parent, std::string_view c,
                                             bool underKubepods) {
  std::string_view name = c;
  const bool scope = name.ends_with(".scope");
  if (scope) name.remove_suffix(6);
  for (const auto& p : kPrefixes) {
    if (!name.starts_with(p.prefix)) continue;
    std::string_view id = name.substr(p.prefix.size());
    if (!isHexId(id)) continue;  // libpod-conmon-<id>, crio-conmon-<id>: the monitors
    return CgroupContainer{p.runtime, std::string(id), scope ? "systemd" : "cgroupfs",
                           std::string(c)};
  }
  if (!scope && isHexId(name)) {
    if (parent == "docker") {
      return CgroupContainer{ContainerRuntime::kDocker, std::string(name), "cgroupfs",
                             "/docker/" + std::string(name)};
    }
    if (underKubepods) {
      return CgroupContainer{ContainerRuntime::kAuto, std::string(name), "cgroupfs",
                             "/kubepods/.../" + std::string(name)};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<CgroupContainer> containerOfCgroup(std::string_view path) {
  const auto parts = components(path);
  std::optional<CgroupContainer> found;
  bool kubepods = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    kubepods = kubepods || parts[i].starts_with("kubepods");
    if (auto c = fromComponent(i == 0 ? std::string_view() : parts[i - 1], parts[i], kubepods)) {
      // The innermost container wins: a container nested in another is that one.
      found = std::move(c);
    }
  }
  return found;
}

std::optional<CgroupContainer> containerOfCgroupFile(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(i, end - i);
    i = end + 1;
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    if (auto c = containerOfCgroup(line.substr(b + 1))) return c;
  }
  return std::nullopt;
}

}  // namespace chaosd
