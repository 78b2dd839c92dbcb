#include "reports/FleetWriters.h"

#include <sstream>

#include "reports/Escape.h"
#include "reports/FleetReport.h"
#include "reports/FleetText.h"
#include "reports/ReportFields.h"

namespace chaosd::report {
namespace {

void mdTable(std::ostringstream& md, const Row& header, const std::vector<Row>& rows) {
  md << "|";
  for (const auto& h : header) md << " " << markdownEscape(h) << " |";
  md << "\n|";
  for (size_t i = 0; i < header.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& r : rows) {
    md << "|";
    for (const auto& c : r) md << " " << markdownEscape(c) << " |";
    md << "\n";
  }
}

void htmlTable(std::ostringstream& h, const char* cls, const Row& header,
               const std::vector<Row>& rows) {
  h << "<table class=\"" << cls << "\"><thead><tr>";
  for (const auto& c : header) h << "<th>" << xmlEscape(c) << "</th>";
  h << "</tr></thead><tbody>\n";
  for (const auto& r : rows) {
    h << "<tr>";
    for (const auto& c : r) h << "<td>" << xmlEscape(c) << "</td>";
    h << "</tr>\n";
  }
  h << "</tbody></table>\n";
}

std::vector<Row> hostRows(const Json& fleet) {
  std::vector<Row> rows;
  for (const auto& host : list(fleet, "hosts")) rows.push_back(hostRow(host));
  return rows;
}

std::vector<std::string> leftLines(const Json& fleet) {
  std::vector<std::string> out;
  for (const auto& l : list(fleet, "leftBehind"))
    out.push_back(text(l, "host") + ": " + text(l, "what"));
  return out;
}

std::vector<std::string> reasonLines(const Json& fleet) {
  std::vector<std::string> out;
  for (const auto& r : list(fleet, "reasons"))
    out.push_back(r.is_string() ? r.get<std::string>() : r.dump());
  return out;
}

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1260px; }
h1 { margin: 0 0 4px 0; font-size: 22px; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.verdict { padding: 12px 16px; border-radius: 6px; border-left: 8px solid #888; background: #f3f3f3; }
.verdict.ok { border-color: #2ca02c; background: #eef8ee; }
.verdict.deviated, .verdict.aborted { border-color: #ff7f0e; background: #fff5ea; }
.verdict.leftovers, .verdict.error { border-color: #d62728; background: #fdeeee; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.callout { color: #b00; font-weight: bold; }
.muted { color: #777; }
)";

}  // namespace

std::string fleetMarkdown(const Json& fleet) {
  std::ostringstream md;
  md << "## chaosd fleet: " << markdownEscape(text(fleet, "experiment")) << "\n\n"
     << "**Verdict: " << markdownEscape(fleetVerdict(fleet)) << "**, "
     << markdownEscape(text(fleet, "startedAt")) << " to " << markdownEscape(text(fleet, "endedAt"))
     << ".\n\n"
     << markdownEscape(windowText(fleet)) << ".\n";
  const auto& missing = list(fleet, "missingHosts");
  if (!missing.empty()) {
    md << "\n### Hosts without a report\n\n";
    for (const auto& h : missing) {
      md << "- " << markdownEscape(h.is_string() ? h.get<std::string>() : h.dump())
         << ": its run's outcome and what it left behind are unknown\n";
    }
  }
  const auto left = leftLines(fleet);
  md << "\n### Left behind\n\n";
  if (left.empty()) md << "Nothing: every host's audit was clean.\n";
  for (const auto& l : left) md << "- " << markdownEscape(l) << "\n";
  const auto reasons = reasonLines(fleet);
  if (!reasons.empty()) {
    md << "\n### Reasons\n\n";
    for (const auto& r : reasons) md << "- " << markdownEscape(r) << "\n";
  }
  md << "\n### Hosts\n\n";
  mdTable(md, kHostHeader, hostRows(fleet));
  md << "\n### Time to detect and to recover\n\nOver every host, fault and probe that noticed "
        "the fault (missing: did not detect, or did not recover).\n\n";
  mdTable(md, kSpreadHeader, spreadRows(fleet));
  const std::string front = frontEndText(fleet);
  if (!front.empty()) md << "\n### Front end\n\n" << markdownEscape(front) << ".\n";
  if (fleet.value("reliability", Json()).is_object()) {
    md << "\n### Reliability model\n\nEach replica's availability in the fault window, the "
          "tiers in series, each k of n (replicas assumed to fail independently).\n\n";
    mdTable(md, kTierHeader, tierRows(fleet));
    md << "\n" << markdownEscape(modelText(fleet)) << ".\n";
    const std::string callout = text(fleet["reliability"], "callout");
    if (!callout.empty())
      md << "\n**Gap between model and observation**: " << markdownEscape(callout) << ".\n";
  }
  return md.str();
}

std::string fleetHtml(const Json& fleet) {
  std::ostringstream h;
  const std::string outcome = text(fleet, "outcome");
  h << "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n"
       "<meta charset=\"utf-8\"/>\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'\"/>\n<title>chaosd fleet: "
    << xmlEscape(text(fleet, "experiment")) << ": " << xmlEscape(outcome) << "</title>\n<style>"
    << kStyle
    << "</style>\n</head>\n<body>\n<h1>chaosd fleet: " << xmlEscape(text(fleet, "experiment"))
    << "</h1>\n<div class=\"verdict " << xmlEscape(outcome) << "\"><p><strong>"
    << xmlEscape(fleetVerdict(fleet)) << "</strong>, " << xmlEscape(text(fleet, "startedAt"))
    << " to " << xmlEscape(text(fleet, "endedAt")) << "</p><p>" << xmlEscape(windowText(fleet))
    << "</p>\n";
  const auto reasons = reasonLines(fleet);
  if (!reasons.empty()) {
    h << "<ul>";
    for (const auto& r : reasons) h << "<li>" << xmlEscape(r) << "</li>";
    h << "</ul>\n";
  }
  h << "</div>\n";
  const auto& missing = list(fleet, "missingHosts");
  if (!missing.empty()) {
    h << "<section id=\"missing\"><h2>Hosts without a report</h2>\n";
    for (const auto& m : missing) {
      h << "<p class=\"callout\">" << xmlEscape(m.is_string() ? m.get<std::string>() : m.dump())
        << ": its run's outcome and what it left behind are unknown</p>\n";
    }
    h << "</section>\n";
  }
  h << "<section id=\"left-behind\"><h2>Left behind</h2>\n";
  const auto left = leftLines(fleet);
  if (left.empty()) h << "<p>Nothing: every host's audit was clean.</p>\n";
  for (const auto& l : left) h << "<p class=\"callout\">" << xmlEscape(l) << "</p>\n";
  h << "</section>\n<section id=\"hosts\"><h2>Hosts</h2>\n";
  htmlTable(h, "hosts", kHostHeader, hostRows(fleet));
  h << "</section>\n<section id=\"impact\"><h2>Time to detect and to recover</h2>\n";
  htmlTable(h, "impact", kSpreadHeader, spreadRows(fleet));
  const std::string front = frontEndText(fleet);
  if (!front.empty()) h << "<p id=\"front-end\">" << xmlEscape(front) << "</p>\n";
  h << "</section>\n";
  if (fleet.value("reliability", Json()).is_object()) {
    h << "<section id=\"reliability\"><h2>Reliability model</h2>\n";
    htmlTable(h, "tiers", kTierHeader, tierRows(fleet));
    h << "<p>" << xmlEscape(modelText(fleet)) << "</p>\n";
    const std::string callout = text(fleet["reliability"], "callout");
    if (!callout.empty()) h << "<p class=\"callout\">" << xmlEscape(callout) << "</p>\n";
    h << "</section>\n";
  }
  h << "<footer class=\"muted\"><p>Written by chaosd from " << xmlEscape(kFleetJsonName) << " ("
    << xmlEscape(text(fleet, "schema")) << ").</p></footer>\n</body>\n</html>\n";
  return h.str();
}

namespace {

struct Case {
  std::string name;
  std::string failure;  // "" when it passed
  bool skipped = false;
  int64_t timeNs = 0;
};

// A wall-clock span of a JSON object (startedAt..endedAt, appliedAt..revertedAt) in ns; 0 when
// either end is missing.
int64_t span(const Json& j, const char* from, const char* to) {
  auto a = parseIsoTime(text(j, from));
  auto b = parseIsoTime(text(j, to));
  return a && b ? *b - *a : 0;
}

void writeSuite(std::ostringstream& x, const std::string& name, const std::vector<Case>& cases,
                int64_t timeNs) {
  size_t failures = 0;
  size_t skipped = 0;
  for (const auto& c : cases) {
    failures += c.failure.empty() || c.skipped ? 0 : 1;
    skipped += c.skipped ? 1 : 0;
  }
  x << "  <testsuite name=\"" << xmlEscape(name) << "\" tests=\"" << cases.size()
    << "\" failures=\"" << failures << "\" errors=\"0\" skipped=\"" << skipped << "\" time=\""
    << seconds(timeNs) << "\">\n";
  for (const auto& c : cases) {
    x << "    <testcase name=\"" << xmlEscape(c.name) << "\" classname=\"chaosd.fleet."
      << xmlEscape(name) << "\" time=\"" << seconds(c.timeNs) << "\"";
    if (c.skipped) {
      x << "><skipped message=\"" << xmlEscape(c.failure) << "\"/></testcase>\n";
    } else if (!c.failure.empty()) {
      x << "><failure message=\"" << xmlEscape(c.failure) << "\">" << xmlText(c.failure)
        << "</failure></testcase>\n";
    } else {
      x << "/>\n";
    }
  }
  x << "  </testsuite>\n";
}

std::vector<Case> memberCases(const Json& m) {
  std::vector<Case> cases;
  const std::string host = text(m, "host");
  Case run{"host " + host + ": run ok", ""};
  if (text(m, "outcome") != "ok") {
    run.failure = host + ": " + text(m, "outcome") + " (exit " +
                  std::to_string(static_cast<int>(number(m, "exitCode"))) + ")";
    for (const auto& r : list(m, "reasons")) {
      run.failure += "; " + (r.is_string() ? r.get<std::string>() : r.dump());
    }
  }
  cases.push_back(run);
  for (const auto& f : list(m, "faults")) {
    const std::string state = text(f, "state");
    Case c{"host " + host + ": fault " + text(f, "step") + " (" + text(f, "type") + " on " +
               text(f, "target") + ")",
           ""};
    c.timeNs = span(f, "appliedAt", "revertedAt");
    if (state == "apply-failed" || state == "revert-failed") {
      c.failure =
          "fault " + text(f, "step") + " on " + host + ": " + state + ": " + text(f, "error");
    } else if (state == "not-started" || state == "skipped") {
      c.skipped = true;
      c.failure = "fault " + text(f, "step") + " on " + host + " was not applied (" + state + ")";
    }
    cases.push_back(c);
  }
  Case audit{"host " + host + ": nothing left behind", ""};
  for (const auto& l : list(m, "leftBehind")) {
    audit.failure +=
        (audit.failure.empty() ? "" : "; ") + (l.is_string() ? l.get<std::string>() : l.dump());
  }
  cases.push_back(audit);
  return cases;
}

}  // namespace

std::string fleetJunit(const Json& fleet) {
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"chaosd fleet: "
    << xmlEscape(text(fleet, "experiment")) << "\">\n";
  for (const auto& m : list(fleet, "hosts"))
    writeSuite(x, text(m, "host"), memberCases(m), span(m, "startedAt", "endedAt"));
  const Json& control = fleet.value("control", Json());
  if (control.is_object()) {
    Json c = control;
    c["host"] = "control";
    writeSuite(x, "control", memberCases(c), span(c, "startedAt", "endedAt"));
  }
  std::vector<Case> fleetCases;
  for (const auto& m : list(fleet, "missingHosts")) {
    const std::string host = m.is_string() ? m.get<std::string>() : m.dump();
    fleetCases.push_back({"host " + host + ": report present",
                          "no report from host " + host +
                              ": its run's outcome and what it left behind are unknown"});
  }
  Case left{"fleet: nothing left behind on any host", ""};
  for (const auto& l : leftLines(fleet)) left.failure += (left.failure.empty() ? "" : "; ") + l;
  fleetCases.push_back(left);
  const Json& r = fleet.value("reliability", Json());
  if (r.is_object()) {
    Case model{"fleet: reliability model within the front end's observation", ""};
    if (!text(r, "callout").empty()) {
      model.failure = text(r, "callout");
    } else if (!r["gap"].is_number()) {
      model.skipped = true;
      model.failure = text(r, "note").empty() ? "no model or no observation" : text(r, "note");
    }
    fleetCases.push_back(model);
  }
  writeSuite(x, "fleet", fleetCases, span(fleet, "startedAt", "endedAt"));
  x << "</testsuites>\n";
  return x.str();
}

std::string fleetFileNameOf(ReportFormat format) {
  return std::string("fleet-") + fileNameOf(format);
}

std::vector<WrittenFile> writeFleetFiles(const Json& fleet, const std::string& dir,
                                         const std::vector<ReportFormat>& formats) {
  std::vector<WrittenFile> out;
  auto write = [&](ReportFormat format, const std::string& name, auto render) {
    WrittenFile w{format, dir + "/" + name, std::nullopt};
    std::string body;
    try {
      body = render();
    } catch (const std::exception& ex) {
      w.error = Error(ErrorCode::kInvalid, std::string("cannot render: ") + ex.what());
      out.push_back(std::move(w));
      return;
    }
    if (auto ok = writeFileAtomically(w.path, body); !ok) w.error = ok.error();
    out.push_back(std::move(w));
  };
  // The JSON first: it is the record the others are written from (its WrittenFile's format
  // is a placeholder; the path names it).
  write(ReportFormat::kJunit, kFleetJsonName, [&] { return fleet.dump(2) + "\n"; });
  for (auto format : formats) {
    write(format, fleetFileNameOf(format), [&] {
      switch (format) {
        case ReportFormat::kJunit:
          return fleetJunit(fleet);
        case ReportFormat::kHtml:
          return fleetHtml(fleet);
        case ReportFormat::kMarkdown:
          return fleetMarkdown(fleet);
      }
      return std::string();
    });
  }
  return out;
}

}  // namespace chaosd::report
