#include "chaosd/engine/probes/Verdict.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chaosd/engine/probes/Statistics.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {

namespace {

// The words for "the comparison did not hold": the negation of its operator.
const char* negatedOp(CompareOp op) {
  switch (op) {
    case CompareOp::kLt:
      return ">=";
    case CompareOp::kLe:
      return ">";
    case CompareOp::kGt:
      return "<=";
    case CompareOp::kGe:
      return "<";
    case CompareOp::kEq:
      return "!=";
  }
  return "!";
}

// Two numbers that differ print differently ("0.9999995 < 1", never "1 < 1").
std::pair<std::string, std::string> distinctNumbers(double a, double b) {
  std::string x = formatNumber(a);
  std::string y = formatNumber(b);
  if (x == y && a != b) {
    char bx[40];
    char by[40];
    std::snprintf(bx, sizeof bx, "%.15g", a);
    std::snprintf(by, sizeof by, "%.15g", b);
    return {bx, by};
  }
  return {x, y};
}

std::string significant3(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string percentileName(double p) { return "p" + formatNumber(p); }

std::vector<double> latencies(std::span<const ProbeSample> samples, Duration timeout) {
  std::vector<double> out;
  out.reserve(samples.size());
  for (const auto& s : samples) {
    out.push_back(static_cast<double>(effectiveLatency(s, timeout).count()));
  }
  return out;
}

Duration percentileOf(const std::vector<double>& values, double p) {
  return Duration(static_cast<Duration::rep>(stats::percentile(values, p).value_or(0)));
}

void checkSuccessRate(const ProbeSpec& spec, PhaseVerdict& v) {
  v.successRate = spec.tolerance.successRate.value_or(Comparison{CompareOp::kGe, 1.0});
  v.successRateHeld = v.successRate.holds(v.availability);
  if (v.successRateHeld) return;
  auto [seen, bound] = distinctNumbers(v.availability, v.successRate.value);
  std::string reason = "availability " + seen + " " + negatedOp(v.successRate.op) + " " + bound +
                       " (" + std::to_string(v.passed) + " of " + std::to_string(v.count) +
                       " samples passed";
  if (!v.firstFailureDetail.empty()) reason += "; first failure: " + v.firstFailureDetail;
  v.reasons.push_back(reason + ")");
}

void checkLatency(const ProbeSpec& spec, const std::vector<double>& values, PhaseVerdict& v) {
  for (const auto& bound : spec.tolerance.latency) {
    LatencyCheck check{bound.percentile, percentileOf(values, bound.percentile), bound.bound};
    check.held = bound.bound.holds(static_cast<double>(check.observed.count()));
    if (!check.held) {
      const Duration limit(static_cast<Duration::rep>(bound.bound.value));
      v.reasons.push_back(percentileName(bound.percentile) + " latency " +
                          formatLatency(check.observed) + " " + negatedOp(bound.bound.op) + " " +
                          formatLatency(limit));
    }
    v.latency.push_back(check);
  }
}

// The bootstrap's resamples: enough that the interval's ends (the 1st to 10th percentiles of the
// resampled ratios at the usual alphas) rest on dozens of values; a phase costs a few ms.
constexpr size_t kResamples = 2000;

uint64_t seedFor(const std::string& probe, Phase phase) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: the same data give the same interval
  for (const char c : probe + "/" + std::string(phaseName(phase))) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  return h;
}

std::string signedPercent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.0f%%", share * 100);
  return buf;
}

std::string minEffectWords(const BaselineCheck& b) {
  if (b.minAbsolute > Duration::zero()) return formatLatency(b.minAbsolute);
  if (b.minRelative > 0) return signedPercent(b.minRelative);
  return "";
}

std::string referenceWords(const BaselineCheck& b, const std::string& name) {
  return b.control.empty() ? "the baseline's " + name
                           : "the control " + b.control + "'s " + name + " in the same phase";
}

