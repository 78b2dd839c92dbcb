#include "reports/RunComparison.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "reports/ReportFields.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

struct Value {
  double number;
  std::string text;
};

using Values = std::map<std::string, Value>;  // keyed by subject

Direction judge(double oldV, double newV, bool higherIsBetter, bool isDuration) {
  if (oldV == newV) return Direction::kSame;
  if (isDuration && !std::isinf(oldV) && !std::isinf(newV)) {
    const double diff = std::fabs(newV - oldV);
    if (diff <= kDurationAbsoluteNoiseNs ||
        diff <= kDurationRelativeNoise * std::max(std::fabs(oldV), std::fabs(newV))) {
      return Direction::kSame;
    }
  }
  if (!isDuration && std::fabs(newV - oldV) < 1e-9) return Direction::kSame;
  return (newV > oldV) == higherIsBetter ? Direction::kBetter : Direction::kWorse;
}

RunSide sideOf(const Json& report) {
  return {text(report, "runId"), text(report, "outcome"),
          static_cast<int>(number(report, "exitCode")), resilienceScore(report)};
}

Values availabilities(const Json& report,
                      std::map<std::string, std::pair<std::string, std::string>>& keys) {
  Values out;
  for (const auto& p : list(report, "probes")) {
    for (const char* phase : kPhases) {
      const Json* v = verdictOf(p, phase);
      if (!v) continue;
      const std::string subject =
          "availability of probe " + text(p, "name") + " in the " + phase + " phase";
      keys[subject] = {text(p, "name"), phase};
      out[subject] = {number(*v, "availability"), percent(number(*v, "availability"))};
    }
  }
  return out;
}

Values p95During(const Json& report, std::map<std::string, std::string>& probes) {
  Values out;
  for (const auto& p : list(report, "probes")) {
    const Json* v = verdictOf(p, "during");
    if (!v || !nanos(*v, "p95Ns")) continue;
    const std::string subject = "p95 latency of probe " + text(p, "name") + " during faults";
    probes[subject] = text(p, "name");
    out[subject] = {static_cast<double>(*nanos(*v, "p95Ns")), duration(nanos(*v, "p95Ns"))};
  }
  return out;
}

// The slowest recovery over the probes that detected the step's fault.
Values recoveries(const Json& report, std::map<std::string, std::string>& steps) {
  Values out;
  for (const auto& f : list(report, "faults")) {
    if (!nanos(f, "appliedOffsetNs")) continue;
    Value v{0, "not detected"};
    for (const auto& i : list(f, "impact")) {
      if (!flag(i, "detected")) continue;
      auto after = nanos(i, "recoveredAfterNs");
      const double t = flag(i, "recovered") && after ? static_cast<double>(*after) : kInfinity;
      if (v.text == "not detected" || t > v.number) {
        v = {t, std::isinf(t) ? "not recovered" : duration(*after)};
      }
    }
    const std::string subject = "time to recover after fault " + text(f, "step");
    steps[subject] = text(f, "step");
    out[subject] = v;
  }
  return out;
}

void compareValues(const std::string& metric, const Values& oldV, const Values& newV,
                   bool higherIsBetter, bool isDuration, std::vector<MetricChange>& out,
                   const std::function<void(MetricChange&)>& label) {
  std::set<std::string> subjects;
  for (const auto& [k, v] : oldV) subjects.insert(k);
  for (const auto& [k, v] : newV) subjects.insert(k);
  for (const auto& subject : subjects) {
    MetricChange c;
    c.metric = metric;
    c.subject = subject;
    auto o = oldV.find(subject);
    auto n = newV.find(subject);
    if (o != oldV.end()) c.oldValue = o->second.number, c.oldText = o->second.text;
    if (n != newV.end()) c.newValue = n->second.number, c.newText = n->second.text;
    if (!c.oldValue) {
      c.direction = Direction::kOnlyNew;
    } else if (!c.newValue) {
      c.direction = Direction::kOnlyOld;
    } else {
      c.direction = judge(*c.oldValue, *c.newValue, higherIsBetter, isDuration);
    }
    label(c);
    out.push_back(std::move(c));
  }
}

nlohmann::json valueJson(const std::optional<double>& v) {
  if (!v || std::isinf(*v)) return nullptr;
  return *v;
}

}  // namespace

const char* directionName(Direction d) {
  switch (d) {
    case Direction::kBetter:
      return "better";
    case Direction::kWorse:
      return "worse";
    case Direction::kSame:
      return "unchanged";
    case Direction::kOnlyOld:
      return "only-old";
    case Direction::kOnlyNew:
      return "only-new";
  }
  return "unchanged";
}

