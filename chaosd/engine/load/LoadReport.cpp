#include "chaosd/engine/load/LoadReport.h"

#include <algorithm>
#include <cmath>

#include "chaosd/engine/probes/Statistics.h"
#include "chaosd/engine/probes/ValueMatcher.h"
#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {
namespace {

int64_t percentileOf(std::vector<double>& values, double p) {
  return static_cast<int64_t>(stats::percentile(values, p).value_or(0));
}

ValueMatch defaultStatus() {
  ValueMatch m;
  m.kind = ValueMatch::Kind::kRange;
  m.low = 200;
  m.high = 299;
  return m;
}

// The values of a stream metric over a phase's requests (docs/experiment-format.md#load):
// durations in nanoseconds from the intended send time, the rate in events per second.
struct StreamValues {
  std::vector<double> of[4];  // by StreamMetric
};

void judge(const LoadSpec& spec, LoadPhase& p, const StreamValues& stream) {
  const Tolerance& t = spec.tolerance;
  p.judged = t.successRate.has_value() || !t.latency.empty() || !t.stream.empty();
  if (!p.judged) return;
  if (p.due == 0) {
    p.reasons.push_back("no request was due in the " + std::string(phaseName(p.phase)) + " phase");
  }
  const double share = p.due ? static_cast<double>(p.ok) / static_cast<double>(p.due) : 0;
  const Comparison rate = t.successRate.value_or(Comparison{CompareOp::kGe, 1.0});
  if (p.due > 0 && !rate.holds(share)) {
    p.reasons.push_back("load success rate " + formatNumber(share) + " does not hold " +
                        rate.describe() + " (" + std::to_string(p.ok) + " of " +
                        std::to_string(p.due) + " requests)");
  }
  for (const auto& bound : t.latency) {
    // The common percentiles are kept; another is judged against the nearest one above it.
    const double q = bound.percentile;
    const int64_t seen = q <= 50 ? p.p50 : q <= 90 ? p.p90 : q <= 99 ? p.p99 : p.p999;
    if (!bound.bound.holds(static_cast<double>(seen))) {
      p.reasons.push_back("load p" + formatNumber(q) + " latency " + formatLatency(Duration(seen)) +
                          " does not hold " +
                          bound.bound.describe().substr(0, bound.bound.describe().find(' ')) + " " +
                          formatLatency(Duration(static_cast<int64_t>(bound.bound.value))));
    }
  }
  for (const auto& bound : t.stream) {
    const auto& values = stream.of[static_cast<int>(bound.metric)];
    const std::string name = "load p" + formatNumber(bound.percentile) + " " +
                             std::string(streamMetricName(bound.metric));
    if (values.empty()) {
      p.reasons.push_back(name + ": no request measured it (no streamed answer)");
      continue;
    }
    const double seen = stats::percentile(values, bound.percentile).value_or(0);
    if (!bound.bound.holds(seen)) {
      const std::string op = bound.bound.describe().substr(0, bound.bound.describe().find(' '));
      p.reasons.push_back(name + " " + formatStreamValue(bound.metric, seen) + " does not hold " +
                          op + " " + formatStreamValue(bound.metric, bound.bound.value));
    }
  }
  p.held = p.reasons.empty();
}

}  // namespace

std::string loadErrorKind(const LoadRecord& r, bool statusAccepted) {
  if (r.sent < 0) return "dropped (maxInFlight)";
  if (!r.error.empty()) return r.error;
  if (r.status == 0) return "no response";
  return statusAccepted ? "" : "status " + std::to_string(r.status);
}