// The exact count of the phase's samples above the reference quantile (raised by the minimum
// effect when it is compared by bound), against the beta-binomial law of "nothing changed".
void countExceedances(const std::vector<double>& phase, const std::vector<double>& sorted,
                      BaselineCheck& b) {
  b.rank = stats::nearestRank(sorted.size(), b.quantile * 100);
  const double threshold = sorted[b.rank - 1];
  b.threshold = Duration(static_cast<Duration::rep>(threshold));
  const double raised =
      b.minEffectBy == MinEffectBy::kBound
          ? threshold * (1 + b.minRelative) + static_cast<double>(b.minAbsolute.count())
          : threshold;
  b.exceedances = static_cast<size_t>(
      std::count_if(phase.begin(), phase.end(), [&](double x) { return x > raised; }));
  const auto m = static_cast<double>(b.baselineCount);
  b.expected = static_cast<double>(b.count) * (m - static_cast<double>(b.rank) + 1) / (m + 1);
  b.pValue = stats::exceedanceUpperTail(b.baselineCount, b.rank, b.count, b.exceedances);
}

void checkBaseline(const BaselineTolerance& tolerance, const std::vector<double>& phase,
                   std::vector<double> reference, uint64_t seed, PhaseVerdict& v) {
  BaselineCheck b;
  b.test = tolerance.test;
  b.quantile = tolerance.quantile;
  b.alpha = tolerance.alpha;
  b.minRelative = tolerance.minRelative;
  b.minAbsolute = tolerance.minAbsolute;
  b.minEffectBy = tolerance.minEffectBy;
  b.control = tolerance.control;
  b.baselineCount = reference.size();
  b.count = phase.size();
  const std::string name = percentileName(tolerance.quantile * 100);
  if (reference.empty()) {
    b.deviated = true;
    b.pValue = 0;
    v.reasons.push_back(b.control.empty()
                            ? "the baseline has no samples to compare with"
                            : "the control " + b.control + " has no samples in this phase");
    v.baseline = b;
    return;
  }
  // The count test's evidence is its exact P-value; only the block test resamples (2000
  // resamples of a few hundred samples cost milliseconds a phase, too much for the count
  // test's simulations of thousands of phases).
  const size_t resamples = b.test == BaselineTest::kBlocks ? kResamples : 0;
  const auto effect =
      stats::bootstrapQuantileEffect(reference, phase, b.quantile, b.alpha, resamples, seed);
  std::sort(reference.begin(), reference.end());
  countExceedances(phase, reference, b);
  b.phaseQuantile = Duration(static_cast<Duration::rep>(effect.phase));
  b.effect = effect.ratio - 1;
  b.effectLow = effect.ratioLow - 1;
  b.effectHigh = effect.ratioHigh - 1;
  b.difference = Duration(static_cast<Duration::rep>(effect.difference));
  b.differenceLow = Duration(static_cast<Duration::rep>(effect.differenceLow));
  b.differenceHigh = Duration(static_cast<Duration::rep>(effect.differenceHigh));
  b.blockLength = effect.blockLength;
  b.resamples = effect.resamples;
  const std::string floor = minEffectWords(b);
  // By estimate, the rise measured must reach the minimum effect besides being significant.
  const bool byEstimate = b.minEffectBy == MinEffectBy::kEstimate;
  const bool largeEnough =
      !byEstimate || (b.effect >= b.minRelative && b.difference >= b.minAbsolute);
  if (b.test == BaselineTest::kExceedance) {
    b.deviated = b.pValue < b.alpha && largeEnough;
    if (b.deviated) {
      char p[32];
      std::snprintf(p, sizeof p, "%.2g", b.pValue);
      v.reasons.push_back(
          std::to_string(b.exceedances) + " of " + std::to_string(b.count) + " samples above " +
          referenceWords(b, name) + " of " + formatLatency(b.threshold) +
          (floor.empty() || byEstimate ? "" : " " + floor) + " (" + significant3(b.expected) +
          " expected); P = " + p + " < alpha " + formatNumber(b.alpha) +
          (floor.empty() || !byEstimate ? ""
                                        : "; " + name + " " + signedPercent(b.effect) +
                                              ", at least the minimum effect of " + floor));
    }
  } else {
    b.deviated = byEstimate ? b.effectLow > 0 && b.differenceLow > Duration::zero() && largeEnough
                            : b.effectLow > b.minRelative && b.differenceLow > b.minAbsolute;
    if (b.deviated) {
      v.reasons.push_back(name + " " + formatLatency(b.phaseQuantile) + " against " +
                          referenceWords(b, name) + " of " + formatLatency(b.threshold) + ": " +
                          signedPercent(b.effect) + " (" + formatNumber((1 - 2 * b.alpha) * 100) +
                          "% interval " + signedPercent(b.effectLow) + " to " +
                          signedPercent(b.effectHigh) + ")" +
                          (floor.empty() ? ""
                           : byEstimate  ? ", at least the minimum effect of " + floor
                                         : ", all of it above the minimum effect of " + floor));
    }
  }
  v.baseline = b;
}

