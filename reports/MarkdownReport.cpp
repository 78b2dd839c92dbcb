#include "reports/MarkdownReport.h"

#include <sstream>

#include "reports/Escape.h"
#include "reports/FailureText.h"
#include "reports/ObservedText.h"
#include "reports/ReportFields.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {
namespace {

using Md = std::ostringstream;

// Time to detect or to recover of every probe that noticed the fault: "health 1.2s".
std::string impactCell(const Json& fault, bool recovery) {
  std::string out;
  for (const auto& i : list(fault, "impact")) {
    if (!flag(i, "detected")) continue;
    std::string value;
    if (!recovery) {
      value = duration(nanos(i, "detectedAfterNs"));
    } else {
      value = flag(i, "recovered") ? duration(nanos(i, "recoveredAfterNs")) : "not recovered";
    }
    if (!out.empty()) out += ", ";
    out += markdownEscape(text(i, "probe")) + " " + value;
  }
  if (out.empty()) return list(fault, "impact").empty() || recovery ? "-" : "not detected";
  return out;
}

void faultsTable(const Json& report, Md& md) {
  const auto& faults = list(report, "faults");
  if (faults.empty()) return;
  md << "\n### Faults\n\n"
     << "| step | type | target | state | time to detect | time to recover |\n"
     << "|---|---|---|---|---|---|\n";
  for (const auto& f : faults) {
    std::string state = text(f, "state");
    if (!text(f, "error").empty()) state += ": " + text(f, "error");
    md << "| " << markdownEscape(text(f, "step")) << " | " << markdownEscape(text(f, "type"))
       << " | " << markdownEscape(text(f, "target")) << " | " << markdownEscape(state) << " | "
       << impactCell(f, false) << " | " << impactCell(f, true) << " |\n";
  }
  bool any = false;
  for (const auto& f : faults) {
    const auto observed = observedLines(f);
    if (observed.empty()) continue;
    if (!any) md << "\nObserved:\n\n";
    any = true;
    md << "- **" << markdownEscape(text(f, "step")) << "**: ";
    for (size_t i = 0; i < observed.size(); ++i) {
      md << (i == 0 ? "" : "; ") << markdownEscape(observed[i]);
    }
    md << "\n";
  }
}

std::string phaseCell(const Json& report, const Json& probe, const std::string& phase) {
  const Json* v = verdictOf(probe, phase);
  if (!v) {
    const Json* ph = phaseOf(report, phase);
    return ph && !flag(*ph, "ran") ? "skipped" : "-";
  }
  return std::string(flag(*v, "held") ? "" : "**failed** ") + percent(number(*v, "availability")) +
         ", p95 " + duration(nanos(*v, "p95Ns"));
}

void probesTable(const Json& report, Md& md) {
  const auto& probes = list(report, "probes");
  if (probes.empty()) return;
  md << "\n### Probes\n\nAvailability and p95 latency per phase.\n\n"
     << "| probe | before (baseline) | during | after |\n|---|---|---|---|\n";
  for (const auto& p : probes) {
    md << "| " << markdownEscape(text(p, "name"));
    for (const char* phase : kPhases) md << " | " << phaseCell(report, p, phase);
    md << " |\n";
  }
  bool any = false;
  for (const auto& p : probes) {
    for (const auto& v : list(p, "verdicts")) {
      const std::string words = streamWords(v);
      if (words.empty()) continue;
      if (!any) md << "\nStreamed responses:\n\n";
      any = true;
      md << "- **" << markdownEscape(text(p, "name")) << "**, " << markdownEscape(text(v, "phase"))
         << ": " << markdownEscape(words) << "\n";
    }
  }
}

// A table: the first row is the header.
void table(const std::vector<std::vector<std::string>>& rows, Md& md) {
  for (size_t r = 0; r < rows.size(); ++r) {
    md << "|";
    for (const auto& cell : rows[r]) md << " " << markdownEscape(cell) << " |";
    md << "\n";
    if (r == 0) {
      md << "|";
      for (size_t c = 0; c < rows[r].size(); ++c) md << "---|";
      md << "\n";
    }
  }
}

void loadSection(const Json& report, Md& md) {
  const auto rows = loadTable(report);
  if (rows.empty()) return;
  md << "\n### Load\n\n" << markdownEscape(loadHeadline(report)) << ".\n\n";
  table(rows, md);
  const auto ramp = capacityTable(report);
  if (ramp.empty()) return;
  md << "\n#### Capacity\n\n" << markdownEscape(capacityHeadline(report)) << ".\n\n";
  table(ramp, md);
}

void rollbacksAndAudit(const Json& report, Md& md) {
  const auto& rollbacks = list(report, "rollbacks");
  if (!rollbacks.empty()) {
    md << "\n### Rollbacks\n\n";
    for (const auto& rb : rollbacks) {
      md << "- "
         << markdownEscape(flag(rb, "ok") ? "rollback " + text(rb, "name") + ": ok"
                                          : rollbackFailureMessage(rb))
         << "\n";
    }
  }
  md << "\n### Audit\n\n";
  const auto found = leftoverLines(report);
  if (found.empty() && flag(report, "auditClean", true)) {
    md << "Clean: nothing of the run's faults was left on the machine.\n";
    return;
  }
  md << "**Not clean**: the audit found what the run left behind:\n\n";
  for (const auto& l : found) md << "- " << markdownEscape(l) << "\n";
}

}  // namespace

std::string markdownSummary(const Json& report) {
  Md md;
  const std::string outcome = text(report, "outcome");
  md << "## chaosd: " << markdownEscape(experimentName(report)) << "\n\n"
     << "**Verdict: " << markdownEscape(outcome) << "** (exit "
     << static_cast<int64_t>(number(report, "exitCode")) << "), resilience score **"
     << resilienceScore(report) << "/100**" << scoreNote(report) << "\n\n"
     << "Run " << markdownEscape(text(report, "runId")) << ", "
     << markdownEscape(text(report, "startedAt")) << " to "
     << markdownEscape(text(report, "endedAt")) << ".\n";
  const auto& reasons = list(report, "reasons");
  if (!reasons.empty()) {
    md << "\n### Reasons\n\n";
    for (const auto& r : reasons) {
      md << "- " << markdownEscape(r.is_string() ? r.get<std::string>() : r.dump()) << "\n";
    }
  }
  faultsTable(report, md);
  probesTable(report, md);
  loadSection(report, md);
  rollbacksAndAudit(report, md);
  md << "\nThe score is the weighted mean of the probes' availability per phase (before "
        "0.2, during 0.5, after 0.3); 0 when something was left behind or the run failed.\n";
  return md.str();
}

}  // namespace chaosd::report
