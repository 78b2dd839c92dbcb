#include "chaosd/engine/Impact.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "chaosd/engine/probes/ValueMatcher.h"
#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {
namespace {

// The fault's hold: [applied, reverted], or from the apply on when it never was reverted.
struct Hold {
  Clock::TimePoint applied;
  std::optional<Clock::TimePoint> reverted;
  bool covers(const ProbeSample& s) const {
    return s.start >= applied && (!reverted || s.start <= *reverted);
  }
};

// One way the probe showed the fault: the sample that made it known, and how.
struct Detection {
  const ProbeSample* sample = nullptr;
  std::string by;
  std::string detail;
  std::function<bool(const ProbeSample&)> good;  // what recovery waits for
  Clock::TimePoint known() const { return sample->start + sample->duration; }
};

const char* opText(CompareOp op) {
  static const char* ops[] = {"<", "<=", ">", ">=", "=="};
  return ops[static_cast<int>(op)];
}

std::string boundWords(const LatencyCheck& c) {
  return "p" + formatNumber(c.percentile) + " " + opText(c.bound.op) + " " +
         formatLatency(Duration(static_cast<Duration::rep>(c.bound.value)));
}

bool withinBound(const ProbeSample& s, const LatencyCheck& c) {
  return c.bound.holds(static_cast<double>(s.duration.count()));
}

std::optional<Detection> byFailedSample(const ProbeRecord& probe, const Hold& hold) {
  const ProbeSample* failure = firstFailure(probe.samples, hold.applied);
  if (failure == nullptr || !hold.covers(*failure)) return std::nullopt;
  return Detection{failure, "sample", failure->detail, [](const ProbeSample& s) { return s.ok; }};
}

// The first passing sample held whose latency breaks a bound the phase's verdict found broken
// (a failing sample is a detection of its own, earlier or the same).
std::optional<Detection> byLatency(const ProbeRecord& probe, const Hold& hold) {
  std::vector<LatencyCheck> broken;
  for (const auto& v : probe.verdicts) {
    for (const auto& c : v.latency) {
      if (!c.held) broken.push_back(c);
    }
  }
  if (broken.empty()) return std::nullopt;
  for (const auto& s : probe.samples) {
    if (!s.ok || !hold.covers(s)) continue;
    for (const auto& v : probe.verdicts) {
      if (v.phase != s.phase) continue;
      for (const auto& c : v.latency) {
        if (c.held || withinBound(s, c)) continue;
        auto good = [broken](const ProbeSample& x) {
          return x.ok && std::all_of(broken.begin(), broken.end(),
                                     [&](const LatencyCheck& b) { return withinBound(x, b); });
        };
        return Detection{&s, "latency",
                         "latency " + formatLatency(s.duration) + " breaks " + boundWords(c) +
                             " (" + s.detail + ")",
                         good};
      }
    }
  }
  return std::nullopt;
}

const ProbeRecord* findProbe(const std::vector<ProbeRecord>& probes, const std::string& name) {
  for (const auto& p : probes) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<ProbeSample> samplesOf(const ProbeRecord* probe, Phase phase) {
  std::vector<ProbeSample> out;
  if (probe == nullptr) return out;
  for (const auto& s : probe->samples) {
    if (s.phase == phase) out.push_back(s);
  }
  return out;
}

// Whether the statistical test rejects the phase's first `n` samples.
bool rejects(const ProbeSpec& spec, Phase phase, const std::vector<ProbeSample>& samples, size_t n,
             const std::vector<ProbeSample>& reference) {
  const auto v = judgePhase(spec, phase, std::span<const ProbeSample>(samples.data(), n),
                            std::span<const ProbeSample>(reference));
  return v.baseline && v.baseline->deviated;
}

// The first of `count` prefixes at which `rejects` holds: every one up to kDenseScan of them;
// beyond, a grid (kGridCount for the count test, kGridBlocks for the bootstrap, which costs
// thousands of resamples a look), then within the stride that first rejects, one by one when
// it is at most kDenseScan long, else by bisection (the last that does not reject, then the
// next: exact when the test, once rejecting, keeps rejecting within the stride).
constexpr size_t kDenseScan = 16;
constexpr size_t kGridCount = 256;
constexpr size_t kGridBlocks = 16;

std::optional<size_t> firstRejecting(size_t count, BaselineTest test,
                                     const std::function<bool(size_t)>& rejects) {
  if (count == 0) return std::nullopt;
  const size_t grid = test == BaselineTest::kExceedance ? kGridCount : kGridBlocks;
  const size_t stride = count <= kDenseScan ? 1 : std::max<size_t>(1, (count + grid - 1) / grid);
  size_t from = 0;  // the first index not yet known not to reject
  for (size_t g = stride - 1;; g = std::min(g + stride, count - 1)) {
    if (rejects(g)) {
      if (g - from <= kDenseScan) {
        for (size_t i = from; i < g; ++i) {
          if (rejects(i)) return i;
        }
        return g;
      }
      size_t lo = from;  // [lo, hi]: the answer; hi rejects
      size_t hi = g;
      while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (rejects(mid)) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      return hi;
    }
    if (g + 1 >= count) return std::nullopt;
    from = g + 1;
  }
}

// The first held sample of a phase the statistical test rejected after which the test, on the
// phase's samples up to it, rejects: every sample for the count test, a grid then sample by
// sample for the bootstrap (Impact.h).
std::optional<Detection> byBaseline(const ProbeRecord& probe, const ProbeSpec& spec,
                                    const std::vector<ProbeRecord>& probes, const Hold& hold) {
  for (const auto& v : probe.verdicts) {
    if (!v.baseline || !v.baseline->deviated || v.phase == Phase::kBefore) continue;
    const BaselineCheck& b = *v.baseline;
    const std::vector<ProbeSample> samples = samplesOf(&probe, v.phase);
    const std::vector<ProbeSample> reference =
        b.control.empty() ? samplesOf(&probe, Phase::kBefore)
                          : samplesOf(findProbe(probes, b.control), v.phase);
    std::vector<size_t> held;  // prefix lengths ending with a held sample
    for (size_t i = 0; i < samples.size(); ++i) {
      if (hold.covers(samples[i])) held.push_back(i + 1);
    }
    if (held.empty()) continue;
    auto rejectsAt = [&](size_t i) { return rejects(spec, v.phase, samples, held[i], reference); };
    const std::optional<size_t> found = firstRejecting(held.size(), b.test, rejectsAt);
    if (!found) continue;
    const size_t n = held[*found];
    const auto at = judgePhase(spec, v.phase, std::span<const ProbeSample>(samples.data(), n),
                               std::span<const ProbeSample>(reference));
    // The sample within the probe's own record, which outlives this function.
    const ProbeSample* sample = nullptr;
    for (const auto& s : probe.samples) {
      if (s.phase == v.phase && s.start == samples[n - 1].start) sample = &s;
    }
    if (sample == nullptr) continue;
    const double raised = static_cast<double>(b.threshold.count()) * (1 + b.minRelative) +
                          static_cast<double>(b.minAbsolute.count());
    auto good = [raised](const ProbeSample& x) {
      return x.ok && static_cast<double>(x.duration.count()) <= raised;
    };
    return Detection{sample, "baseline",
                     "the statistical test rejected after " + std::to_string(n) + " of the " +
                         std::string(phaseName(v.phase)) + " phase's samples: " +
                         (at.reasons.empty() ? std::string("deviated") : at.reasons.back()),
                     good};
  }
  return std::nullopt;
}

// The first sample of kRecoverySamples good ones in a row that started at or after `since`.
const ProbeSample* goodAgainAt(const std::vector<ProbeSample>& samples, Clock::TimePoint since,
                               const std::function<bool(const ProbeSample&)>& good) {
  size_t run = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].start < since) continue;
    run = good(samples[i]) ? run + 1 : 0;
    if (run == kRecoverySamples) return &samples[i + 1 - kRecoverySamples];
  }
  return nullptr;
}

}  // namespace