// The values of one stream metric over a phase (StreamFigures says how each sample counts).
std::vector<double> streamValues(StreamMetric metric, std::span<const ProbeSample> samples,
                                 Duration timeout) {
  std::vector<double> out;
  for (const auto& s : samples) {
    const StreamTiming* t = s.stream ? &*s.stream : nullptr;
    switch (metric) {
      case StreamMetric::kFirstByte:
      case StreamMetric::kFirstEvent: {
        if (s.ok && !t) break;  // a plain response of a probe that bounds nothing streamed
        std::optional<Duration> at;
        if (t) at = metric == StreamMetric::kFirstByte ? t->firstByte : t->firstEvent;
        Duration value = std::max(s.duration, timeout);  // never got there
        if (at) value = s.ok ? *at : std::max(*at, timeout);
        out.push_back(static_cast<double>(value.count()));
        break;
      }
      case StreamMetric::kEventGap:
        if (t) {
          for (const Duration gap : t->gaps) out.push_back(static_cast<double>(gap.count()));
        }
        break;
      case StreamMetric::kEventRate:
        if (!s.ok) {
          out.push_back(0);
        } else if (t && t->eventRate()) {
          out.push_back(*t->eventRate());
        }
        break;
    }
  }
  return out;
}

StreamPercentiles streamPercentiles(const std::vector<double>& values) {
  StreamPercentiles p;
  p.count = values.size();
  if (values.empty()) return p;
  p.p5 = stats::percentile(values, 5).value_or(0);
  p.p50 = stats::percentile(values, 50).value_or(0);
  p.p95 = stats::percentile(values, 95).value_or(0);
  p.p99 = stats::percentile(values, 99).value_or(0);
  return p;
}

void checkStream(const ProbeSpec& spec, std::span<const ProbeSample> samples, PhaseVerdict& v) {
  const bool anyStreamed = std::any_of(samples.begin(), samples.end(),
                                       [](const ProbeSample& s) { return s.stream.has_value(); });
  if (!anyStreamed && spec.tolerance.stream.empty()) return;
  StreamFigures f;
  f.streamed = static_cast<size_t>(std::count_if(
      samples.begin(), samples.end(), [](const ProbeSample& s) { return s.stream.has_value(); }));
  std::vector<double> values[4];
  for (const StreamMetric m : {StreamMetric::kFirstByte, StreamMetric::kFirstEvent,
                               StreamMetric::kEventGap, StreamMetric::kEventRate}) {
    values[static_cast<int>(m)] = streamValues(m, samples, spec.timeout);
  }
  f.firstByte = streamPercentiles(values[0]);
  f.firstEvent = streamPercentiles(values[1]);
  f.eventGap = streamPercentiles(values[2]);
  f.eventRate = streamPercentiles(values[3]);
  for (const auto& bound : spec.tolerance.stream) {
    const auto& of = values[static_cast<int>(bound.metric)];
    StreamCheck check{bound.metric, bound.percentile, 0, bound.bound, false};
    const std::string name =
        percentileName(bound.percentile) + " " + std::string(streamMetricName(bound.metric));
    if (of.empty()) {
      const bool needsTwo =
          bound.metric == StreamMetric::kEventRate || bound.metric == StreamMetric::kEventGap;
      v.reasons.push_back(name + ": no sample measured it (no streamed response" +
                          (needsTwo ? " with two events or more)" : std::string(")")));
    } else {
      check.observed = stats::percentile(of, bound.percentile).value_or(0);
      check.held = bound.bound.holds(check.observed);
      if (!check.held) {
        v.reasons.push_back(name + " " + formatStreamValue(bound.metric, check.observed) + " " +
                            negatedOp(bound.bound.op) + " " +
                            formatStreamValue(bound.metric, bound.bound.value));
      }
    }
    f.checks.push_back(check);
  }
  v.stream = std::move(f);
}

}  // namespace

