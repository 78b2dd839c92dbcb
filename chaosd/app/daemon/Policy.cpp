#include "chaosd/app/daemon/Policy.h"

#include <fnmatch.h>
#include <grp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "chaosd/base/Units.h"
#include "chaosd/base/Users.h"

namespace chaosd::daemon {
namespace {

int lineOf(const YAML::Node& n) { return n.Mark().line + 1; }

Error policyError(const std::string& path, const YAML::Node& n, const std::string& what) {
  return Error(ErrorCode::kInvalid, path + ":" + std::to_string(lineOf(n)) + ": " + what);
}

Result<std::vector<std::string>> stringList(const std::string& path, const YAML::Node& n,
                                            const std::string& field) {
  std::vector<std::string> out;
  if (!n) return out;
  if (n.IsScalar()) return std::vector<std::string>{n.as<std::string>()};
  if (!n.IsSequence()) return policyError(path, n, field + ": expected a list of strings");
  for (const auto& item : n) {
    if (!item.IsScalar()) return policyError(path, item, field + ": expected a string");
    out.push_back(item.as<std::string>());
  }
  return out;
}

Result<gid_t> gidByName(const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
    return static_cast<gid_t>(std::stoul(name));
  }
  struct group gr {};
  struct group* found = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->gr_gid;
  }
  return Error(ErrorCode::kNotFound, "no group '" + name + "'");
}

std::string trimSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string canonicalPath(const std::string& p) {
  std::error_code ec;
  auto c = std::filesystem::weakly_canonical(p, ec);
  return trimSlash(ec ? p : c.string());
}

