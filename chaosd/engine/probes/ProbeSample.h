#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "chaosd/base/Clock.h"
#include "chaosd/engine/probes/StreamTiming.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// One observation of one probe: when it started, how long it took, whether it passed the
// per-sample tolerance and what was seen.
struct ProbeSample {
  std::string probe;  // ProbeSpec::name
  Phase phase = Phase::kBefore;
  std::chrono::system_clock::time_point wallStart;  // for reports
  Clock::TimePoint start;                           // monotonic; for time-to-detect/recover
  Duration duration{0};                             // the latency of this sample
  bool ok = false;
  // Why it failed, or what was observed when it passed: "status 503 (expected in 200..299)",
  // "connect 127.0.0.1:8080: Connection refused", "timeout after 1s",
  // "exit 1, stdout did not match /ok/", "status 200".
  std::string detail;
  // The observed scalar where there is one: HTTP status, exit code, process count,
  // Prometheus value.
  std::optional<double> value;
  // http: how a streamed response's body and events arrived (chunked or text/event-stream).
  std::optional<StreamTiming> stream;
};

}  // namespace chaosd