std::string formatStreamValue(StreamMetric metric, double value) {
  if (metric != StreamMetric::kEventRate) {
    return formatLatency(Duration(static_cast<Duration::rep>(value)));
  }
  return significant3(value) + "/s";
}

Duration effectiveLatency(const ProbeSample& sample, Duration timeout) {
  return sample.ok ? sample.duration : std::max(sample.duration, timeout);
}

PhaseVerdict judgePhase(const ProbeSpec& spec, Phase phase, std::span<const ProbeSample> samples,
                        std::optional<std::span<const ProbeSample>> baseline) {
  PhaseVerdict v;
  v.probe = spec.name;
  v.phase = phase;
  v.count = samples.size();
  v.passed = static_cast<size_t>(
      std::count_if(samples.begin(), samples.end(), [](const ProbeSample& s) { return s.ok; }));
  v.availability = v.count ? static_cast<double>(v.passed) / static_cast<double>(v.count) : 0;
  if (const ProbeSample* first = firstFailure(samples, Clock::TimePoint::min())) {
    v.firstFailureWall = first->wallStart;
    v.firstFailure = first->start;
    v.firstFailureDetail = first->detail;
  }
  if (samples.empty()) {
    v.reasons.push_back("no samples were taken in the " + std::string(phaseName(phase)) + " phase");
    return v;
  }
  const std::vector<double> values = latencies(samples, spec.timeout);
  v.p50 = percentileOf(values, 50);
  v.p95 = percentileOf(values, 95);
  v.p99 = percentileOf(values, 99);

  checkSuccessRate(spec, v);
  checkLatency(spec, values, v);
  checkStream(spec, samples, v);
  if (spec.tolerance.baseline && baseline) {
    checkBaseline(*spec.tolerance.baseline, values, latencies(*baseline, spec.timeout),
                  seedFor(spec.name, phase), v);
  }
  v.held = v.reasons.empty();
  return v;
}

const ProbeSample* firstFailure(std::span<const ProbeSample> samples, Clock::TimePoint since) {
  for (const auto& s : samples) {
    if (!s.ok && s.start >= since) return &s;
  }
  return nullptr;
}

const ProbeSample* recoveredAt(std::span<const ProbeSample> samples, Clock::TimePoint since,
                               size_t k) {
  k = std::max<size_t>(k, 1);
  size_t run = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].start < since) continue;
    run = samples[i].ok ? run + 1 : 0;
    if (run == k) return &samples[i + 1 - k];
  }
  return nullptr;
}

std::string formatLatency(Duration d) {
  struct Unit {
    const char* name;
    double scale;
  };
  static constexpr Unit kUnits[] = {{"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}};
  const auto ns = static_cast<double>(d.count());
  const Unit* unit = &kUnits[3];
  for (const auto& u : kUnits) {
    if (std::fabs(ns) >= u.scale) {
      unit = &u;
      break;
    }
  }
  const double value = ns / unit->scale;
  char buf[48];
  const int decimals = std::fabs(value) >= 100 ? 0 : std::fabs(value) >= 10 ? 1 : 2;
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string text = buf;
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text + unit->name;
}

}  // namespace chaosd
