#include "reports/FailureText.h"

#include <cstdio>

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

namespace {

std::string signedShare(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.0f%%", share * 100);
  return buf;
}

std::string minEffectText(const Json& b) {
  const double share = number(b, "minEffectShare");
  const auto ns = nanos(b, "minEffectNs");
  if (ns && *ns > 0) return duration(*ns);
  if (share > 0) return signedShare(share);
  return "";
}

std::string calibrationText(const Json& b) {
  if (!b.contains("calibration") || !b["calibration"].is_object()) return "";
  const Json& c = b["calibration"];
  const auto runs = static_cast<int64_t>(number(c, "runs"));
  const auto alarms = static_cast<int64_t>(number(c, "falseAlarms"));
  return "; with no fault (chaosctl calibrate, " + std::to_string(runs) + " runs) it deviated in " +
         std::to_string(alarms) + " of " + std::to_string(runs) + " (" +
         percent(runs ? static_cast<double>(alarms) / static_cast<double>(runs) : 0) +
         ") against a nominal " + significant(number(b, "alpha"));
}

}  // namespace

std::string baselineWords(const Json& verdict) {
  if (!verdict.contains("baseline") || !verdict["baseline"].is_object()) return "";
  const Json& b = verdict["baseline"];
  const double alpha = number(b, "alpha");
  const bool deviated = flag(b, "deviated");
  const std::string quantile = significant(number(b, "quantile") * 100) + "th percentile";
  const std::string control = text(b, "control");
  const std::string reference =
      control.empty() ? "the baseline's" : "the control " + control + "'s (same phase)";
  const std::string floor = minEffectText(b);
  // Reports written before minEffectBy compared the minimum effect with the bound.
  const bool byBound = text(b, "minEffectBy") != "estimate";
  const std::string refCount = std::to_string(static_cast<int64_t>(number(b, "baselineCount")));
  if (text(b, "test") == "blocks") {
    return quantile + " latency " + duration(nanos(b, "phaseQuantileNs")) + " against " +
           reference + " " + duration(nanos(b, "thresholdNs")) + " (" + refCount +
           " samples): " + signedShare(number(b, "effect")) + ", " +
           significant((1 - 2 * alpha) * 100) + "% interval " +
           signedShare(number(b, "effectLow")) + " to " + signedShare(number(b, "effectHigh")) +
           " (moving-block bootstrap, blocks of " +
           std::to_string(static_cast<int64_t>(number(b, "blockLength"))) + " samples)" +
           (floor.empty() ? ""
            : byBound     ? "; minimum effect " + floor + " (the interval's lower bound above it)"
                          : "; minimum effect " + floor + " (the rise measured at least that)") +
           (deviated ? ": the latency deviated" : ": no deviation") + calibrationText(b);
  }
  return "compared with " + reference + " " + quantile + " latency of " +
         duration(nanos(b, "thresholdNs")) + " (from " + refCount +
         (control.empty() ? " baseline samples)" : " samples)") +
         (floor.empty() || !byBound ? "" : " raised by the minimum effect " + floor) + ", " +
         std::to_string(static_cast<int64_t>(number(b, "exceedances"))) + " of " +
         std::to_string(static_cast<int64_t>(number(b, "count"))) + " samples were slower, where " +
         significant(number(b, "expected")) +
         " were expected if nothing had changed; the chance of at least that many is p = " +
         significant(number(b, "pValue", 1)) + (deviated ? ", below" : ", not below") +
         " alpha = " + significant(alpha) +
         (floor.empty() || byBound ? ""
                                   : "; the rise measured " + signedShare(number(b, "effect")) +
                                         " against the minimum effect " + floor) +
         (deviated ? ": the latency deviated" : ": no deviation") + calibrationText(b);
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
