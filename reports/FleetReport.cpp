#include "reports/FleetReport.h"

#include <algorithm>
#include <map>
#include <set>

#include "reports/FailureText.h"
#include "reports/FleetMeasures.h"
#include "reports/ReportFields.h"
#include "reports/ReportJson.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {
namespace {

Error invalid(const std::string& what) { return Error(ErrorCode::kInvalid, what); }

// A field as it is, or null when missing or when j is not an object (a hostile report's fault
// may be a number).
Json raw(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? Json(nullptr) : *it;
}

// Where the fleet's faults were held: the earliest apply to the latest revert on any host
// (a fault never reverted counts to its run's end). Without any applied fault, the runs' span.
FleetWindow faultWindow(const std::vector<FleetMember>& hosts) {
  FleetWindow w;
  std::vector<int64_t> hostFirstApplies;
  for (const auto& m : hosts) {
    std::optional<int64_t> hostFirst;
    for (const auto& f : list(m.report, "faults")) {
      auto applied = parseIsoTime(text(f, "appliedAt"));
      if (!applied) continue;
      if (!hostFirst || *applied < *hostFirst) hostFirst = applied;
      auto reverted = parseIsoTime(text(f, "revertedAt"));
      if (!reverted) reverted = parseIsoTime(text(m.report, "endedAt"));
      if (!w.firstApply || *applied < w.firstApply->ns) {
        w.firstApply = FleetWindow::Edge{*applied, m.host, text(f, "step")};
      }
      if (reverted && (!w.lastRevert || *reverted > w.lastRevert->ns)) {
        w.lastRevert = FleetWindow::Edge{*reverted, m.host, text(f, "step")};
      }
    }
    if (hostFirst) hostFirstApplies.push_back(*hostFirst);
  }
  if (hostFirstApplies.size() >= 2) {
    const auto [lo, hi] = std::minmax_element(hostFirstApplies.begin(), hostFirstApplies.end());
    w.applySpreadNs = *hi - *lo;
  }
  if (w.firstApply && w.lastRevert) {
    w.start = w.firstApply->ns;
    w.end = w.lastRevert->ns;
    w.source = "faults";
    return w;
  }
  for (const auto& m : hosts) {
    auto s = parseIsoTime(text(m.report, "startedAt"));
    auto e = parseIsoTime(text(m.report, "endedAt"));
    if (s && (w.start == 0 || *s < w.start)) w.start = *s;
    if (e && *e > w.end) w.end = *e;
  }
  w.source = "runs";
  return w;
}

Json phaseVerdicts(const Json& probe) {
  Json phases = Json::object();
  for (const char* phase : kPhases) {
    const Json* v = verdictOf(probe, phase);
    if (!v) continue;
    phases[phase] = {{"held", flag(*v, "held")},
                     {"availability", number(*v, "availability")},
                     {"count", number(*v, "count")},
                     {"passed", number(*v, "passed")},
                     {"p95Ns", nanos(*v, "p95Ns") ? Json(*nanos(*v, "p95Ns")) : Json(nullptr)}};
  }
  return phases;
}

Json probesJson(const Json& report, const FleetWindow& window) {
  Json out = Json::array();
  for (const auto& p : list(report, "probes")) {
    const SampleCount c = samplesIn(p, window);
    Json inWindow = {{"count", c.count}, {"passed", c.passed}};
    inWindow["availability"] = c.count > 0 ? Json(c.availability()) : Json(nullptr);
    out.push_back({{"name", text(p, "name")}, {"phases", phaseVerdicts(p)}, {"window", inWindow}});
  }
  return out;
}

// What the run left behind, in lines; a run flagged as leftovers without a line says why.
std::vector<std::string> leftBehind(const Json& report) {
  std::vector<std::string> lines = leftoverLines(report);
  if (!lines.empty()) return lines;
  if (text(report, "outcome") == "leftovers" || number(report, "exitCode") == 4) {
    std::string why = joined(list(report, "reasons"), "; ");
    lines.push_back("the run ended with leftovers" + (why.empty() ? "" : ": " + why));
  } else if (!flag(report, "auditClean", true)) {
    lines.push_back("the audit was not clean");
  }
  return lines;
}

Json faultsJson(const Json& report) {
  Json out = Json::array();
  for (const auto& f : list(report, "faults")) {
    Json j = {{"step", text(f, "step")},
              {"type", text(f, "type")},
              {"target", text(f, "target")},
              {"state", text(f, "state")},
              {"backend", text(f, "backend")},
              {"appliedAt", raw(f, "appliedAt")},
              {"revertedAt", raw(f, "revertedAt")},
              {"leftovers", list(f, "leftovers")}};
    if (!text(f, "error").empty()) j["error"] = text(f, "error");
    Json impact = Json::array();
    for (const auto& i : list(f, "impact")) {
      impact.push_back({{"probe", text(i, "probe")},
                        {"detected", flag(i, "detected")},
                        {"detectedAfterNs", raw(i, "detectedAfterNs")},
                        {"recovered", flag(i, "recovered")},
                        {"recoveredAfterNs", raw(i, "recoveredAfterNs")}});
    }
    j["impact"] = impact;
    out.push_back(j);
  }
  return out;
}

Json memberJson(const FleetMember& m, const FleetWindow& window) {
  const Json& r = m.report;
  Json lines = Json::array();
  for (const auto& l : leftBehind(r)) lines.push_back(l);
  return {{"host", m.host},
          {"source", m.source},
          {"runId", text(r, "runId")},
          {"experiment", experimentName(r)},
          {"outcome", text(r, "outcome")},
          {"exitCode", static_cast<int>(number(r, "exitCode"))},
          {"score", resilienceScore(r)},
          {"startedAt", raw(r, "startedAt")},
          {"endedAt", raw(r, "endedAt")},
          {"reasons", list(r, "reasons")},
          {"auditClean", flag(r, "auditClean", true)},
          {"faults", faultsJson(r)},
          {"probes", probesJson(r, window)},
          {"leftBehind", lines}};
}

Result<void> checkMembers(const FleetInputs& in) {
  if (in.hosts.empty()) return invalid("a fleet report needs at least one host's report.json");
  std::map<std::string, std::string> hostSource;
  std::map<std::string, std::string> runSource;
  auto checkOne = [&](const FleetMember& m, const std::string& role) -> Result<void> {
    if (!m.report.is_object() || text(m.report, "schema") != kReportSchema) {
      return invalid(m.source + ": not a chaosd report (" + kReportSchema + ")");
    }
    const std::string run = text(m.report, "runId");
    auto [it, fresh] = runSource.emplace(run, m.source);
    if (!fresh && !run.empty()) {
      return invalid(m.source + ": run " + run + " is given twice (also " + it->second + ")");
    }
    if (role == "host") {
      auto [h, newHost] = hostSource.emplace(m.host, m.source);
      if (!newHost) {
        return invalid("host '" + m.host + "' is given twice: " + h->second + " and " + m.source);
      }
    }
    return {};
  };
  for (const auto& m : in.hosts) {
    if (auto ok = checkOne(m, "host"); !ok) return ok;
  }
  if (in.control) {
    if (auto ok = checkOne(*in.control, "control"); !ok) return ok;
  }
  const FleetMember& first = in.hosts.front();
  for (const auto& m : in.hosts) {
    if (experimentName(m.report) != experimentName(first.report)) {
      return invalid(m.source + " (host " + m.host + ") is a run of '" + experimentName(m.report) +
                     "', " + first.source + " (host " + first.host + ") of '" +
                     experimentName(first.report) +
                     "': a fleet report merges the runs of one experiment (the control node's, "
                     "--control, may differ)");
    }
  }
  return {};
}

struct Severity {
  const char* outcome;
  int exitCode;
};

// The worst outcome first: what was left behind matters most.
constexpr Severity kSeverities[] = {
    {"leftovers", 4}, {"error", 5}, {"aborted", 3}, {"deviated", 1}, {"ok", 0}};

void fleetOutcome(const std::vector<const FleetMember*>& members,
                  const std::vector<std::string>& missing, Json& fleet) {
  Json reasons = Json::array();
  Json left = Json::array();
  std::set<int> codes;
  for (const auto& host : missing) {
    codes.insert(5);
    reasons.push_back(host +
                      ": no report: whether its run ended and what it left behind are "
                      "unknown (check the host: chaosctl faults, chaosctl runs)");
  }
  for (const FleetMember* m : members) {
    for (const auto& l : leftBehind(m->report)) left.push_back({{"host", m->host}, {"what", l}});
    const int code =
        leftBehind(m->report).empty() ? static_cast<int>(number(m->report, "exitCode")) : 4;
    codes.insert(code);
    if (code != 0) {
      std::string why = joined(list(m->report, "reasons"), "; ");
      reasons.push_back(m->host + ": " + text(m->report, "outcome") + " (exit " +
                        std::to_string(code) + ")" + (why.empty() ? "" : ": " + why));
    }
  }
  fleet["outcome"] = "ok";
  fleet["exitCode"] = 0;
  for (const auto& s : kSeverities) {
    if (codes.count(s.exitCode)) {
      fleet["outcome"] = s.outcome;
      fleet["exitCode"] = s.exitCode;
      break;
    }
  }
  fleet["reasons"] = reasons;
  fleet["leftBehind"] = left;
}

}  // namespace

