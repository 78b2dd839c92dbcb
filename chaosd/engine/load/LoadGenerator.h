#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/engine/load/LoadReport.h"

// `load:` the open-loop generator. Request i is due at the i-th arrival of the schedule (a
// constant λ, or steps), whatever became of the requests before it: a slow or stalled server
// does not slow the arrivals (a closed loop, N clients each waiting for its answer, would send
// less exactly when the server is slow and hide the stall: coordinated omission). Each
// request's latency is measured from its due time, as wrk2, k6's constant-arrival-rate and
// vegeta do. One thread drives a libcurl multi handle: requests on kept-alive connections, as
// many at once as are due, up to maxInFlight (a request due beyond it is dropped and counted).
namespace chaosd {

class LoadGenerator {
 public:
  explicit LoadGenerator(LoadSpec spec);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Starts the schedule now (time 0 of the steps). kInvalid when libcurl refuses the request.
  Result<void> start();
  // A phase begins or ends now: its window for the report.
  void phaseStarted(Phase phase);
  void phaseEnded(Phase phase);
  // Stops sending and waits for the requests in flight, at most the timeout; any still open
  // then is abandoned (recorded as unfinished).
  void stop();
  // After stop(): every request's record, and the report of the phases' windows.
  const std::vector<LoadRecord>& records() const { return records_; }
  LoadReport report() const;
  // Nanoseconds since start().
  int64_t now() const;

  struct Loop;  // the thread's libcurl state; opaque

 private:
  void run();

  LoadSpec spec_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<LoadRecord> records_;  // the thread's until it is joined
  std::unique_ptr<Loop> loop_;
  mutable std::mutex mu_;
  std::vector<LoadWindow> windows_;
};

}  // namespace chaosd
