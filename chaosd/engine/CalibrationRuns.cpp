#include "chaosd/engine/CalibrationRuns.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

namespace chaosd {
namespace {

StepSpec pauseFor(const StepSpec& step) {
  if (step.kind == StepKind::kParallel) {
    StepSpec group = step;
    for (auto& member : group.parallel) member = pauseFor(member);
    return group;
  }
  if (step.kind != StepKind::kFault) return step;
  StepSpec pause;
  pause.name = step.name;
  pause.pos = step.pos;
  pause.kind = StepKind::kPause;
  pause.duration = step.duration.value_or(Duration{0});
  pause.at = step.at;
  pause.after = step.after;
  pause.afterPos = step.afterPos;
  return pause;
}

const PhaseVerdict* verdictOf(const RunResult& run, const std::string& probe, Phase phase) {
  for (const auto& p : run.probes) {
    if (p.name != probe) continue;
    for (const auto& v : p.verdicts) {
      if (v.phase == phase && v.baseline) return &v;
    }
  }
  return nullptr;
}

bool runsIn(const ProbeSpec& spec, Phase phase) {
  return std::find(spec.phases.begin(), spec.phases.end(), phase) != spec.phases.end();
}

PhaseCalibration configured(const ProbeSpec& spec, std::string phase) {
  const BaselineTolerance& t = *spec.tolerance.baseline;
  PhaseCalibration c;
  c.probe = spec.name;
  c.phase = std::move(phase);
  c.test = t.test;
  c.quantile = t.quantile;
  c.alpha = t.alpha;
  c.minRelative = t.minRelative;
  c.minAbsolute = t.minAbsolute;
  c.minEffectBy = t.minEffectBy;
  c.control = t.control;
  return c;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

void finishTally(PhaseCalibration& c, const std::vector<double>& drift) {
  c.rate = c.runs == 0 ? 0 : static_cast<double>(c.falseAlarms) / static_cast<double>(c.runs);
  c.interval = clopperPearson(c.falseAlarms, c.runs);
  c.driftMedian = median(drift);
  c.driftMax = drift.empty() ? 0 : *std::max_element(drift.begin(), drift.end());
  c.allowed = allowedFalseAlarms(c.runs, c.nominal);
  c.exceeded = c.falseAlarms > c.allowed;
}

// One phase, or ("both") the during and after phases together, of one probe over the runs.
PhaseCalibration tally(const ProbeSpec& spec, const std::vector<Phase>& phases,
                       const std::vector<RunResult>& runs) {
  const bool both = phases.size() > 1;
  PhaseCalibration c =
      configured(spec, both ? std::string("both") : std::string(phaseName(phases[0])));
  std::vector<double> drift;
  for (const auto& run : runs) {
    bool judged = false, deviated = false, held = true;
    std::optional<double> effect;
    for (Phase phase : phases) {
      const PhaseVerdict* v = verdictOf(run, spec.name, phase);
      if (v == nullptr) continue;
      judged = true;
      deviated = deviated || v->baseline->deviated;
      held = held && v->held;
      effect = std::max(effect.value_or(v->baseline->effect), v->baseline->effect);
    }
    if (!judged) continue;
    ++c.runs;
    if (deviated) ++c.falseAlarms;
    if (!held) ++c.notHeld;
    drift.push_back(*effect);
  }
  c.nominal = both ? std::min(1.0, 2 * c.alpha) : c.alpha;
  finishTally(c, drift);
  return c;
}

}  // namespace

Experiment withoutFaults(const Experiment& experiment) {
  Experiment out = experiment;
  for (auto& step : out.method) step = pauseFor(step);
  out.rollbacks.clear();
  return out;
}

std::string_view calibrationTestName(BaselineTest test) {
  return test == BaselineTest::kExceedance ? "exceedance" : "blocks";
}

std::vector<PhaseCalibration> aggregateCalibration(const Experiment& experiment,
                                                   const std::vector<RunResult>& runs) {
  std::vector<PhaseCalibration> out;
  for (const auto& spec : experiment.steadyState.probes) {
    if (!spec.tolerance.baseline) continue;
    std::vector<Phase> judged;
    for (Phase phase : {Phase::kDuring, Phase::kAfter}) {
      if (!runsIn(spec, phase)) continue;
      judged.push_back(phase);
      out.push_back(tally(spec, {phase}, runs));
    }
    if (judged.size() > 1) out.push_back(tally(spec, judged, runs));
  }
  return out;
}

std::vector<std::string> falseAlarmsOf(const RunResult& run) {
  std::vector<std::string> out;
  for (const auto& p : run.probes) {
    for (const auto& v : p.verdicts) {
      if (!v.baseline || !v.baseline->deviated) continue;
      char effect[32];
      std::snprintf(effect, sizeof effect, "%+.1f%%", 100 * v.baseline->effect);
      out.push_back(p.name + " " + std::string(phaseName(v.phase)) + " (" + effect + ")");
    }
  }
  return out;
}

size_t applyCalibration(RunResult& run, const std::vector<PhaseCalibration>& calibration,
                        const std::string& source) {
  size_t applied = 0;
  for (auto& p : run.probes) {
    for (auto& v : p.verdicts) {
      if (!v.baseline) continue;
      for (const auto& c : calibration) {
        if (c.probe != p.name || c.phase != phaseName(v.phase)) continue;
        v.baseline->calibration = CalibratedRate{c.runs, c.falseAlarms, source};
        ++applied;
        break;
      }
    }
  }
  return applied;
}

}  // namespace chaosd
