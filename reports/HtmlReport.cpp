#include "reports/HtmlReport.h"

#include <sstream>

#include "reports/Escape.h"
#include "reports/FailureText.h"
#include "reports/HtmlTimeline.h"
#include "reports/ObservedText.h"
#include "reports/ReportFields.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {
namespace {

using Html = std::ostringstream;

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1260px; }
h1 { margin: 0 0 4px 0; font-size: 22px; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.verdict { padding: 12px 16px; border-radius: 6px; border-left: 8px solid #888; background: #f3f3f3; }
.verdict.ok { border-color: #2ca02c; background: #eef8ee; }
.verdict.deviated, .verdict.aborted { border-color: #ff7f0e; background: #fff5ea; }
.verdict.leftovers, .verdict.error { border-color: #d62728; background: #fdeeee; }
.verdict .line { font-size: 18px; margin: 6px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.failed { color: #b00; font-weight: bold; }
.held { color: #1a7f1a; }
.muted { color: #777; }
ul.observed { margin: .3em 0 0; padding-left: 1.1em; font-size: 90%; }
svg.timeline { max-width: 100%; height: auto; border: 1px solid #eee; }
)";

std::string e(const std::string& s) { return xmlEscape(s); }

std::string offsetCell(const Json& f, const char* offsetKey, const char* wallKey) {
  auto off = nanos(f, offsetKey);
  if (!off) return "<span class=\"muted\">-</span>";
  return "+" + e(duration(*off)) + "<br/><span class=\"muted\">" + e(text(f, wallKey)) + "</span>";
}

std::string impactCell(const Json& fault, bool recovery) {
  std::string out;
  for (const auto& i : list(fault, "impact")) {
    std::string line = e(text(i, "probe")) + ": ";
    if (!flag(i, "detected")) {
      line += recovery ? "-" : "not detected";
    } else if (!recovery) {
      line += e(duration(nanos(i, "detectedAfterNs"))) + " <span class=\"muted\">(" +
              e(text(i, "detail")) + ")</span>";
    } else {
      line += flag(i, "recovered") ? e(duration(nanos(i, "recoveredAfterNs")))
                                   : "<span class=\"failed\">not recovered</span>";
    }
    out += (out.empty() ? "" : "<br/>") + line;
  }
  return out.empty() ? "<span class=\"muted\">-</span>" : out;
}

void faultsSection(const Json& report, Html& h) {
  h << "<section id=\"faults\"><h2>Faults</h2>\n";
  const auto& faults = list(report, "faults");
  if (faults.empty()) {
    h << "<p>No fault steps.</p></section>\n";
    return;
  }
  h << "<table class=\"faults\"><thead><tr><th>step</th><th>what</th><th>target</th>"
       "<th>backend</th><th>state</th><th>applied</th><th>reverted</th>"
       "<th>time to detect</th><th>time to recover</th></tr></thead><tbody>\n";
  for (const auto& f : faults) {
    const std::string state = text(f, "state");
    const bool bad = state == "apply-failed" || state == "revert-failed";
    h << "<tr data-step=\"" << e(text(f, "step")) << "\"><td>" << e(text(f, "step")) << "</td><td>"
      << e(text(f, "type")) << "<br/><span class=\"muted\">" << e(text(f, "description"))
      << "</span>";
    const auto observed = observedLines(f);
    if (!observed.empty()) {
      h << "<ul class=\"observed\">";
      for (const auto& line : observed) h << "<li>" << e(line) << "</li>";
      h << "</ul>";
    }
    h << "</td><td>" << e(text(f, "target")) << "</td><td>" << e(text(f, "backend")) << "</td><td"
      << (bad ? " class=\"failed\"" : "") << ">" << e(state);
    if (!text(f, "error").empty()) h << "<br/>" << e(text(f, "error"));
    h << "</td><td>" << offsetCell(f, "appliedOffsetNs", "appliedAt") << "</td><td>"
      << offsetCell(f, "revertedOffsetNs", "revertedAt") << "</td><td>" << impactCell(f, false)
      << "</td><td>" << impactCell(f, true) << "</td></tr>\n";
  }
  h << "</tbody></table>\n<p class=\"muted\">Time to detect: the end of the first failing sample "
       "that started while the fault was held, from the apply. Time to recover: the first of 3 "
       "passing samples in a row after the revert, from the revert.</p></section>\n";
}

void probesSection(const Json& report, Html& h) {
  h << "<section id=\"probes\"><h2>Probes</h2>\n";
  h << "<table class=\"probes\"><thead><tr><th>probe</th><th>phase</th><th>verdict</th>"
       "<th>samples passed</th><th>availability</th><th>required</th><th>p50</th><th>p95</th>"
       "<th>p99</th><th>why</th></tr></thead><tbody>\n";
  for (const auto& p : list(report, "probes")) {
    for (const char* phase : kPhases) {
      const Json* v = verdictOf(p, phase);
      h << "<tr><td>" << e(text(p, "name")) << "</td><td>" << phase << "</td>";
      if (!v) {
        const Json* ph = phaseOf(report, phase);
        std::string why = ph && !flag(*ph, "ran") ? "phase skipped: " + text(*ph, "skipped")
                                                  : "not probed in this phase";
        h << "<td class=\"muted\" colspan=\"8\">" << e(why) << "</td></tr>\n";
        continue;
      }
      const bool held = flag(*v, "held");
      h << "<td class=\"" << (held ? "held\">held" : "failed\">failed") << "</td><td>"
        << static_cast<int64_t>(number(*v, "passed")) << " / "
        << static_cast<int64_t>(number(*v, "count")) << "</td><td>"
        << e(percent(number(*v, "availability"))) << "</td><td>" << e(text(*v, "successRate"))
        << "</td><td>" << e(duration(nanos(*v, "p50Ns"))) << "</td><td>"
        << e(duration(nanos(*v, "p95Ns"))) << "</td><td>" << e(duration(nanos(*v, "p99Ns")))
        << "</td><td>";
      if (!held) h << e(probeFailureMessage(report, p, *v));
      h << "</td></tr>\n";
    }
  }
  h << "</tbody></table></section>\n";
}

// A table of class `cls`: the first row is the header.
void table(const std::vector<std::vector<std::string>>& rows, const char* cls, Html& h) {
  h << "<table class=\"" << cls << "\"><thead><tr>";
  for (const auto& cell : rows[0]) h << "<th>" << e(cell) << "</th>";
  h << "</tr></thead><tbody>\n";
  for (size_t r = 1; r < rows.size(); ++r) {
    h << "<tr>";
    for (const auto& cell : rows[r]) h << "<td>" << e(cell) << "</td>";
    h << "</tr>\n";
  }
  h << "</tbody></table>\n";
}

void loadSection(const Json& report, Html& h) {
  const auto rows = loadTable(report);
  if (rows.empty()) return;
  h << "<section id=\"load\"><h2>Load</h2>\n<p>" << e(loadHeadline(report)) << ".</p>\n";
  table(rows, "load", h);
  const auto ramp = capacityTable(report);
  if (!ramp.empty()) {
    h << "<h3>Capacity</h3>\n<p>" << e(capacityHeadline(report)) << ".</p>\n";
    table(ramp, "load capacity", h);
  }
  h << "</section>\n";
}

void streamSection(const Json& report, Html& h) {
  std::string body;
  for (const auto& p : list(report, "probes")) {
    for (const auto& v : list(p, "verdicts")) {
      const std::string words = streamWords(v);
      if (words.empty()) continue;
      body += "<p class=\"stream\"><strong>" + e(text(p, "name")) + "</strong>, " +
              e(text(v, "phase")) + " phase: " + e(words) + ".</p>\n";
    }
  }
  if (body.empty()) return;
  h << "<section id=\"streams\"><h2>Streamed responses</h2>\n" << body << "</section>\n";
}

void baselineSection(const Json& report, Html& h) {
  std::string body;
  for (const auto& p : list(report, "probes")) {
    for (const auto& v : list(p, "verdicts")) {
      const std::string words = baselineWords(v);
      if (words.empty()) continue;
      body += "<p class=\"baseline\"><strong>" + e(text(p, "name")) + "</strong>, " +
              e(text(v, "phase")) + " phase: " + e(words) + ".</p>\n";
    }
  }
  if (body.empty()) return;
  h << "<section id=\"baseline\"><h2>Statistical baseline</h2>\n" << body << "</section>\n";
}

void rollbacksAndAudit(const Json& report, Html& h) {
  const auto& rollbacks = list(report, "rollbacks");
  if (!rollbacks.empty()) {
    h << "<section id=\"rollbacks\"><h2>Rollbacks</h2><table class=\"rollbacks\"><thead><tr>"
         "<th>name</th><th>command</th><th>result</th><th>exit</th><th>took</th><th>detail</th>"
         "</tr></thead><tbody>\n";
    for (const auto& rb : rollbacks) {
      auto code = nanos(rb, "exitCode");
      h << "<tr><td>" << e(text(rb, "name")) << "</td><td><code>"
        << e(joined(list(rb, "command"), " ")) << "</code></td><td class=\""
        << (flag(rb, "ok") ? "held\">ok" : "failed\">failed") << "</td><td>"
        << (code ? std::to_string(*code) : "-") << "</td><td>"
        << e(duration(nanos(rb, "durationNs"))) << "</td><td>" << e(text(rb, "detail"))
        << "</td></tr>\n";
    }
    h << "</tbody></table></section>\n";
  }
  h << "<section id=\"audit\"><h2>Audit</h2>\n";
  const auto found = leftoverLines(report);
  if (found.empty() && flag(report, "auditClean", true)) {
    h << "<p class=\"held\">Clean: nothing of the run's faults was left on the machine.</p>";
  } else {
    h << "<p class=\"failed\">Not clean: the audit found what the run left behind.</p><ul "
         "class=\"leftovers\">";
    for (const auto& l : found) h << "<li>" << e(l) << "</li>";
    h << "</ul>";
  }
  h << "</section>\n";
}

void verdictHeader(const Json& report, Html& h) {
  const std::string outcome = text(report, "outcome");
  h << "<header id=\"verdict\" class=\"verdict " << e(outcome) << "\"><h1>"
    << e(experimentName(report)) << "</h1>\n<p class=\"line\">Verdict: <strong>" << e(outcome)
    << "</strong> (exit " << static_cast<int64_t>(number(report, "exitCode"))
    << "), resilience score <strong class=\"score\">" << resilienceScore(report) << "/100</strong>"
    << e(scoreNote(report)) << "</p>\n";
  const auto& reasons = list(report, "reasons");
  if (!reasons.empty()) {
    h << "<ul class=\"reasons\">";
    for (const auto& r : reasons) {
      h << "<li>" << e(r.is_string() ? r.get<std::string>() : r.dump()) << "</li>";
    }
    h << "</ul>\n";
  }
  h << "<p class=\"muted\">Run " << e(text(report, "runId")) << ", " << e(text(report, "startedAt"))
    << " to " << e(text(report, "endedAt")) << "</p></header>\n";
}

}  // namespace

std::string htmlReport(const Json& report) {
  Html h;
  h << "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n"
       "<meta charset=\"utf-8\"/>\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; img-src data:\"/>\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>chaosd: "
    << e(experimentName(report)) << ": " << e(text(report, "outcome")) << "</title>\n<style>"
    << kStyle << "</style>\n</head>\n<body>\n";
  verdictHeader(report, h);
  h << "<section id=\"timeline\"><h2>Timeline</h2>\n"
       "<p class=\"muted\">One lane per probe: a dot per sample at its latency (red: failed); "
       "shaded: the faults' windows, from apply to revert; dashed: phase boundaries.</p>\n"
    << timelineSvg(report) << "\n</section>\n";
  faultsSection(report, h);
  probesSection(report, h);
  streamSection(report, h);
  loadSection(report, h);
  baselineSection(report, h);
  rollbacksAndAudit(report, h);
  h << "<footer class=\"muted\"><p>Written by chaosd from report.json ("
    << e(text(report, "schema")) << "). The resilience score is the weighted mean of the "
    << "probes' availability per phase: before 0.2, during 0.5, after 0.3, over the phases that "
    << "ran; 0 when something was left behind or the run failed.</p></footer>\n</body>\n</html>\n";
  return h.str();
}

}  // namespace chaosd::report
