#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/ClientCommands.h"
#include "chaosd/app/cli/DaemonClient.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Units.h"
#include "chaosd/engine/probes/ValueMatcher.h"
#include "experiments/model/Timeline.h"
#include "injectors/process/TargetResolution.h"
#include "reports/ReportJson.h"

namespace chaosd::cli {
namespace {

std::string offset(Duration d) { return "+" + units::formatDuration(d); }

std::string argsText(const StepSpec& s, const FaultType* type) {
  if (s.args.empty() || !type) return "";
  return " (" + formatArgs(type->schema, s.args) + ")";
}

// "; latency p90 judged against the control b (block test, alpha 0.05, minimum effect 10%)"
std::string statisticalText(const ProbeSpec& p) {
  if (!p.tolerance.baseline) return "";
  const auto& b = *p.tolerance.baseline;
  std::string out = "; latency p" + formatNumber(b.quantile * 100) + " judged against " +
                    (b.control.empty() ? "its before phase" : "the control " + b.control) + " (" +
                    (b.test == BaselineTest::kBlocks ? "block" : "exceedance") + " test, alpha " +
                    formatNumber(b.alpha);
  if (b.minRelative > 0) out += ", minimum effect " + units::formatPercent(b.minRelative);
  if (b.minAbsolute > Duration::zero()) {
    out += ", minimum effect " + units::formatDuration(b.minAbsolute);
  }
  if (b.minRelative > 0 || b.minAbsolute > Duration::zero()) {
    out += b.minEffectBy == MinEffectBy::kBound ? " by the interval's bound" : " by the estimate";
  }
  return out + ")";
}

std::string probeText(const ProbeSpec& p) {
  std::string what;
  switch (p.kind) {
    case ProbeKind::kHttp:
      what = p.http.method + " " + p.http.url;
      break;
    case ProbeKind::kTcp:
      what = p.tcp.host + ":" + std::to_string(p.tcp.port);
      break;
    case ProbeKind::kCommand:
      for (const auto& a : p.command.argv) what += (what.empty() ? "" : " ") + a;
      break;
    case ProbeKind::kProcess:
      what = "processes";
      break;
    case ProbeKind::kPrometheus:
      what = p.prometheus.query + " @ " + p.prometheus.url;
      break;
  }
  std::string phases;
  for (auto ph : p.phases) phases += (phases.empty() ? "" : ",") + std::string(phaseName(ph));
  return p.name + ": " + std::string(probeKindName(p.kind)) + " " + what + ", every " +
         units::formatDuration(p.every) + ", timeout " + units::formatDuration(p.timeout) +
         ", phases " + phases + statisticalText(p) + (p.abort ? ", ABORTS the run on failure" : "");
}

nlohmann::json timelineJson(const Experiment& e, const Timeline& tl) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& entry : tl.entries) {
    nlohmann::json j{{"step", entry.step},
                     {"startNs", entry.start.count()},
                     {"endNs", entry.end.count()},
                     {"start", units::formatDuration(entry.start)},
                     {"end", units::formatDuration(entry.end)}};
    if (!entry.group.empty()) j["group"] = entry.group;
    if (!entry.fault.empty()) j["fault"] = entry.fault;
    if (!entry.target.empty()) j["target"] = entry.target;
    if (entry.kind == StepKind::kPause) j["pause"] = true;
    steps.push_back(j);
  }
  return {{"baseline", units::formatDuration(e.steadyState.baseline)},
          {"method", units::formatDuration(tl.total)},
          {"recovery", units::formatDuration(e.steadyState.recovery)},
          {"steps", steps}};
}

const StepSpec* findStep(const Experiment& e, const std::string& name) {
  for (const auto& s : e.method) {
    if (s.name == name) return &s;
    for (const auto& m : s.parallel) {
      if (m.name == name) return &m;
    }
  }
  return nullptr;
}

// What the host names of each step resolve to now (FaultType::resolveArgs): the addresses
// `run` would filter on, or why a name does not resolve (then plan fails, as run would).
struct HostCheck {
  std::string step;
  nlohmann::json hosts;  // {name: [addresses]}
  std::string error;     // "" when every name resolved
};

