#include "reports/FailureText.h"

#include "reports/ReportFields.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {

std::string faultWhat(const Json& fault) {
  std::string what = text(fault, "type");
  if (!text(fault, "target").empty()) what += " on " + text(fault, "target");
  return what;
}

std::string joined(const Json& array, const std::string& sep) {
  std::string out;
  if (!array.is_array()) return out;
  for (const auto& item : array) {
    if (!out.empty()) out += sep;
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string firstFailureText(const Json& report, const Json& verdict) {
  auto at = nanos(verdict, "firstFailureOffsetNs");
  if (!at) return "";
  const Json* cause = nullptr;
  for (const auto& f : list(report, "faults")) {
    auto applied = nanos(f, "appliedOffsetNs");
    if (applied && *applied <= *at && (!cause || *applied >= *nanos(*cause, "appliedOffsetNs"))) {
      cause = &f;
    }
  }
  std::string out = "first failure ";
  if (cause) {
    out += duration(*at - *nanos(*cause, "appliedOffsetNs")) + " after fault " +
           text(*cause, "step") + " was applied";
  } else {
    out += duration(*at) + " into the run";
  }
  const std::string detail = text(verdict, "firstFailureDetail");
  return detail.empty() ? out : out + ": " + detail;
}

std::string probeFailureMessage(const Json& report, const Json& probe, const Json& verdict) {
  std::string out =
      "probe " + text(probe, "name") + " failed in the " + text(verdict, "phase") + " phase";
  const std::string reasons = joined(list(verdict, "reasons"), "; ");
  if (!reasons.empty()) out += ": " + reasons;
  const std::string first = firstFailureText(report, verdict);
  if (!first.empty()) out += "; " + first;
  return out;
}

std::string baselineWords(const Json& verdict) {
  if (!verdict.contains("baseline") || !verdict["baseline"].is_object()) return "";
  const Json& b = verdict["baseline"];
  const double alpha = number(b, "alpha");
  const double p = number(b, "pValue", 1);
  const bool deviated = flag(b, "deviated");
  return "compared with the baseline's " + significant(number(b, "quantile") * 100) +
         "th percentile latency of " + duration(nanos(b, "thresholdNs")) + " (from " +
         std::to_string(static_cast<int64_t>(number(b, "baselineCount"))) + " baseline samples), " +
         std::to_string(static_cast<int64_t>(number(b, "exceedances"))) + " of " +
         std::to_string(static_cast<int64_t>(number(b, "count"))) + " samples were slower, where " +
         significant(number(b, "expected")) +
         " were expected if nothing had changed; the chance of at least that many is p = " +
         significant(p) + (deviated ? ", below" : ", not below") +
         " alpha = " + significant(alpha) +
         (deviated ? ": the latency deviated" : ": no deviation");
}

std::string verdictDetails(const Json& verdict) {
  std::string out;
  for (const auto& r : list(verdict, "reasons")) {
    out += "- " + (r.is_string() ? r.get<std::string>() : r.dump()) + "\n";
  }
  out += std::to_string(static_cast<int64_t>(number(verdict, "passed"))) + " of " +
         std::to_string(static_cast<int64_t>(number(verdict, "count"))) +
         " samples passed (availability " + percent(number(verdict, "availability")) +
         ", required " + text(verdict, "successRate") + "); latency p50 " +
         duration(nanos(verdict, "p50Ns")) + ", p95 " + duration(nanos(verdict, "p95Ns")) +
         ", p99 " + duration(nanos(verdict, "p99Ns")) + "\n";
  const std::string b = baselineWords(verdict);
  if (!b.empty()) out += "baseline: " + b + "\n";
  return out;
}

std::string rollbackFailureMessage(const Json& rb) {
  auto code = nanos(rb, "exitCode");
  std::string out = "rollback " + text(rb, "name") + " failed (" +
                    (code ? "exit " + std::to_string(*code) : std::string("did not exit")) + ")";
  const std::string detail = text(rb, "detail");
  return detail.empty() ? out : out + ": " + detail;
}

std::vector<std::string> leftoverLines(const Json& report) {
  std::vector<std::string> out;
  for (const auto& f : list(report, "faults")) {
    for (const auto& l : list(f, "leftovers")) {
      out.push_back("fault " + text(f, "step") + " (" + faultWhat(f) +
                    "): " + (l.is_string() ? l.get<std::string>() : l.dump()));
    }
  }
  return out;
}

std::string verdictText(const Json& report) {
  std::string out = "verdict: " + text(report, "outcome") + " (exit " +
                    std::to_string(static_cast<int64_t>(number(report, "exitCode"))) +
                    "), resilience score " + std::to_string(resilienceScore(report)) + "/100" +
                    scoreNote(report) + "\n";
  for (const auto& r : list(report, "reasons")) {
    out += "- " + (r.is_string() ? r.get<std::string>() : r.dump()) + "\n";
  }
  return out;
}

}  // namespace chaosd::report