bool under(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return !path.empty() && path.front() == '/';
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

const std::set<std::string> kGrantFields = {"name",    "users",       "groups",    "faults",
                                            "targets", "maxDuration", "maxTargets"};
const std::set<std::string> kTargetFields = {"cgroups",    "processUsers", "interfaces", "paths",
                                             "containers", "kubernetes",   "host"};

Result<void> checkFields(const std::string& path, const YAML::Node& map,
                         const std::set<std::string>& known, const std::string& where) {
  for (const auto& kv : map) {
    const auto key = kv.first.as<std::string>();
    if (!known.contains(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return policyError(path, kv.first,
                         where + ": unknown field '" + key + "' (known: " + list + ")");
    }
  }
  return success();
}

Result<PolicyGrant> parseGrant(const std::string& path, const YAML::Node& g, size_t index) {
  if (!g.IsMap())
    return policyError(path, g, "grants[" + std::to_string(index) + "]: expected a map");
  PolicyGrant grant;
  grant.line = lineOf(g);
  const std::string where = "grants[" + std::to_string(index) + "]";
  CHAOSD_TRY(checkFields(path, g, kGrantFields, where));
  grant.name = g["name"] ? g["name"].as<std::string>() : "grant " + std::to_string(index + 1);
  auto users = stringList(path, g["users"], where + ".users");
  if (!users) return std::move(users).error();
  for (const auto& u : *users) {
    if (auto uid = parseUid(u)) {
      grant.uids.push_back(*uid);
    } else {
      grant.userNames.push_back(u);
      if (auto resolved = uidByName(u)) grant.uids.push_back(*resolved);
    }
  }
  auto groups = stringList(path, g["groups"], where + ".groups");
  if (!groups) return std::move(groups).error();
  for (const auto& name : *groups) {
    auto gid = gidByName(name);
    if (!gid) return policyError(path, g["groups"], where + ".groups: " + gid.error().message());
    grant.gids.push_back(*gid);
  }
  if (grant.uids.empty() && grant.userNames.empty() && grant.gids.empty()) {
    return policyError(path, g, where + ": names no users and no groups");
  }
  auto faults = stringList(path, g["faults"], where + ".faults");
  if (!faults) return std::move(faults).error();
  grant.faults = std::move(*faults);
  if (const auto t = g["targets"]) {
    if (!t.IsMap()) return policyError(path, t, where + ".targets: expected a map");
    CHAOSD_TRY(checkFields(path, t, kTargetFields, where + ".targets"));
    auto cgroups = stringList(path, t["cgroups"], where + ".targets.cgroups");
    if (!cgroups) return std::move(cgroups).error();
    for (const auto& c : *cgroups) {
      if (c.empty() || c.front() != '/') {
        return policyError(
            path, t["cgroups"],
            where + ".targets.cgroups: '" + c + "' is not a path from the cgroup2 root");
      }
      grant.cgroups.push_back(trimSlash(c));
    }
    auto pusers = stringList(path, t["processUsers"], where + ".targets.processUsers");
    if (!pusers) return std::move(pusers).error();
    for (const auto& u : *pusers) {
      auto uid = resolveUser(u);
      if (!uid)
        return policyError(path, t["processUsers"],
                           where + ".targets.processUsers: no user '" + u + "'");
      grant.processUids.push_back(*uid);
    }
    auto ifs = stringList(path, t["interfaces"], where + ".targets.interfaces");
    if (!ifs) return std::move(ifs).error();
    for (const auto& i : *ifs) {
      if (i.find('/') == std::string::npos) {
        return policyError(
            path, t["interfaces"],
            where + ".targets.interfaces: '" + i + "' is not NETNS/IFNAME (host/eth0, app/*)");
      }
      grant.interfaces.push_back(i);
    }
    auto paths = stringList(path, t["paths"], where + ".targets.paths");
    if (!paths) return std::move(paths).error();
    for (const auto& p : *paths) {
      if (p.empty() || p.front() != '/') {
        return policyError(path, t["paths"], where + ".targets.paths: '" + p + "' is not absolute");
      }
      grant.paths.push_back(canonicalPath(p));
    }
    auto containers = stringList(path, t["containers"], where + ".targets.containers");
    if (!containers) return std::move(containers).error();
    grant.containers = std::move(*containers);
    auto pods = stringList(path, t["kubernetes"], where + ".targets.kubernetes");
    if (!pods) return std::move(pods).error();
    for (const auto& k : *pods) {
      if (k.find('/') == std::string::npos || k.front() == '/' || k.back() == '/') {
        return policyError(
            path, t["kubernetes"],
            where + ".targets.kubernetes: '" + k + "' is not NAMESPACE/POD (shop/*, shop/web-*)");
      }
      grant.kubernetes.push_back(k);
    }
    if (t["host"]) {
      if (!t["host"].IsScalar() ||
          (t["host"].as<std::string>() != "true" && t["host"].as<std::string>() != "false")) {
        return policyError(path, t["host"], where + ".targets.host: expected true or false");
      }
      grant.host = t["host"].as<std::string>() == "true";
    }
  }
  if (const auto d = g["maxDuration"]) {
    auto parsed = units::parseDuration(d.as<std::string>());
    if (!parsed) return policyError(path, d, where + ".maxDuration: " + parsed.error().message());
    grant.maxDuration = *parsed;
  }
  if (const auto m = g["maxTargets"]) {
    try {
      const long v = std::stol(m.as<std::string>());
      if (v < 1 || v > 1000000) throw std::out_of_range("maxTargets");
      grant.maxTargets = static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      return policyError(path, m, where + ".maxTargets: expected a number 1..1000000");
    }
  }
  return grant;
}

bool faultTypeAllowed(const PolicyGrant& g, const std::string& type) {
  for (const auto& f : g.faults) {
    if (f == "*" || f == type) return true;
    if (f.size() > 2 && f.ends_with(".*") && type.starts_with(f.substr(0, f.size() - 1))) {
      return true;
    }
  }
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return "[" + out + "]";
}

// Why the grant does not allow the target; "" when it does.
std::string targetRefusal(const PolicyGrant& g, const TargetSpec* t) {
  if (t == nullptr) {
    return g.host ? "" : "the step has no target (host-wide) and the grant has no 'host: true'";
  }
  switch (t->kind) {
    case TargetKind::kExec:
      return "";  // the run's own process, started as the caller
    case TargetKind::kProcess: {
      const auto& s = t->process;
      if (!s.cgroup.empty()) {
        const std::string cg = trimSlash(s.cgroup);
        for (const auto& allowed : g.cgroups) {
          if (under(cg, allowed)) return "";
        }
      }
      if (!s.user.empty()) {
        if (auto uid = resolveUser(s.user)) {
          if (std::find(g.processUids.begin(), g.processUids.end(), *uid) != g.processUids.end()) {
            return "";
          }
        }
      }
      return "process target '" + t->name + "' is not confined to a granted cgroup " +
             joined(g.cgroups) +
             " or process user (its selector needs cgroup: or user: within them)";
    }
    case TargetKind::kInterface: {
      const auto& ns = t->interface.netns;
      if (!ns.path.empty() || ns.pid) {
        return "interface target '" + t->name +
               "' names its namespace by path or pid; grants "
               "name namespaces by /run/netns name";
      }
      const std::string nsName = ns.isHost() ? "host" : ns.name;
      for (const auto& allowed : g.interfaces) {
        const auto slash = allowed.find('/');
        const std::string ans = allowed.substr(0, slash);
        const std::string aif = allowed.substr(slash + 1);
        if (ans == nsName && (aif == "*" || aif == t->interface.name)) return "";
      }
      return "interface target '" + t->name + "' (" + nsName + "/" + t->interface.name +
             ") is not among the granted interfaces " + joined(g.interfaces);
    }
    case TargetKind::kPath: {
      const std::string p = canonicalPath(t->path);
      for (const auto& allowed : g.paths) {
        if (under(p, allowed)) return "";
      }
      return "path target '" + t->name + "' (" + p + ") is not under the granted paths " +
             joined(g.paths);
    }
    case TargetKind::kContainer: {
      const auto& c = t->container;
      // Where the container is looked up must be the system's: an API socket or a log-link
      // folder of the caller's own could name any process as the granted container.
      if (!c.socket.empty()) {
        return "container target '" + t->name + "' names its API socket (" + c.socket +
               "); callers that are not root use the runtime's own";
      }
      if (c.kubernetes && c.kubernetes->logDir != KubernetesPodSpec{}.logDir) {
        return "container target '" + t->name + "' names its kubelet log folder (" +
               c.kubernetes->logDir + "); callers that are not root use " +
               KubernetesPodSpec{}.logDir;
      }
      if (c.kubernetes) {
        // The target's pod as written (a glob is covered only by a grant whose glob matches
        // that same text: "shop/*" covers "web-*"; "shop/web-0" does not).
        const std::string pod = c.kubernetes->ns + "/" + c.kubernetes->pod;
        for (const auto& allowed : g.kubernetes) {
          if (::fnmatch(allowed.c_str(), pod.c_str(), FNM_PATHNAME) == 0) return "";
        }
        return "container target '" + t->name + "' (kubernetes pod " + pod +
               ") is not among the granted pods " + joined(g.kubernetes);
      }
      if (!c.name.empty()) {
        for (const auto& allowed : g.containers) {
          if (::fnmatch(allowed.c_str(), c.name.c_str(), 0) == 0) return "";
        }
        return "container target '" + t->name + "' (name " + c.name +
               ") is not among the granted containers " + joined(g.containers);
      }
      return "container target '" + t->name +
             "' is not selected by name or kubernetes pod; grants name containers by those "
             "(an id, labels or a podman pod alone are not confined)";
    }
  }
  return "target '" + t->name + "' is of a kind no grant covers";
}

bool grantMatches(const PolicyGrant& g, const Credentials& who) {
  if (std::find(g.uids.begin(), g.uids.end(), who.uid) != g.uids.end()) return true;
  if (!who.user.empty() &&
      std::find(g.userNames.begin(), g.userNames.end(), who.user) != g.userNames.end()) {
    return true;
  }
  for (gid_t gid : g.gids) {
    if (gid == who.gid) return true;
    if (std::find(who.groups.begin(), who.groups.end(), gid) != who.groups.end()) return true;
  }
  return false;
}

void faultSteps(const std::vector<StepSpec>& steps, std::vector<const StepSpec*>& out) {
  for (const auto& s : steps) {
    if (s.kind == StepKind::kFault) out.push_back(&s);
    if (s.kind == StepKind::kParallel) faultSteps(s.parallel, out);
  }
}

std::string where(const Policy& p, const PolicyGrant& g) {
  return "grant '" + g.name + "' (" + (p.path.empty() ? "policy" : p.path) + ":" +
         std::to_string(g.line) + ")";
}

}  // namespace

Result<Policy> parsePolicy(const std::string& text, const std::string& path) {
  Policy policy;
  policy.path = path;
  policy.loaded = true;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalid, path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root || root.IsNull()) return policy;
  if (!root.IsMap()) return policyError(path, root, "expected a map with 'grants:'");
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (key != "grants" && key != "apiVersion") {
      return policyError(path, kv.first, "unknown field '" + key + "' (known: apiVersion, grants)");
    }
  }
  const auto grants = root["grants"];
  if (!grants) return policy;
  if (!grants.IsSequence()) return policyError(path, grants, "grants: expected a list");
  size_t i = 0;
  for (const auto& g : grants) {
    try {
      auto grant = parseGrant(path, g, i++);
      if (!grant) return std::move(grant).error();
      policy.grants.push_back(std::move(*grant));
    } catch (const YAML::Exception& e) {
      return Error(ErrorCode::kInvalid,
                   path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
  }
  return policy;
}

Result<Policy> loadPolicy(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) {
      Policy empty;
      empty.path = path;
      return empty;
    }
    return Error::fromErrno("read policy " + path, errno);
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parsePolicy(text, path);
}