std::vector<HostCheck> checkHosts(const Experiment& e, const Timeline& tl,
                                  const FaultRegistry& registry) {
  std::vector<HostCheck> out;
  for (const auto& entry : tl.entries) {
    if (entry.kind != StepKind::kFault) continue;
    const StepSpec* s = findStep(e, entry.step);
    const FaultType* type = registry.find(entry.fault);
    if (!s || !type || !type->resolveArgs) continue;
    auto resolved = type->resolveArgs(s->args);
    if (!resolved) {
      out.push_back({entry.step, nullptr,
                     resolved.error().describe() + " (the step at line " +
                         std::to_string(s->pos.line) + ")"});
    } else if (resolved->observed.is_object() && resolved->observed.contains("hosts")) {
      out.push_back({entry.step, resolved->observed["hosts"], ""});
    }
  }
  return out;
}

void printHosts(std::ostream& out, const std::vector<HostCheck>& checks) {
  if (checks.empty()) return;
  out << "\nHost names, as they resolve now (run resolves them again when each step starts):\n";
  for (const auto& c : checks) {
    if (!c.error.empty()) {
      out << "  " << c.step << ": PROBLEM\n    ! " << c.error << "\n";
      continue;
    }
    for (const auto& [name, addresses] : c.hosts.items()) {
      out << "  " << c.step << ": " << name << " ->";
      for (const auto& a : addresses) out << " " << a.get<std::string>();
      out << "\n";
    }
  }
}

void printText(std::ostream& out, const Experiment& e, const Timeline& tl,
               const std::vector<ResolvedTarget>& targets, const FaultRegistry& registry) {
  const auto& g = e.guardrails;
  out << "Plan for " << e.metadata.name << " (" << e.file << ")"
      << (e.metadata.title.empty() ? "" : ": " + e.metadata.title) << "\n\n";
  out << "Guardrails: each fault at most " << units::formatDuration(g.maxDuration) << ", at most "
      << g.maxTargets << " process(es) per fault and " << units::formatPercent(g.maxPercent)
      << " of the matches, at most " << g.maxFaults << " fault steps, port 22 "
      << (g.allowSsh ? "MAY be partitioned" : "protected")
      << (g.allowFullCpu ? ", cpu.stress MAY take every CPU" : "")
      << (g.allowHostClock ? ", time.skew MAY step the host's clock" : "")
      << "; PID 1, kernel threads, chaosd, its guardian and the invoking shell are never "
         "targeted.\n\n";
  Duration total = e.steadyState.baseline + tl.total + e.steadyState.recovery;
  out << "Timeline (" << units::formatDuration(total) << " in all; offsets from the "
      << "method's start):\n";
  out << "  " << std::left << std::setw(22)
      << ("-" + units::formatDuration(e.steadyState.baseline) + " .. +0s")
      << "baseline: steady-state probes, no faults\n";
  for (const auto& entry : tl.entries) {
    const StepSpec* s = findStep(e, entry.step);
    std::ostringstream when;
    when << offset(entry.start) << " .. " << offset(entry.end);
    out << "  " << std::left << std::setw(22) << when.str()
        << (entry.group.empty() ? "" : "[" + entry.group + "] ") << entry.step << ": ";
    if (entry.kind == StepKind::kPause) {
      out << "pause\n";
    } else if (entry.kind == StepKind::kParallel) {
      out << "parallel group\n";
    } else {
      const FaultType* type = registry.find(entry.fault);
      out << entry.fault << (entry.target.empty() ? "" : " on " + entry.target)
          << (s ? argsText(*s, type) : "")
          << (type && !type->revertible ? " (cannot be reverted)" : "")
          << (type && !type->factory ? " [not implemented in this build]" : "") << "\n";
    }
  }
  out << "  " << std::left << std::setw(22)
      << (offset(tl.total) + " .. " + offset(tl.total + e.steadyState.recovery))
      << "recovery: probes again, time to recover measured\n\n";
  out << "Probes:\n";
  if (e.steadyState.probes.empty()) out << "  (none: the hypothesis is not measured)\n";
  for (const auto& p : e.steadyState.probes) out << "  " << probeText(p) << "\n";
  out << "\nTargets, as they resolve on this machine now:\n";
  if (targets.empty()) out << "  (none)\n";
  // `run` starts exec targets before it checks the others, so what they create (the replicas
  // a started front spawns, the namespace a started service makes) cannot resolve yet.
  bool startsExecs = false;
  for (const auto& t : e.targets) startsExecs = startsExecs || t.kind == TargetKind::kExec;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    const bool ok = t.usable && t.problems.empty();
    const bool later =
        !ok && startsExecs && i < e.targets.size() && e.targets[i].kind != TargetKind::kExec;
    out << "  " << t.name << " (" << t.selector << "): "
        << (ok      ? "ok"
            : later ? "not here yet (run checks it after starting the exec targets)"
                    : "PROBLEM")
        << "\n";
    for (const auto& d : t.details) out << "    " << d << "\n";
    for (const auto& p : t.problems) out << "    ! " << p << "\n";
  }
  printHosts(out, checkHosts(e, tl, registry));
  if (!e.rollbacks.empty()) {
    out << "\nRollbacks (always run at the end):\n";
    for (const auto& r : e.rollbacks) {
      out << "  " << r.name << ":";
      for (const auto& a : r.command) out << " " << a;
      out << "\n";
    }
  }
  out << "\nNothing was applied: plan reads the machine and changes nothing.\n";
}

}  // namespace

int planCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl plan options");
  CommonOptions common;
  VarOptions varOpts;
  std::string file;
  std::string socket;
  bool daemonPolicy = false;
  desc.add_options()("file", po::value(&file)->required(), "the experiment file")(
      "daemon-policy", po::bool_switch(&daemonPolicy),
      "also ask the daemon whether its policy lets you submit it (the grant that allows it, or "
      "the rule that refuses it with its line; exit 5 if refused)");
  addSocketOption(desc, socket);
  addVarOptions(desc, varOpts);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl plan [--var NAME=VALUE]... [--daemon-policy] FILE", desc, pos, args, vm,
                 code)) {
    return code;
  }
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto r = loadExperiment("plan", file, varOpts);
  if (!r) return kExitInvalid;
  const Experiment& e = *r->experiment;
  Timeline tl = computeTimeline(e.method);

  auto table = ProcessTable::scan();
  ResolveContext ctx;
  if (table) ctx.processes = &*table;
  ctx.protection.selfPid = ::getpid();
  ctx.protection.invokerPid = ::getpid();
  ctx.experiment = &e;
  ctx.catalog = &builtinRegistry();
  std::vector<ResolvedTarget> targets;
  for (const auto& t : e.targets) targets.push_back(resolveTarget(t, e.guardrails, ctx));
  const std::vector<HostCheck> hosts = checkHosts(e, tl, builtinRegistry());
  bool hostProblem = false;
  for (const auto& h : hosts) hostProblem = hostProblem || !h.error.empty();

  // With --output json the daemon's answer goes into the plan's one document ("daemonPolicy").
  int policyCode = kExitOk;
  nlohmann::json policyAnswer;
  if (daemonPolicy && common.json()) {
    auto body = policyCheckBody("plan", file, varOpts);
    if (!body) return kExitInvalid;
    policyCode = checkPolicy("plan", socket, *body, true, &policyAnswer);
  }
  if (common.json()) {
    nlohmann::json j{{"experiment", e.metadata.name},
                     {"file", e.file},
                     {"timeline", timelineJson(e, tl)},
                     {"guardrails",
                      {{"maxDuration", units::formatDuration(e.guardrails.maxDuration)},
                       {"maxTargets", e.guardrails.maxTargets},
                       {"maxPercent", e.guardrails.maxPercent},
                       {"maxFaults", e.guardrails.maxFaults},
                       {"allowSsh", e.guardrails.allowSsh},
                       {"allowFullCpu", e.guardrails.allowFullCpu},
                       {"allowHostClock", e.guardrails.allowHostClock}}},
                     {"targets", nlohmann::json::array()},
                     {"probes", nlohmann::json::array()},
                     {"applied", false}};
    for (const auto& t : targets) j["targets"].push_back(t.toJson());
    for (const auto& p : e.steadyState.probes) j["probes"].push_back(probeText(p));
    j["hosts"] = nlohmann::json::array();
    for (const auto& h : hosts) {
      nlohmann::json one{{"step", h.step}};
      if (h.error.empty()) {
        one["resolved"] = h.hosts;
      } else {
        one["error"] = h.error;
      }
      j["hosts"].push_back(std::move(one));
    }
    if (daemonPolicy) j["daemonPolicy"] = policyAnswer;
    redactSecrets(j, e);
    std::cout << j.dump(2) << "\n";
  } else {
    std::ostringstream text;
    printText(text, e, tl, targets, builtinRegistry());
    std::cout << redactText(text.str(), e);
  }
  if (hostProblem) {
    std::cerr << "chaosctl plan: a host name does not resolve (see above); run would stop "
                 "before applying anything\n";
    return kExitInvalid;
  }
  if (daemonPolicy && !common.json()) {
    auto body = policyCheckBody("plan", file, varOpts);
    if (!body) return kExitInvalid;
    return checkPolicy("plan", socket, *body, false);
  }
  return policyCode;
}

}  // namespace chaosd::cli
