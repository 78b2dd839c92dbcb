#include "reports/ResilienceScore.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "reports/ReportFields.h"

namespace chaosd::report {
namespace {

std::optional<double> phasePassRate(const Json& report, const std::string& phase) {
  double sum = 0;
  int probes = 0;
  for (const auto& p : list(report, "probes")) {
    const Json* v = verdictOf(p, phase);
    if (!v || number(*v, "count") <= 0) continue;
    sum += std::clamp(number(*v, "passed") / number(*v, "count"), 0.0, 1.0);
    ++probes;
  }
  if (probes == 0) return std::nullopt;
  return sum / probes;
}

}  // namespace

int resilienceScore(const ScoreInputs& in) {
  if (in.leftovers || in.error) return 0;
  double weighted = 0;
  double weights = 0;
  auto add = [&](const std::optional<double>& rate, double weight) {
    if (!rate) return;
    weighted += weight * std::clamp(*rate, 0.0, 1.0);
    weights += weight;
  };
  add(in.before, kBeforeWeight);
  add(in.during, kDuringWeight);
  add(in.after, kAfterWeight);
  if (weights <= 0) return 0;
  return static_cast<int>(std::lround(100 * weighted / weights));
}

std::string scoreNote(const ScoreInputs& in) {
  if (in.leftovers) return " (something was left behind)";
  if (in.error) return " (the run ended in an error)";
  if (!in.before && !in.during && !in.after) return " (no probe samples)";
  return "";
}

ScoreInputs scoreInputsOf(const Json& report) {
  ScoreInputs in;
  in.before = phasePassRate(report, "before");
  in.during = phasePassRate(report, "during");
  in.after = phasePassRate(report, "after");
  const std::string outcome = text(report, "outcome");
  in.error = outcome == "error";
  in.leftovers = outcome == "leftovers" || !flag(report, "auditClean", true);
  for (const auto& f : list(report, "faults")) {
    if (!list(f, "leftovers").empty()) in.leftovers = true;
  }
  return in;
}

}  // namespace chaosd::report