bool hasGrant(const Policy& policy, const Credentials& who) {
  if (who.isRoot()) return true;
  return std::any_of(policy.grants.begin(), policy.grants.end(),
                     [&](const PolicyGrant& g) { return grantMatches(g, who); });
}

PolicyDecision checkExperiment(const Policy& policy, const Credentials& who,
                               const Experiment& experiment) {
  PolicyDecision d;
  if (who.isRoot()) {
    d.allowed = true;
    return d;
  }
  std::vector<const PolicyGrant*> mine;
  for (const auto& g : policy.grants) {
    if (grantMatches(g, who)) mine.push_back(&g);
  }
  const std::string file = policy.path.empty() ? "the policy" : policy.path;
  if (mine.empty()) {
    d.reason = who.describe() + " has no grant in " + file +
               (policy.loaded ? "" : " (there is no such file)") +
               ": callers other than root may only read (list, status, reports) until a grant "
               "names their user or group";
    return d;
  }
  std::vector<const StepSpec*> steps;
  faultSteps(experiment.method, steps);
  std::set<const PolicyGrant*> used;
  for (const StepSpec* step : steps) {
    const TargetSpec* target = nullptr;
    for (const auto& t : experiment.targets) {
      if (t.name == step->target) target = &t;
    }
    std::vector<std::string> why;
    const PolicyGrant* allowing = nullptr;
    for (const PolicyGrant* g : mine) {
      if (!faultTypeAllowed(*g, step->fault)) {
        why.push_back(where(policy, *g) + " allows fault types " + joined(g->faults) + " only");
        continue;
      }
      if (auto no = targetRefusal(*g, target); !no.empty()) {
        why.push_back(where(policy, *g) + ": " + no);
        continue;
      }
      if (g->maxDuration && step->duration && *step->duration > *g->maxDuration) {
        why.push_back(where(policy, *g) + " allows at most " +
                      units::formatDuration(*g->maxDuration) + " per fault, the step holds it " +
                      units::formatDuration(*step->duration));
        continue;
      }
      allowing = g;
      break;
    }
    if (allowing == nullptr) {
      d.reason = "step '" + step->name + "' (" + experiment.file + ":" +
                 std::to_string(step->pos.line) + ", " + step->fault +
                 (target ? " on target '" + target->name + "'" : " without a target") +
                 ") is not allowed for " + who.describe() + ": ";
      for (size_t i = 0; i < why.size(); ++i) d.reason += (i ? "; " : "") + why[i];
      return d;
    }
    used.insert(allowing);
  }
  d.allowed = true;
  for (const PolicyGrant* g : used) {
    d.grantsUsed.push_back(where(policy, *g));
    if (g->maxTargets)
      d.maxTargets = std::min(d.maxTargets.value_or(*g->maxTargets), *g->maxTargets);
    if (g->maxDuration) {
      d.maxDuration = std::min(d.maxDuration.value_or(*g->maxDuration), *g->maxDuration);
    }
  }
  return d;
}

Result<void> PolicyStore::reload() {
  auto loaded = loadPolicy(path_);
  if (!loaded) return std::move(loaded).error();
  set(std::move(*loaded));
  return success();
}

std::shared_ptr<const Policy> PolicyStore::current() const {
  std::lock_guard lock(mu_);
  return policy_;
}

void PolicyStore::set(Policy policy) {
  auto next = std::make_shared<const Policy>(std::move(policy));
  std::lock_guard lock(mu_);
  policy_ = std::move(next);
}

}  // namespace chaosd::daemon
