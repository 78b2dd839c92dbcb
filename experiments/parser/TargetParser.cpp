#include <map>
#include <regex>
#include <set>

#include "experiments/parser/Sections.h"

namespace chaosd::parser {
namespace {

std::optional<NetnsRef> parseNetns(ReadContext& ctx, const Field& f) {
  NetnsRef ns;
  if (f.node.IsScalar()) {
    auto s = asNonEmptyString(ctx, f);
    if (!s) return std::nullopt;
    if (s->front() == '/') {
      ns.path = *s;
    } else if (s->find('/') != std::string::npos) {
      ctx.diag.error(f.node.Mark(), f.path,
                     quoteText(*s) + " is neither a name nor an absolute path",
                     "a name under /run/netns or an absolute path");
      return std::nullopt;
    } else {
      ns.name = *s;
    }
    return ns;
  }
  MapReader m(ctx, f, {"name", "path", "pid"});
  auto which = m.exactlyOne({"name", "path", "pid"}, "the namespace");
  if (!which) return std::nullopt;
  if (*which == "pid") {
    auto pid = m.get("pid");
    auto v = pid ? asInt(ctx, *pid, 1, 4194304) : std::nullopt;
    if (!v) return std::nullopt;
    ns.pid = static_cast<int>(*v);
  } else if (*which == "path") {
    auto p = m.string("path");
    if (!p) return std::nullopt;
    if (p->front() != '/') {
      ctx.diag.error(m.get("path")->node.Mark(), joinPath(f.path, "path"),
                     quoteText(*p) + " is not an absolute path", "a path like /run/netns/app");
      return std::nullopt;
    }
    ns.path = *p;
  } else {
    auto n = m.string("name");
    if (!n) return std::nullopt;
    ns.name = *n;
  }
  return ns;
}

// "all", "one", "count(3)", "percent(50)" or "percent(50%)".
std::optional<Selection> parseMode(ReadContext& ctx, const Field& f, const Guardrails& g) {
  auto s = asNonEmptyString(ctx, f);
  if (!s) return std::nullopt;
  Selection sel;
  static const std::regex kCount(R"(count\((\d{1,9})\))");
  static const std::regex kPercent(R"(percent\((\d{1,3}(\.\d+)?)%?\))");
  std::smatch m;
  const char* expected = "all, one, count(N) or percent(P)";
  if (*s == "all") {
    sel.mode = SelectionMode::kAll;
  } else if (*s == "one") {
    sel.mode = SelectionMode::kOne;
  } else if (std::regex_match(*s, m, kCount)) {
    sel.mode = SelectionMode::kCount;
    sel.count = std::stoull(m[1].str());
    if (sel.count == 0) {
      ctx.diag.error(f.node.Mark(), f.path, "count(0) selects nothing", "count(N) with N >= 1");
      return std::nullopt;
    }
    if (sel.count > g.maxTargets) {
      ctx.diag.error(f.node.Mark(), f.path,
                     "count(" + std::to_string(sel.count) + ") exceeds guardrails.maxTargets " +
                         std::to_string(g.maxTargets),
                     "raise guardrails.maxTargets or select fewer");
      return std::nullopt;
    }
  } else if (std::regex_match(*s, m, kPercent)) {
    sel.mode = SelectionMode::kPercent;
    double p = std::stod(m[1].str());
    if (p <= 0 || p > 100) {
      ctx.diag.error(f.node.Mark(), f.path, "percent(" + m[1].str() + ") is out of range",
                     "percent(P) with 0 < P <= 100");
      return std::nullopt;
    }
    sel.fraction = p / 100.0;
    if (sel.fraction > g.maxPercent + 1e-12) {
      ctx.diag.error(f.node.Mark(), f.path,
                     "percent(" + m[1].str() + ") exceeds guardrails.maxPercent",
                     "raise guardrails.maxPercent or select fewer");
      return std::nullopt;
    }
  } else {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a selection mode", expected);
    return std::nullopt;
  }
  return sel;
}

void parseTarget(ReadContext& ctx, const Field& f, const std::string& name, Experiment& exp) {
  MapReader m(ctx, f,
              {"process", "exec", "interface", "path", "container", "mode", "seed", "empty"});
  if (!m.valid()) return;
  TargetSpec t;
  t.name = name;
  t.pos = posOf(f.node.Mark());
  auto kind =
      m.exactlyOne({"process", "exec", "interface", "path", "container"}, "what the target is");
  auto what = kind ? m.get(*kind) : std::nullopt;  // nullopt also when it has no value
  if (!kind || !what) {
    ctx.brokenTargets.insert(name);
    kind.reset();
  }
  if (kind == "process") {
    t.kind = TargetKind::kProcess;
    if (auto sel = parseProcessSelector(ctx, *what)) t.process = *sel;
  } else if (kind == "exec") {
    t.kind = TargetKind::kExec;
    MapReader e(ctx, *what, {"argv", "env", "cwd", "ready"});
    if (auto argv = e.require("argv", "the program and its arguments: [/usr/bin/app, --flag]")) {
      if (auto list = asStringItems(ctx, *argv)) {
        if (list->empty()) {
          ctx.diag.error(argv->node.Mark(), argv->path, "argv is empty", "[program, args...]");
        } else if (const auto& [program, item] = list->front();
                   program.empty() || program.front() != '/') {
          ctx.diag.error(item.node.Mark(), item.path,
                         quoteText(program) + " is not an absolute path",
                         "the program by absolute path (no PATH lookup, no shell)");
        }
        for (const auto& [arg, item] : *list) t.exec.argv.push_back(arg);
      }
    }
    if (auto env = e.get("env")) {
      t.exec.env = asStringMap(ctx, *env, environmentRules()).value_or(t.exec.env);
    }
    if (auto cwd = e.string("cwd")) {
      if (cwd->front() != '/') {
        ctx.diag.error(e.get("cwd")->node.Mark(), joinPath(e.self().path, "cwd"),
                       quoteText(*cwd) + " is not an absolute path", "an absolute directory");
      }
      t.exec.cwd = *cwd;
    }
    if (auto ready = e.get("ready")) {
      MapReader r(ctx, *ready, {"tcp", "within"});
      if (auto tcp = r.require("tcp", "tcp: {host: 127.0.0.1, port: 8080}")) {
        MapReader a(ctx, *tcp, {"host", "port"});
        t.exec.readyHost = a.string("host", true).value_or("");
        checkConnectHost(ctx, a, t.exec.readyHost);
        if (auto port = a.require("port", "a port 1..65535")) {
          if (auto v = asInt(ctx, *port, 1, 65535)) t.exec.readyPort = static_cast<uint16_t>(*v);
        }
      }
      if (auto within = r.get("within")) {
        t.exec.readyWithin = asDuration(ctx, *within).value_or(t.exec.readyWithin);
      }
    }
  } else if (kind == "interface") {
    t.kind = TargetKind::kInterface;
    Field nameField = *what;  // the scalar form is the name itself
    if (what->node.IsScalar()) {
      t.interface.name = asNonEmptyString(ctx, *what).value_or("");
    } else {
      MapReader i(ctx, *what, {"name", "netns"});
      t.interface.name = i.string("name", true).value_or("");
      if (i.has("name") && i.get("name")) nameField = *i.get("name");
      if (auto ns = i.get("netns")) {
        if (auto ref = parseNetns(ctx, *ns)) t.interface.netns = *ref;
      }
    }
    if (t.interface.name.size() > 15) {
      ctx.diag.error(nameField.node.Mark(), nameField.path,
                     quoteText(t.interface.name) + " is longer than an interface name can be",
                     "at most 15 characters");
    }
  } else if (kind == "container") {
    t.kind = TargetKind::kContainer;
    if (auto c = parseContainerSpec(ctx, *what)) t.container = *c;
  } else if (kind == "path") {
    t.kind = TargetKind::kPath;
    auto p = m.string("path");
    if (p && p->front() != '/') {
      ctx.diag.error(m.get("path")->node.Mark(), joinPath(f.path, "path"),
                     quoteText(*p) + " is not an absolute path",
                     "an absolute path like /var/lib/app");
    } else if (p) {
      t.path = *p;
    }
  }
  const bool selects = t.kind == TargetKind::kProcess || t.kind == TargetKind::kContainer;
  if (auto mode = m.get("mode")) {
    if (!selects) {
      ctx.diag.error(mode->node.Mark(), mode->path,
                     "mode applies to process and container targets only");
    } else if (auto sel = parseMode(ctx, *mode, exp.guardrails)) {
      t.selection.mode = sel->mode;
      t.selection.count = sel->count;
      t.selection.fraction = sel->fraction;
    }
  }
  if (auto field = m.get("seed"); field && kind && !selects) {
    ctx.diag.error(field->node.Mark(), field->path,
                   "seed applies to process and container targets only");
  }
  if (auto field = m.get("empty");
      field && kind && t.kind != TargetKind::kProcess && t.kind != TargetKind::kContainer) {
    ctx.diag.error(field->node.Mark(), field->path,
                   "empty applies to process and container targets only");
  }
  if (auto seed = m.get("seed")) {
    if (auto v = asInt(ctx, *seed, 0, INT64_MAX)) t.selection.seed = static_cast<uint64_t>(*v);
  }
  if (auto empty = m.get("empty")) {
    if (auto s = asString(ctx, *empty)) {
      if (*s == "skip") {
        t.emptySkip = true;
      } else if (*s != "error") {
        ctx.diag.error(empty->node.Mark(), empty->path, quoteText(*s) + " is not an empty policy",
                       "error (the default) or skip");
      }
    }
  }
  exp.targets.push_back(std::move(t));
}

}  // namespace

std::optional<ProcessSelector> parseProcessSelector(ReadContext& ctx, const Field& f) {
  MapReader m(ctx, f, {"pid", "name", "cmdline", "cgroup", "user", "pidFile"});
  if (!m.valid()) return std::nullopt;
  ProcessSelector sel;
  bool any = false;
  for (const char* k : {"pid", "name", "cmdline", "cgroup", "user", "pidFile"}) any |= m.has(k);
  if (!any) {
    ctx.diag.error(f.node.Mark(), f.path, "the selector selects nothing",
                   "at least one of: pid, name, cmdline, cgroup, user, pidFile");
    return std::nullopt;
  }
  if (auto pid = m.get("pid")) {
    if (auto v = asInt(ctx, *pid, 1, 4194304)) sel.pid = static_cast<int>(*v);
  }
  if (auto name = m.string("name")) {
    if (name->size() > 15) {
      ctx.diag.error(m.get("name")->node.Mark(), joinPath(f.path, "name"),
                     quoteText(*name) + " is longer than a process name (comm) can be",
                     "at most 15 characters; match longer names with cmdline");
    }
    sel.name = *name;
  }
  if (auto cmd = m.string("cmdline")) {
    checkSearchRegex(ctx, *m.get("cmdline"), *cmd);
    sel.cmdline = *cmd;
  }
  if (auto cg = m.string("cgroup")) {
    if (cg->front() != '/') {
      ctx.diag.error(m.get("cgroup")->node.Mark(), joinPath(f.path, "cgroup"),
                     quoteText(*cg) + " is not a cgroup path",
                     "a path inside the cgroup v2 tree, like /system.slice/api.service");
    }
    sel.cgroup = *cg;
  }
  if (auto user = m.string("user")) {
    sel.user = *user;
  }
  if (auto pf = m.string("pidFile")) {
    if (pf->front() != '/') {
      ctx.diag.error(m.get("pidFile")->node.Mark(), joinPath(f.path, "pidFile"),
                     quoteText(*pf) + " is not an absolute path", "a path like /run/api.pid");
    }
    sel.pidFile = *pf;
  }
  return sel;
}

void parseTargets(ReadContext& ctx, const Field& f, Experiment& exp) {
  if (!f.node.IsMap()) {
    ctx.diag.error(f.node.Mark(), f.path, "expected a mapping of target names to targets",
                   "targets: {api: {process: {name: api-server}}}");
    return;
  }
  std::map<std::string, int> seen;  // each target's name and the line it is first given at
  for (const auto& kv : f.node) {
    if (!kv.first.IsScalar()) {
      ctx.diag.error(kv.first.Mark(), f.path, "a target name must be a plain name");
      continue;
    }
    std::string name = kv.first.Scalar();
    Field target{kv.second, joinPath(f.path, name)};
    Field key{kv.first, target.path};
    if (auto first = seen.find(name); first != seen.end()) {
      ctx.diag.error(kv.first.Mark(), target.path, "duplicate target " + quoteText(name),
                     "each target once; first given at line " + std::to_string(first->second));
      continue;
    }
    seen.emplace(name, posOf(kv.first.Mark()).line);
    if (!checkName(ctx, key, name, "target")) continue;
    parseTarget(ctx, target, name, exp);
  }
}

}  // namespace chaosd::parser
