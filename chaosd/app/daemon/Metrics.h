#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "chaosd/engine/States.h"

// The daemon's counters and the Prometheus text exposition (format 0.0.4) of them and of the
// gauges read at scrape time (faults held, schedules).
namespace chaosd::daemon {

struct ScheduleGauge {
  std::string id;
  std::string name;
  bool paused = false;
  std::optional<std::chrono::system_clock::time_point> nextRun;
};

struct ScrapeState {
  std::map<std::string, uint64_t> faultsActiveByType;  // from the journal, all owners
  // The same faults by (run, step, type): the fault windows a Grafana panel shades.
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> faultsActive;
  std::vector<ScheduleGauge> schedules;
  uint64_t runsActive = 0;
};

class Metrics {
 public:
  Metrics();

  void runFinished(Outcome outcome);
  void probeSample(bool ok);
  void revertFailed();
  void scheduleFired(bool started);  // false: missed or refused
  // A request the policy or the access check refused: "submit", "schedule", "abort",
  // "socket" (not root nor in the group), ...
  void refused(const std::string& action);

  // The whole exposition.
  std::string render(const ScrapeState& state) const;

 private:
  const std::chrono::system_clock::time_point startedAt_;
  mutable std::mutex mu_;
  std::map<Outcome, uint64_t> runsByOutcome_;
  std::map<std::string, uint64_t> refusedByAction_;
  std::atomic<uint64_t> probeSamples_{0};
  std::atomic<uint64_t> probeFailures_{0};
  std::atomic<uint64_t> revertFailures_{0};
  std::atomic<uint64_t> scheduleStarted_{0};
  std::atomic<uint64_t> scheduleSkipped_{0};
};

// A label value escaped for the text format (backslash, double quote, newline).
std::string escapeLabel(const std::string& value);

}  // namespace chaosd::daemon
