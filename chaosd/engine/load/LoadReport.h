#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"

// What the open-loop load generator did, and the capacity figures of each phase: the offered
// arrival rate, what was achieved, the latency from each request's intended send time, the
// mean number in flight measured directly, and Little's law set beside it. Pure: built from
// the requests' records, so it is unit-tested without a server. docs/experiment-format.md#load.
namespace chaosd {

// One request of the generator. Times are nanoseconds from the generator's start.
struct LoadRecord {
  int64_t intended = 0;    // when it was due: i-th arrival of the schedule
  int64_t sent = -1;       // when it was handed to the HTTP client; -1: never (dropped)
  int64_t firstByte = -1;  // its first response body byte; -1: none
  int64_t completed = 0;   // answered, failed, or the generator stopped (unfinished)
  long status = 0;         // 0: no response
  std::string error;       // "" when a response came; else why not (the first words of it)
  // A streamed answer (text/event-stream, NDJSON): its events as StreamEventSplitter splits
  // them, times from the generator's start as above; none for a plain answer.
  int64_t firstEvent = -1;  // the end of its first event (TTFT); -1: no event
  int64_t lastEvent = -1;   // of its last
  uint32_t events = 0;
  std::vector<int64_t> gaps;  // between consecutive events' ends (TPOT), at most kMaxGaps
  static constexpr size_t kMaxGaps = 1024;
};

// A phase's window in the generator's time.
struct LoadWindow {
  Phase phase = Phase::kBefore;
  int64_t begin = 0;
  int64_t end = 0;
};

struct LoadPhase {
  Phase phase = Phase::kBefore;
  double seconds = 0;      // the window's length
  uint64_t due = 0;        // requests whose intended time fell in the window
  uint64_t sent = 0;       // of those, sent (the rest were dropped at maxInFlight)
  uint64_t ok = 0;         // answered with a status the tolerance accepts (2xx by default)
  uint64_t errors = 0;     // due - ok: dropped, transport errors, other statuses, unfinished
  double offeredRate = 0;  // λ asked: due / seconds
  double sentRate = 0;     // sent / seconds: the arrival rate achieved
  double throughput = 0;   // ok / seconds
  // Latency from the intended send time to completion (coordinated omission corrected: a
  // stalled server delays every request due during the stall, and each counts its wait). A
  // dropped request counts as the timeout.
  int64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  int64_t firstByteP50 = 0, firstByteP99 = 0;  // for the requests that got a body byte
  // Streamed answers (LoadRecord's events): how many, and from the intended send time the first
  // event (TTFT; a failed request counts as the timeout), the gaps between events (TPOT) and
  // each answer's events per second after its first. Zero when none was streamed.
  uint64_t streamed = 0;
  int64_t firstEventP50 = 0, firstEventP99 = 0;
  int64_t eventGapP50 = 0, eventGapP99 = 0;
  double eventRateP50 = 0;
  double meanLatency = 0;  // W in seconds, over the requests due in the window
  double inFlight = 0;     // L: the time-average of requests in flight (intended..completed)
  double littleLw = 0;     // λ·W with λ = due / seconds
  double littleRatio = 0;  // L / (λ·W); 1 when Little's law holds over the window
  std::map<std::string, uint64_t> errorKinds;  // "status 503", "timeout", "dropped", ...
  bool judged = false;                         // the load has a tolerance
  bool held = true;
  std::vector<std::string> reasons;
  std::optional<double> utilisation;  // ρ = offered λ / μ, when the capacity ramp measured μ
};

// One step of the capacity ramp (load.capacity): the load at `rate` for the step's length,
// judged by the load's tolerance. `figures.phase` is kBefore (the ramp runs before it).
struct LoadCapacityStep {
  double rate = 0;
  LoadPhase figures;
};

// What the capacity ramp measured. μ is the throughput of the last step that held; the true
// capacity lies between it and the first rate that broke (or above it, when none broke).
struct LoadCapacity {
  LoadCapacitySpec spec;
  std::vector<LoadCapacityStep> steps;
  std::optional<double> capacity;  // μ; none when the first step already broke
  std::optional<double> brokeAt;   // the first rate whose step broke the tolerance
  bool stopped = false;            // the run was aborted during the ramp
};

struct LoadReport {
  std::string name;
  std::string url;
  std::string method;
  double rate = 0;              // the constant λ, or 0 with steps
  std::vector<LoadStep> steps;  // as asked
  uint64_t requests = 0;        // generated in all
  int64_t lateness99 = 0;       // p99 of sent - intended: how late the generator itself was
  std::vector<LoadPhase> phases;
  std::optional<LoadCapacity> capacity;  // the ramp before the baseline, when asked for
};

// Sets each phase's utilisation ρ = offered λ / μ from the ramp's μ (none without one).
void setUtilisation(LoadReport& report);

// The phases' figures from the records and windows. `tolerance` decides which statuses are ok
// (status; 2xx by default) and, when it has successRate or latency bounds, whether each phase
// held. `timeout` is what a dropped request counts as.
LoadReport summariseLoad(const LoadSpec& spec, const std::vector<LoadRecord>& records,
                         const std::vector<LoadWindow>& windows, int64_t timeout);

// "status 503", "timeout", "connect: Connection refused", "dropped (maxInFlight)": a record's
// error kind; "" for an accepted answer.
std::string loadErrorKind(const LoadRecord& record, bool statusAccepted);

}  // namespace chaosd