size_t RunComparison::count(Direction d) const {
  size_t n = 0;
  for (const auto& c : changes) n += c.direction == d ? 1 : 0;
  return n;
}

RunComparison compareRuns(const Json& oldReport, const Json& newReport) {
  RunComparison r;
  r.oldExperiment = experimentName(oldReport);
  r.newExperiment = experimentName(newReport);
  r.oldRun = sideOf(oldReport);
  r.newRun = sideOf(newReport);

  MetricChange score;
  score.metric = "score";
  score.subject = "resilience score";
  score.oldValue = r.oldRun.score;
  score.newValue = r.newRun.score;
  score.oldText = std::to_string(r.oldRun.score);
  score.newText = std::to_string(r.newRun.score);
  score.direction = judge(*score.oldValue, *score.newValue, true, false);
  r.changes.push_back(score);

  std::map<std::string, std::pair<std::string, std::string>> probePhase;
  auto oldAvail = availabilities(oldReport, probePhase);
  auto newAvail = availabilities(newReport, probePhase);
  compareValues("availability", oldAvail, newAvail, true, false, r.changes, [&](MetricChange& c) {
    c.probe = probePhase[c.subject].first;
    c.phase = probePhase[c.subject].second;
  });
  std::map<std::string, std::string> probes;
  auto oldP95 = p95During(oldReport, probes);
  auto newP95 = p95During(newReport, probes);
  compareValues("p95During", oldP95, newP95, false, true, r.changes,
                [&](MetricChange& c) { c.probe = probes[c.subject]; });
  std::map<std::string, std::string> steps;
  auto oldRec = recoveries(oldReport, steps);
  auto newRec = recoveries(newReport, steps);
  compareValues("timeToRecover", oldRec, newRec, false, true, r.changes,
                [&](MetricChange& c) { c.step = steps[c.subject]; });
  return r;
}

nlohmann::json comparisonJson(const RunComparison& r) {
  auto side = [](const RunSide& s) {
    return nlohmann::json{
        {"runId", s.runId}, {"outcome", s.outcome}, {"exitCode", s.exitCode}, {"score", s.score}};
  };
  nlohmann::json j{{"experiment", r.newExperiment},
                   {"old", side(r.oldRun)},
                   {"new", side(r.newRun)},
                   {"better", r.count(Direction::kBetter)},
                   {"worse", r.count(Direction::kWorse)},
                   {"changes", nlohmann::json::array()}};
  for (const auto& c : r.changes) {
    nlohmann::json cj{{"metric", c.metric},
                      {"subject", c.subject},
                      {"direction", directionName(c.direction)},
                      {"old", valueJson(c.oldValue)},
                      {"new", valueJson(c.newValue)},
                      {"oldText", c.oldText},
                      {"newText", c.newText}};
    if (!c.probe.empty()) cj["probe"] = c.probe;
    if (!c.phase.empty()) cj["phase"] = c.phase;
    if (!c.step.empty()) cj["step"] = c.step;
    j["changes"].push_back(cj);
  }
  return j;
}

std::string comparisonText(const RunComparison& r) {
  auto side = [](const char* label, const RunSide& s) {
    return std::string("  ") + label + ": run " + s.runId + " (" + s.outcome + ", exit " +
           std::to_string(s.exitCode) + ", score " + std::to_string(s.score) + ")\n";
  };
  std::string out =
      "compare " + r.newExperiment + ":\n" + side("old", r.oldRun) + side("new", r.newRun);
  const std::pair<Direction, const char*> groups[] = {{Direction::kBetter, "better"},
                                                      {Direction::kWorse, "worse"},
                                                      {Direction::kOnlyOld, "only in the old run"},
                                                      {Direction::kOnlyNew, "only in the new run"},
                                                      {Direction::kSame, "unchanged"}};
  for (const auto& [dir, name] : groups) {
    const size_t n = r.count(dir);
    if (n == 0 && dir != Direction::kBetter && dir != Direction::kWorse) continue;
    out += std::string(name) + " (" + std::to_string(n) + "):\n";
    for (const auto& c : r.changes) {
      if (c.direction != dir) continue;
      out += "  " + c.subject + ": ";
      if (dir == Direction::kOnlyOld) {
        out += c.oldText;
      } else if (dir == Direction::kOnlyNew || dir == Direction::kSame) {
        out += c.newText;
      } else {
        out += c.oldText + " -> " + c.newText;
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace chaosd::report
