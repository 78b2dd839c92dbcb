#include "chaosd/app/daemon/Metrics.h"

#include <cstdio>
#include <sstream>

namespace chaosd::daemon {
namespace {

double seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

std::string escapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Metrics::Metrics() : startedAt_(std::chrono::system_clock::now()) {}

void Metrics::runFinished(Outcome outcome) {
  std::lock_guard lock(mu_);
  ++runsByOutcome_[outcome];
}

void Metrics::probeSample(bool ok) {
  ++probeSamples_;
  if (!ok) ++probeFailures_;
}

void Metrics::revertFailed() { ++revertFailures_; }

void Metrics::refused(const std::string& action) {
  std::lock_guard lock(mu_);
  ++refusedByAction_[action];
}

void Metrics::scheduleFired(bool started) { ++(started ? scheduleStarted_ : scheduleSkipped_); }

std::string Metrics::render(const ScrapeState& state) const {
  std::ostringstream out;
  header(out, "chaosd_build_info", "gauge", "The running chaosd's version.");
  out << "chaosd_build_info{version=\"" << escapeLabel(CHAOSD_VERSION) << "\"} 1\n";
  header(out, "chaosd_start_time_seconds", "gauge", "When this daemon started (Unix time).");
  out << "chaosd_start_time_seconds " << number(seconds(startedAt_)) << "\n";

  header(out, "chaosd_faults_active", "gauge",
         "Faults held now (journalled, not reverted), by fault type, of every owner.");
  for (const auto& [type, n] : state.faultsActiveByType) {
    out << "chaosd_faults_active{type=\"" << escapeLabel(type) << "\"} " << n << "\n";
  }
  header(out, "chaosd_fault_active", "gauge",
         "Faults held now (journalled, not reverted) by run, step and fault type; a series "
         "exists while its fault window is open.");
  for (const auto& [key, n] : state.faultsActive) {
    const auto& [run, step, type] = key;
    out << "chaosd_fault_active{run=\"" << escapeLabel(run) << "\",step=\"" << escapeLabel(step)
        << "\",type=\"" << escapeLabel(type) << "\"} " << n << "\n";
  }
  header(out, "chaosd_runs_active", "gauge", "Experiments this daemon is running now.");
  out << "chaosd_runs_active " << state.runsActive << "\n";
  header(out, "chaosd_runs_total", "counter", "Runs this daemon finished, by outcome.");
  {
    std::lock_guard lock(mu_);
    for (Outcome outcome : kAllOutcomes) {
      auto it = runsByOutcome_.find(outcome);
      out << "chaosd_runs_total{outcome=\"" << outcomeName(outcome) << "\"} "
          << (it == runsByOutcome_.end() ? 0 : it->second) << "\n";
    }
  }
  header(out, "chaosd_probe_samples_total", "counter",
         "Probe samples taken by this daemon's runs.");
  out << "chaosd_probe_samples_total " << probeSamples_.load() << "\n";
  header(out, "chaosd_probe_failures_total", "counter",
         "Probe samples that failed their per-sample tolerance.");
  out << "chaosd_probe_failures_total " << probeFailures_.load() << "\n";
  header(out, "chaosd_revert_failures_total", "counter",
         "Fault reverts that failed (in runs and in recovery).");
  out << "chaosd_revert_failures_total " << revertFailures_.load() << "\n";
  header(out, "chaosd_refusals_total", "counter",
         "Requests refused by the access check or the policy, by action.");
  {
    std::lock_guard lock(mu_);
    if (refusedByAction_.empty()) out << "chaosd_refusals_total{action=\"submit\"} 0\n";
    for (const auto& [action, n] : refusedByAction_) {
      out << "chaosd_refusals_total{action=\"" << escapeLabel(action) << "\"} " << n << "\n";
    }
  }
  header(out, "chaosd_schedule_runs_total", "counter",
         "Scheduled times: a run started, or skipped (missed while down, refused).");
  out << "chaosd_schedule_runs_total{result=\"started\"} " << scheduleStarted_.load() << "\n";
  out << "chaosd_schedule_runs_total{result=\"skipped\"} " << scheduleSkipped_.load() << "\n";
  header(out, "chaosd_schedule_next_run_timestamp_seconds", "gauge",
         "When each active schedule starts its next run (Unix time).");
  for (const auto& s : state.schedules) {
    if (s.paused || !s.nextRun) continue;
    out << "chaosd_schedule_next_run_timestamp_seconds{schedule=\"" << escapeLabel(s.id)
        << "\",name=\"" << escapeLabel(s.name) << "\"} " << number(seconds(*s.nextRun)) << "\n";
  }
  return out.str();
}

}  // namespace chaosd::daemon
