#include "reports/FleetText.h"

#include <cstdio>

#include "reports/ReportFields.h"

namespace chaosd::report {
namespace {

std::string edgeText(const Json& edge) {
  if (!edge.is_object()) return "-";
  return text(edge, "at") + " (" + text(edge, "host") + ", step " + text(edge, "step") + ")";
}

std::string faultCell(const Json& f) {
  std::string out = text(f, "step") + " (" + text(f, "type") + " on " + text(f, "target") +
                    "): " + text(f, "state");
  if (!text(f, "error").empty()) out += ": " + text(f, "error");
  return out;
}

std::string probeCell(const Json& p) {
  const Json& w = p.contains("window") ? p["window"] : Json::object();
  const int count = static_cast<int>(number(w, "count"));
  if (count == 0) return text(p, "name") + " no samples";
  return text(p, "name") + " " + finePercent(number(w, "availability")) + " (" +
         std::to_string(static_cast<int>(number(w, "passed"))) + "/" + std::to_string(count) + ")";
}

std::string valueCell(const Json& v, bool withWhere) {
  if (!v.is_object()) return "-";
  std::string out = duration(nanos(v, "ns"));
  if (withWhere && v.contains("host")) {
    out += " (" + text(v, "host") + ", " + text(v, "step") + ", " + text(v, "probe") + ")";
  }
  return out;
}

std::string missingCell(const Json& spread, const char* key) {
  const auto& missing = list(spread, key);
  if (missing.empty()) return "-";
  std::string out;
  for (const auto& m : missing) {
    out += (out.empty() ? "" : "; ") + text(m, "host") + " " + text(m, "step") + " (" +
           text(m, "probe") + ")";
  }
  return out;
}

std::string signedPoints(double gap) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2f", gap * 100);
  return std::string(buf) + " points";
}

}  // namespace

std::string finePercent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", fraction * 100);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + "%";
}

std::string fleetVerdict(const Json& fleet) {
  const size_t hosts = list(fleet, "hosts").size();
  return text(fleet, "outcome") + " (exit " +
         std::to_string(static_cast<int>(number(fleet, "exitCode"))) + ") across " +
         std::to_string(hosts) + (hosts == 1 ? " host" : " hosts");
}

std::string windowText(const Json& fleet) {
  const Json& w = fleet.contains("window") ? fleet["window"] : Json::object();
  if (text(w, "source") != "faults") {
    return "No fault was applied on any host; measured over the runs, " + text(w, "startAt") +
           " to " + text(w, "endAt");
  }
  std::string out = "Faults held from " + edgeText(w["firstApply"]) + " to " +
                    edgeText(w["lastRevert"]) + ", " + duration(nanos(w, "lengthNs"));
  if (auto spread = nanos(w, "applySpreadNs")) {
    out += "; the hosts' first applies within " + duration(*spread) + " of each other";
  }
  return out;
}

Row hostRow(const Json& host) {
  std::string faults;
  for (const auto& f : list(host, "faults")) faults += (faults.empty() ? "" : "; ") + faultCell(f);
  std::string probes;
  for (const auto& p : list(host, "probes")) probes += (probes.empty() ? "" : "; ") + probeCell(p);
  std::string outcome = text(host, "outcome") + " (exit " +
                        std::to_string(static_cast<int>(number(host, "exitCode"))) + ")";
  for (const auto& l : list(host, "leftBehind")) {
    outcome += "; left behind: " + (l.is_string() ? l.get<std::string>() : l.dump());
  }
  return {text(host, "host"),
          outcome,
          std::to_string(static_cast<int>(number(host, "score"))),
          faults.empty() ? "-" : faults,
          probes.empty() ? "-" : probes,
          text(host, "source")};
}

std::vector<Row> spreadRows(const Json& fleet) {
  std::vector<Row> rows;
  for (const bool recovery : {false, true}) {
    const char* key = recovery ? "timeToRecover" : "timeToDetect";
    const Json& s = fleet.contains(key) ? fleet[key] : Json::object();
    const Json none;
    rows.push_back({recovery ? "time to recover" : "time to detect",
                    std::to_string(static_cast<int>(number(s, "count"))),
                    valueCell(s.value("min", none), true), valueCell(s.value("median", none), true),
                    valueCell(s.value("max", none), true),
                    missingCell(s, recovery ? "notRecovered" : "notDetected")});
  }
  return rows;
}

std::string frontEndText(const Json& fleet) {
  const Json& control = fleet.value("control", Json());
  if (!control.is_object()) return "";
  const Json& fe = control.value("frontEnd", Json());
  if (!fe.is_object() || !fe["probe"].is_string()) {
    return "control node run " + text(control, "runId") + ": " + text(fe, "note");
  }
  std::string out = "probe " + text(fe, "probe") + " of the control node (run " +
                    text(control, "runId") + ", " + text(control, "outcome") + "): ";
  if (!text(fe, "note").empty()) return out + text(fe, "note");
  if (!flag(fe, "detected")) return out + "did not fail while the faults were held";
  out += "first failure " + duration(nanos(fe, "detectedAfterNs")) + " after the first apply";
  out += flag(fe, "recovered")
             ? ", recovered " + duration(nanos(fe, "recoveredAfterNs")) + " after the last revert"
             : ", not recovered after the last revert";
  return out;
}

std::vector<Row> tierRows(const Json& fleet) {
  std::vector<Row> rows;
  const Json& r = fleet.value("reliability", Json());
  for (const auto& t : list(r, "tiers")) {
    std::string replicas;
    for (const auto& rep : list(t, "replicas")) {
      replicas += (replicas.empty() ? "" : ", ") + text(rep, "host") + " " +
                  (rep["availability"].is_number() ? finePercent(number(rep, "availability"))
                                                   : std::string("no samples")) +
                  " (" + std::to_string(static_cast<int>(number(rep, "passed"))) + "/" +
                  std::to_string(static_cast<int>(number(rep, "count"))) + ")";
    }
    rows.push_back({text(t, "name"),
                    std::to_string(static_cast<int>(number(t, "k"))) + " of " +
                        std::to_string(static_cast<int>(number(t, "n"))),
                    replicas,
                    t["reliability"].is_number() ? finePercent(number(t, "reliability")) : "-"});
  }
  return rows;
}

std::string modelText(const Json& fleet) {
  const Json& r = fleet.value("reliability", Json());
  if (!r.is_object()) return "";
  std::string out = r["model"].is_number()
                        ? "model " + finePercent(number(r, "model")) + " (tiers in series)"
                        : std::string("no model");
  const Json& o = r.value("observed", Json());
  if (o.is_object()) {
    out += "; observed " + finePercent(number(o, "availability")) + " by probe " +
           text(o, "probe") + " (" + std::to_string(static_cast<int>(number(o, "passed"))) +
           " of " + std::to_string(static_cast<int>(number(o, "count"))) +
           " samples, 95% interval " + finePercent(number(o, "low")) + " to " +
           finePercent(number(o, "high")) + ")";
  }
  if (r["gap"].is_number()) out += "; gap " + signedPoints(number(r, "gap"));
  if (!text(r, "note").empty()) out += "; " + text(r, "note");
  return out;
}

}  // namespace chaosd::report