std::vector<ProbeImpact> impactOf(const FaultRecordOut& fault,
                                  const std::vector<ProbeRecord>& probes,
                                  const std::vector<ProbeSpec>& specs) {
  std::vector<ProbeImpact> out;
  if (!fault.appliedMono) return out;
  const Hold hold{*fault.appliedMono, fault.revertedMono};
  for (const auto& probe : probes) {
    ProbeImpact impact;
    impact.probe = probe.name;
    std::vector<Detection> found;
    if (auto d = byFailedSample(probe, hold)) found.push_back(std::move(*d));
    if (auto d = byLatency(probe, hold)) found.push_back(std::move(*d));
    for (const auto& spec : specs) {
      if (spec.name != probe.name) continue;
      if (auto d = byBaseline(probe, spec, probes, hold)) found.push_back(std::move(*d));
    }
    // The earliest; on a tie the first found (a failing sample before a broken bound).
    auto first = std::min_element(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.known() < b.known();
    });
    if (first != found.end()) {
      impact.detected = true;
      impact.detectedAfter = first->known() - hold.applied;
      impact.by = first->by;
      impact.detail = first->detail;
      if (hold.reverted) {
        if (const ProbeSample* back = goodAgainAt(probe.samples, *hold.reverted, first->good)) {
          impact.recovered = true;
          impact.recoveredAfter = back->start - *hold.reverted;
        }
      }
    }
    out.push_back(std::move(impact));
  }
  return out;
}

void computeImpacts(RunResult& result, const std::vector<ProbeSpec>& specs) {
  for (auto& fault : result.faults) fault.impact = impactOf(fault, result.probes, specs);
}

}  // namespace chaosd