LoadReport summariseLoad(const LoadSpec& spec, const std::vector<LoadRecord>& records,
                         const std::vector<LoadWindow>& windows, int64_t timeout) {
  LoadReport out;
  out.name = spec.name;
  out.url = spec.http.url;
  out.method = spec.http.method;
  out.rate = spec.rate;
  out.steps = spec.steps;
  out.requests = records.size();
  std::vector<double> lateness;
  for (const auto& r : records) {
    if (r.sent >= 0) lateness.push_back(static_cast<double>(r.sent - r.intended));
  }
  out.lateness99 = percentileOf(lateness, 99);

  auto status = ValueMatcher::create(spec.tolerance.status.value_or(defaultStatus()), "status");
  for (const auto& w : windows) {
    LoadPhase p;
    p.phase = w.phase;
    const int64_t length = std::max<int64_t>(w.end - w.begin, 1);
    p.seconds = static_cast<double>(length) / 1e9;
    std::vector<double> latencies;
    std::vector<double> firstBytes;
    double inSystem = 0;  // the integral of the in-flight count over the window, in ns
    double totalLatency = 0;
    StreamValues stream;
    auto& firstEvents = stream.of[static_cast<int>(StreamMetric::kFirstEvent)];
    auto& gaps = stream.of[static_cast<int>(StreamMetric::kEventGap)];
    auto& rates = stream.of[static_cast<int>(StreamMetric::kEventRate)];
    std::vector<double> failedFirst;  // the failed requests, counted as the timeout
    for (const auto& r : records) {
      // Every request overlapping the window counts towards L, whenever it was due.
      const int64_t from = std::max(r.intended, w.begin);
      const int64_t to = std::min(r.completed, w.end);
      if (to > from) inSystem += static_cast<double>(to - from);
      if (r.intended < w.begin || r.intended >= w.end) continue;
      ++p.due;
      if (r.sent >= 0) ++p.sent;
      const bool accepted = r.sent >= 0 && r.error.empty() && r.status != 0 && status.ok() &&
                            status->matches(static_cast<double>(r.status));
      if (accepted) ++p.ok;
      const std::string kind = loadErrorKind(r, accepted);
      if (!kind.empty()) ++p.errorKinds[kind];
      const int64_t latency = r.sent < 0 ? timeout : r.completed - r.intended;
      latencies.push_back(static_cast<double>(latency));
      totalLatency += static_cast<double>(latency);
      if (r.firstByte >= 0) firstBytes.push_back(static_cast<double>(r.firstByte - r.intended));
      if (r.events > 0) {
        ++p.streamed;
        const int64_t firstEvent = r.firstEvent - r.intended;
        firstEvents.push_back(
            static_cast<double>(accepted ? firstEvent : std::max(firstEvent, timeout)));
        for (const int64_t g : r.gaps) gaps.push_back(static_cast<double>(g));
        if (!accepted) {
          rates.push_back(0);
        } else if (r.events > 1 && r.lastEvent > r.firstEvent) {
          rates.push_back(static_cast<double>(r.events - 1) * 1e9 /
                          static_cast<double>(r.lastEvent - r.firstEvent));
        }
      } else if (!accepted) {
        failedFirst.push_back(static_cast<double>(std::max(latency, timeout)));
      }
    }
    // Failed requests count for the first byte and event only beside streamed ones (a load of
    // plain answers has no stream figures), or when the tolerance bounds them.
    auto& firstBytesJudged = stream.of[static_cast<int>(StreamMetric::kFirstByte)];
    firstBytesJudged = firstBytes;
    if (p.streamed > 0 || !spec.tolerance.stream.empty()) {
      firstEvents.insert(firstEvents.end(), failedFirst.begin(), failedFirst.end());
      firstBytesJudged.insert(firstBytesJudged.end(), failedFirst.begin(), failedFirst.end());
      rates.insert(rates.end(), failedFirst.size(), 0.0);
    }
    p.errors = p.due - p.ok;
    p.offeredRate = static_cast<double>(p.due) / p.seconds;
    p.sentRate = static_cast<double>(p.sent) / p.seconds;
    p.throughput = static_cast<double>(p.ok) / p.seconds;
    p.p50 = percentileOf(latencies, 50);
    p.p90 = percentileOf(latencies, 90);
    p.p99 = percentileOf(latencies, 99);
    p.p999 = percentileOf(latencies, 99.9);
    p.max = latencies.empty()
                ? 0
                : static_cast<int64_t>(*std::max_element(latencies.begin(), latencies.end()));
    p.firstByteP50 = percentileOf(firstBytes, 50);
    p.firstByteP99 = percentileOf(firstBytes, 99);
    p.meanLatency = p.due ? totalLatency / static_cast<double>(p.due) / 1e9 : 0;
    p.inFlight = inSystem / static_cast<double>(length);
    p.littleLw = p.offeredRate * p.meanLatency;
    p.littleRatio = p.littleLw > 0 ? p.inFlight / p.littleLw : 0;
    p.firstEventP50 = percentileOf(firstEvents, 50);
    p.firstEventP99 = percentileOf(firstEvents, 99);
    p.eventGapP50 = percentileOf(gaps, 50);
    p.eventGapP99 = percentileOf(gaps, 99);
    p.eventRateP50 = stats::percentile(rates, 50).value_or(0);
    judge(spec, p, stream);
    out.phases.push_back(std::move(p));
  }
  return out;
}

void setUtilisation(LoadReport& report) {
  if (!report.capacity || !report.capacity->capacity || *report.capacity->capacity <= 0) return;
  for (auto& p : report.phases) p.utilisation = p.offeredRate / *report.capacity->capacity;
}

}  // namespace chaosd