Result<nlohmann::json> buildFleetReport(const FleetInputs& in) {
  if (auto ok = checkMembers(in); !ok) return ok.error();
  const FleetWindow window = faultWindow(in.hosts);
  Json fleet = {{"schema", kFleetReportSchema},
                {"experiment", experimentName(in.hosts.front().report)},
                {"window", windowJson(window)}};
  std::vector<const FleetMember*> everyone;
  Json hosts = Json::array();
  std::optional<int64_t> start;
  std::optional<int64_t> end;
  for (const auto& m : in.hosts) {
    hosts.push_back(memberJson(m, window));
    everyone.push_back(&m);
    auto s = parseIsoTime(text(m.report, "startedAt"));
    auto e = parseIsoTime(text(m.report, "endedAt"));
    if (s && (!start || *s < *start)) start = s;
    if (e && (!end || *e > *end)) end = e;
  }
  fleet["startedAt"] = start ? Json(isoNanos(*start)) : Json(nullptr);
  fleet["endedAt"] = end ? Json(isoNanos(*end)) : Json(nullptr);
  fleet["hosts"] = hosts;
  fleet["control"] = nullptr;
  if (in.control) {
    Json control = memberJson(*in.control, window);
    control["frontEnd"] =
        frontEndImpact(in.control->report, window, in.topology ? in.topology->frontEndProbe : "");
    fleet["control"] = control;
    everyone.push_back(&*in.control);
  }
  fleet["timeToDetect"] = impactSpread(in.hosts, false);
  fleet["timeToRecover"] = impactSpread(in.hosts, true);
  fleet["reliability"] = nullptr;
  if (in.topology) {
    auto model =
        reliabilityJson(*in.topology, in.hosts, in.control ? &*in.control : nullptr, window);
    if (!model) return model.error();
    fleet["reliability"] = *model;
  }
  std::set<std::string> present;
  for (const auto& m : in.hosts) present.insert(m.host);
  std::vector<std::string> expected = in.expectedHosts;
  if (in.topology) {
    for (const auto& t : in.topology->tiers)
      expected.insert(expected.end(), t.hosts.begin(), t.hosts.end());
  }
  std::vector<std::string> missing;
  for (const auto& h : expected) {
    if (!present.count(h) && std::find(missing.begin(), missing.end(), h) == missing.end()) {
      missing.push_back(h);
    }
  }
  fleet["missingHosts"] = missing;
  fleetOutcome(everyone, missing, fleet);
  return fleet;
}

int fleetExitCode(const nlohmann::json& fleet) {
  return static_cast<int>(number(fleet, "exitCode"));
}

}  // namespace chaosd::report
