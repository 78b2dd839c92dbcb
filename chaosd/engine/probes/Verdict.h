#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chaosd/base/Clock.h"
#include "chaosd/engine/probes/ProbeSample.h"
#include "experiments/model/Experiment.h"

// Whether a probe's steady state held over one phase. The rules, in words:
// - A phase with no samples does not hold (nothing was shown).
// - Availability = passed / count. It must satisfy tolerance.successRate; without one, every
//   sample must pass (availability >= 1).
// - Latency is the sample's duration, except that a failed sample counts as at least the
//   probe's timeout (an error is as bad as no answer; a refused connection is not "fast").
//   Percentiles are nearest-rank: the smallest observed latency with at least p% of the
//   samples at or below it. Each tolerance.latency bound is checked on its percentile.
// - Baseline mode (tolerance.baseline, and the baseline phase's samples given): the threshold
//   is the baseline's `quantile` latency (nearest rank r of its m samples); k of the phase's
//   n samples are above it. Under "nothing changed" the count of exceedances has a known
//   distribution (exceedanceUpperTail in Statistics.h: exact, whatever the latency
//   distribution); the phase deviates when P(count >= k) < alpha, so a phase like the baseline
//   is declared deviant with probability at most alpha.
// - The phase held when every check held; `reasons` says why not, one line per failed check.
namespace chaosd {

struct LatencyCheck {
  double percentile = 95;  // 50, 95, 99.9
  Duration observed{0};
  Comparison bound;  // value in nanoseconds
  bool held = false;
};

// What an A/A calibration (`chaosctl calibrate`: the experiment's phases run with no fault)
// measured for this probe and phase: the statistical check deviated in `falseAlarms` of `runs`.
struct CalibratedRate {
  size_t runs = 0;
  size_t falseAlarms = 0;
  std::string source;  // the calibration file
};

struct BaselineCheck {
  // What was asked (BaselineTolerance).
  BaselineTest test = BaselineTest::kBlocks;
  double quantile = 0.95;
  double alpha = 0.01;
  double minRelative = 0;
  Duration minAbsolute{0};
  MinEffectBy minEffectBy = MinEffectBy::kEstimate;
  std::string control;  // the reference is this probe's samples of the same phase; empty: before

  // The reference (the before phase, or the control's same phase) and the threshold.
  size_t baselineCount = 0;   // m
  size_t rank = 0;            // r: the reference quantile is its r-th smallest latency
  Duration threshold{0};      // the reference quantile
  Duration phaseQuantile{0};  // the phase's quantile (nearest rank)

  // The exceedance count: k of the phase's n samples strictly above the threshold (raised by
  // the minimum effect, threshold * (1 + minRelative) + minAbsolute, when minEffectBy is kBound).
  size_t count = 0;        // n: samples in this phase
  size_t exceedances = 0;  // k
  double expected = 0;     // n * (m - r + 1) / (m + 1): the mean of k when nothing changed
  double pValue = 1;       // P(K >= k) when nothing changed (exact for exchangeable samples)

  // The effect: phaseQuantile / threshold - 1 (0.2: 20% slower), and its two-sided 1 - 2 alpha
  // confidence interval from the moving-block bootstrap (the one-sided 1 - alpha lower bound is
  // effectLow); the same for the difference in time. The count test does not resample: its
  // interval is the point itself (resamples 0), its evidence the P-value.
  double effect = 0;
  double effectLow = 0;
  double effectHigh = 0;
  Duration difference{0};
  Duration differenceLow{0};
  Duration differenceHigh{0};
  size_t blockLength = 0;  // samples per bootstrap block
  size_t resamples = 0;

  bool deviated = false;
  std::optional<CalibratedRate> calibration;  // when the run was given one
};

// A stream metric's percentiles over a phase (nanoseconds, or events per second for the rate).
struct StreamPercentiles {
  size_t count = 0;  // values the percentiles are taken over
  double p5 = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
};

// One tolerance stream bound, checked.
struct StreamCheck {
  StreamMetric metric = StreamMetric::kFirstEvent;
  double percentile = 95;
  double observed = 0;  // 0 with no values
  Comparison bound;
  bool held = false;
};

// What the phase's streamed responses showed. firstByte and firstEvent: one value a sample, a
// failed sample (or a streamed one that never got there) counting as at least the timeout, as
// for latency. eventGap: every gap of every sample, pooled (a token's wait is a token's wait,
// whichever answer it was in). eventRate: one a sample with two events or more, a failed sample
// counting as 0 events per second.
struct StreamFigures {
  size_t streamed = 0;  // samples whose response was streamed
  StreamPercentiles firstByte;
  StreamPercentiles firstEvent;
  StreamPercentiles eventGap;
  StreamPercentiles eventRate;
  std::vector<StreamCheck> checks;  // one per tolerance stream bound
};

struct PhaseVerdict {
  std::string probe;
  Phase phase = Phase::kBefore;
  bool held = false;
  std::vector<std::string> reasons;  // empty when held

  size_t count = 0;
  size_t passed = 0;
  double availability = 0;  // passed / count; 0 when count is 0
  Comparison successRate;   // the requirement applied (default >= 1)
  bool successRateHeld = false;

  // Nearest-rank percentiles of the effective latency; zero when count is 0.
  Duration p50{0};
  Duration p95{0};
  Duration p99{0};
  std::vector<LatencyCheck> latency;      // one per tolerance.latency bound
  std::optional<BaselineCheck> baseline;  // when the statistical mode ran
  // When a sample was streamed or the tolerance bounds a stream metric.
  std::optional<StreamFigures> stream;

  // The first failing sample of the phase, for time-to-detect and the report.
  std::optional<std::chrono::system_clock::time_point> firstFailureWall;
  std::optional<Clock::TimePoint> firstFailure;
  std::string firstFailureDetail;
};

// Judges one phase of one probe. `samples` are that phase's samples in the order taken.
// `baseline` is the baseline (before) phase's samples: pass them for the during and after
// phases of a probe with tolerance.baseline; without them (nullopt, e.g. when judging the
// before phase itself) the statistical check is skipped. An empty baseline fails the check.
PhaseVerdict judgePhase(const ProbeSpec& spec, Phase phase, std::span<const ProbeSample> samples,
                        std::optional<std::span<const ProbeSample>> baseline = std::nullopt);

// The latency a sample counts for: its duration, or at least `timeout` when it failed.
Duration effectiveLatency(const ProbeSample& sample, Duration timeout);

// The first failing sample that started at or after `since`; nullptr when none. Time to
// detect a fault = firstFailure(samples, applied)->start - applied.
const ProbeSample* firstFailure(std::span<const ProbeSample> samples, Clock::TimePoint since);

// How many passing samples in a row count as recovered.
inline constexpr size_t kRecoverySamples = 3;

// The first sample of the first run of k consecutive passing samples that started at or
// after `since`; nullptr when there is none yet (a run cut short by the end of the samples
// does not count). Samples must be in the order taken. Time to recover from a fault =
// recoveredAt(samples, reverted)->start - reverted.
const ProbeSample* recoveredAt(std::span<const ProbeSample> samples, Clock::TimePoint since,
                               size_t k = kRecoverySamples);

// A stream metric's value in words: a latency, or "12.5/s" for the rate.
std::string formatStreamValue(StreamMetric metric, double value);

// A latency with three significant digits and a unit: "850us", "3.1ms", "412ms", "1.5s".
std::string formatLatency(Duration d);

}  // namespace chaosd
