#include "injectors/process/TargetResolution.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Units.h"
#include "chaosd/base/Users.h"
#include "injectors/container/ContainerApi.h"
#include "injectors/container/ContainerFinder.h"
#include "injectors/container/ContainerView.h"
#include "injectors/process/ExecTarget.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/process/Selection.h"

namespace chaosd {
namespace {

std::string processLine(const ProcessInfo& p) {
  std::string line = std::to_string(p.pid) + " (" + p.comm + ")";
  if (!p.commandLine.empty()) {
    line += " " + (p.commandLine.size() > 60 ? p.commandLine.substr(0, 57) + "..." : p.commandLine);
  }
  return line;
}

std::string modeText(const Selection& s) {
  switch (s.mode) {
    case SelectionMode::kAll:
      return "all";
    case SelectionMode::kOne:
      return "one";
    case SelectionMode::kCount:
      return "count(" + std::to_string(s.count) + ")";
    case SelectionMode::kPercent:
      return "percent(" + units::formatPercent(s.fraction) + ")";
  }
  return "";
}

void resolveProcess(const TargetSpec& t, const Guardrails& g, const ResolveContext& ctx,
                    ResolvedTarget& out) {
  if (!ctx.processes) {
    out.problems.push_back("the process table could not be read");
    return;
  }
  MatchContext mc;
  mc.uidByName = [](std::string_view name) { return uidByName(name); };
  auto matched = ctx.processes->match(t.process, mc);
  if (!matched) {
    out.problems.push_back(matched.error().describe());
    return;
  }
  out.matched = *matched;
  // The same rules as the fault's prepare(): protected processes (guardians included) and
  // zombies are never eligible, so the plan shows what the run would really hit.
  Candidates candidates = eligibleAmong(*ctx.processes, *matched, ctx.protection);
  for (const auto& why : candidates.refused) out.problems.push_back("refused: " + why);
  std::vector<ProcessInfo> eligible = std::move(candidates.eligible);
  if (eligible.empty()) {
    std::string msg = "no process matches " + out.selector;
    if (t.emptySkip) {
      out.details.push_back(msg + " (empty: skip — the fault would be skipped)");
      out.usable = true;
    } else {
      out.problems.push_back(msg);
    }
    return;
  }
  out.usable = true;
  size_t n = selectionSize(t.selection, eligible.size());
  if (t.selection.mode == SelectionMode::kAll || n == eligible.size()) {
    out.selected = eligible;
  } else if (t.selection.seed) {
    out.seed = t.selection.seed;
    out.selected = selectProcesses(eligible, t.selection, *t.selection.seed);
  }
  out.details.push_back(
      std::to_string(eligible.size()) + " eligible process(es) match; mode " +
      modeText(t.selection) + " would hit " + std::to_string(n) +
      (out.selected.empty() ? " (chosen at run time; the seed is recorded)" : ""));
  for (const auto& p : eligible) {
    bool hit = std::any_of(out.selected.begin(), out.selected.end(),
                           [&](const ProcessInfo& s) { return s.pid == p.pid; });
    out.details.push_back((hit ? "  * " : "    ") + processLine(p));
  }
  if (n > g.maxTargets) {
    out.problems.push_back("would hit " + std::to_string(n) + " processes, over guardrails." +
                           "maxTargets " + std::to_string(g.maxTargets));
    out.usable = false;
  }
}

void resolveExec(const TargetSpec& t, ResolvedTarget& out) {
  const std::string program = t.exec.argv.empty() ? std::string() : t.exec.argv.front();
  auto found = findExecutable(program);
  if (!found) {
    out.problems.push_back(found.error().message());
    return;
  }
  out.usable = true;
  out.details.push_back("started by the experiment and stopped at its end: " + *found);
}

void resolveInterface(const TargetSpec& t, ResolvedTarget& out) {
  auto list = listInterfaces(t.interface.netns);
  if (!list) {
    out.problems.push_back(t.interface.netns.describe() + ": " + list.error().describe());
    return;
  }
  for (const auto& i : *list) {
    if (i.name != t.interface.name) continue;
    out.usable = true;
    std::string line = "interface " + i.name + " (ifindex " + std::to_string(i.ifindex) + ", " +
                       (i.up ? "up" : "down") + ") in " + t.interface.netns.describe();
    for (const auto& a : i.addresses) line += " " + a;
    out.details.push_back(line);
    return;
  }
  std::string names;
  for (const auto& i : *list) names += (names.empty() ? "" : ", ") + i.name;
  out.problems.push_back("no interface '" + t.interface.name + "' in " +
                         t.interface.netns.describe() + " (present: " + names + ")");
}

void resolvePath(const TargetSpec& t, ResolvedTarget& out) {
  struct stat st {};
  if (::stat(t.path.c_str(), &st) != 0) {
    out.problems.push_back("'" + t.path + "' does not exist: " + std::strerror(errno));
    return;
  }
  struct statvfs vfs {};
  if (::statvfs(t.path.c_str(), &vfs) != 0) {
    out.problems.push_back("statvfs '" + t.path + "': " + std::strerror(errno));
    return;
  }
  out.usable = true;
  uint64_t total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  uint64_t used = static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  double usage =
      used + avail == 0 ? 0 : static_cast<double>(used) / static_cast<double>(used + avail);
  out.details.push_back(std::string(S_ISDIR(st.st_mode) ? "directory" : "file") + " " + t.path +
                        ": filesystem " + units::formatSize(total) + ", " +
                        units::formatSize(avail) + " available, " + units::formatPercent(usage) +
                        " used (df's use%)");
}

// The containers that match, which the mode picks, how each was found, and what each fault
// family would see of the one picked.
void resolveContainer(const TargetSpec& t, const Guardrails& g, const ResolveContext& ctx,
                      ResolvedTarget& out) {
  std::unique_ptr<ContainerApi> own;
  ContainerSources sources;
  sources.api = ctx.containers;
  if (sources.api == nullptr) {
    own = makeCurlContainerApi();
    sources.api = own.get();
  }
  auto found = findContainers(t.container, sources);
  if (!found) {
    out.problems.push_back(found.error().describe());
    return;
  }
  out.containers = nlohmann::json::array();
  if (found->empty()) {
    if (t.emptySkip) {
      out.details.push_back("no running container matches " + out.selector +
                            " (empty: skip — its faults would be skipped)");
      out.usable = true;
    } else {
      out.problems.push_back("no running container matches " + out.selector);
    }
    return;
  }
  ContainerChoice choice = chooseContainers(t, std::move(*found), t.selection.seed.value_or(0));
  const bool chosenLater = !t.selection.seed && choice.selected.size() < choice.matched.size();
  out.seed = t.selection.seed;
  out.details.push_back(std::to_string(choice.matched.size()) +
                        " running container(s) match; mode " + modeText(t.selection) +
                        " would hit " +
                        std::to_string(selectionSize(t.selection, choice.matched.size())) +
                        (chosenLater ? " (chosen at run time; the seed is recorded)" : ""));
  for (const auto& c : choice.matched) {
    const bool hit =
        !chosenLater && std::any_of(choice.selected.begin(), choice.selected.end(),
                                    [&](const ContainerMatch& s) { return s.id == c.id; });
    nlohmann::json j = c.toJson();
    j["selected"] = hit;
    out.containers.push_back(j);
    out.details.push_back((hit ? "  * " : "    ") + c.name + " " + c.shortId() + " pid " +
                          std::to_string(c.pid) + (c.pod.empty() ? "" : " pod " + c.pod) +
                          ", found by " + c.foundBy);
  }
  if (chosenLater) {
    out.usable = true;
    return;
  }
  out.usable = true;
  if (choice.selected.size() > 1) {  // only faults that signal take several: ContainerView.h
    if (auto v = containersView(t, choice.selected, TargetKind::kProcess)) {
      ResolvedTarget procs;
      procs.selector = describeSelector(*v);
      resolveProcess(*v, g, ctx, procs);
      out.details.push_back("process faults: " + procs.selector +
                            (t.container.init == ContainerInit::kProtect
                                 ? " (each container's init protected)"
                                 : ""));
      for (const auto& d : procs.details) out.details.push_back("process faults: " + d);
      for (const auto& p : procs.problems) out.details.push_back("process faults: " + p);
    } else {
      out.details.push_back("process faults: " + v.error().describe());
    }
    if (auto v = containersView(t, choice.selected, TargetKind::kInterface)) {
      ResolvedTarget iface;
      resolveInterface(*v, iface);
      for (const auto& d : iface.details) out.details.push_back("network faults: " + d);
      for (const auto& p : iface.problems) out.details.push_back("network faults: " + p);
    } else {
      out.details.push_back("network faults: " + v.error().describe());
    }
    if (!t.container.path.empty()) {
      out.details.push_back(
          "disk faults: " +
          containersView(t, choice.selected, TargetKind::kPath).error().describe());
    }
    if (ctx.experiment == nullptr || ctx.catalog == nullptr) return;
    // The steps on this target that cannot take several: refused before any fault.
    std::vector<const StepSpec*> steps;
    for (const auto& s : ctx.experiment->method) {
      steps.push_back(&s);
      for (const auto& p : s.parallel) steps.push_back(&p);
    }
    for (const StepSpec* s : steps) {
      if (s->kind != StepKind::kFault || s->target != t.name) continue;
      const FaultTypeInfo* info = ctx.catalog->find(s->fault);
      auto kind = info ? containerViewKind(info->targetKinds) : std::nullopt;
      if (!kind) continue;  // the parser refused it already
      auto v = containersView(t, choice.selected, *kind, s->fault.starts_with("process."));
      if (!v)
        out.problems.push_back("step " + s->name + " (" + s->fault + "): " + v.error().describe());
    }
    if (!out.problems.empty()) out.usable = false;
    return;
  }
  auto one = oneContainer(t, choice);
  if (!one) {
    out.problems.push_back(one.error().describe());
    return;
  }
  // What each family would act on.
  if (auto v = containerView(t, *one, TargetKind::kInterface)) {
    ResolvedTarget iface;
    resolveInterface(*v, iface);
    for (const auto& d : iface.details) out.details.push_back("network faults: " + d);
    for (const auto& p : iface.problems) out.details.push_back("network faults: " + p);
  }
  if (!t.container.path.empty()) {
    if (auto v = containerView(t, *one, TargetKind::kPath)) {
      ResolvedTarget path;
      resolvePath(*v, path);
      for (const auto& d : path.details) out.details.push_back("disk faults: " + d);
      for (const auto& p : path.problems) out.details.push_back("disk faults: " + p);
    }
  }
  if (auto v = containerView(t, *one, TargetKind::kProcess)) {
    ResolvedTarget procs;
    procs.selector = describeSelector(*v);
    resolveProcess(*v, g, ctx, procs);
    out.details.push_back("process faults: " + procs.selector +
                          (t.container.init == ContainerInit::kProtect
                               ? " (its init " + std::to_string(one->pid) + " protected)"
                               : ""));
    for (const auto& d : procs.details) out.details.push_back("process faults: " + d);
    for (const auto& p : procs.problems) out.details.push_back("process faults: " + p);
  } else {
    out.details.push_back("process faults: " + v.error().describe());
  }
}

}  // namespace

std::string describeSelector(const TargetSpec& t) {
  switch (t.kind) {
    case TargetKind::kProcess: {
      std::string s;
      auto add = [&](const std::string& k, const std::string& v) {
        if (!v.empty()) s += (s.empty() ? "" : " AND ") + k + "=" + v;
      };
      if (t.process.pid) add("pid", std::to_string(*t.process.pid));
      add("name", t.process.name);
      if (!t.process.cmdline.empty()) add("cmdline", "/" + t.process.cmdline + "/");
      std::string groups = t.process.cgroup;
      for (const auto& g : t.process.moreCgroups) groups += "|" + g;
      add("cgroup", groups);
      add("user", t.process.user);
      add("pidFile", t.process.pidFile);
      return "process " + s;
    }
    case TargetKind::kExec: {
      std::string s = "exec";
      for (const auto& a : t.exec.argv) s += " " + a;
      return s;
    }
    case TargetKind::kInterface:
      return "interface " + t.interface.name + " in " + t.interface.netns.describe();
    case TargetKind::kPath:
      return "path " + t.path;
    case TargetKind::kContainer:
      return describeContainerSpec(t.container);
  }
  return "";
}

ResolvedTarget resolveTarget(const TargetSpec& target, const Guardrails& guardrails,
                             const ResolveContext& context) {
  ResolvedTarget out;
  out.name = target.name;
  out.kind = target.kind;
  out.selector = describeSelector(target);
  switch (target.kind) {
    case TargetKind::kProcess:
      resolveProcess(target, guardrails, context, out);
      break;
    case TargetKind::kExec:
      resolveExec(target, out);
      break;
    case TargetKind::kInterface:
      resolveInterface(target, out);
      break;
    case TargetKind::kPath:
      resolvePath(target, out);
      break;
    case TargetKind::kContainer:
      resolveContainer(target, guardrails, context, out);
      break;
  }
  return out;
}

nlohmann::json ResolvedTarget::toJson() const {
  nlohmann::json j{{"name", name},         {"kind", std::string(targetKindName(kind))},
                   {"selector", selector}, {"usable", usable},
                   {"details", details},   {"problems", problems}};
  auto pids = [](const std::vector<ProcessInfo>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& p : v) a.push_back({{"pid", p.pid}, {"comm", p.comm}});
    return a;
  };
  if (kind == TargetKind::kProcess) {
    j["matched"] = pids(matched);
    j["selected"] = pids(selected);
    if (seed) j["seed"] = *seed;
  }
  if (kind == TargetKind::kContainer) {
    j["containers"] = containers.is_null() ? nlohmann::json::array() : containers;
    if (seed) j["seed"] = *seed;
  }
  return j;
}

}  // namespace chaosd
