// `chaosctl calibrate FILE --runs N`: an A/A test of the statistical mode. The experiment runs N
// times as `chaosctl run` would run it (journal, guardian, run folder, exec targets) but with
// every fault replaced by a pause of its length, so whatever the statistical check calls a
// deviation is a false alarm. The rate it measured, with its interval and the drift seen, goes
// to a calibration file that `chaosctl run --calibration` carries into a run's verdicts.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/RunSupport.h"
#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Sha256.h"
#include "chaosd/engine/CalibrationFile.h"

namespace chaosd::cli {
namespace {

constexpr size_t kMaxRuns = 1000;

struct CalibrateOptions {
  CommonOptions common;
  VarOptions vars;
  std::string file;
  std::string stateDir;
  std::string reportDir;
  std::string out;
  size_t runs = 20;
};

bool parseCalibrateOptions(const std::vector<std::string>& args, CalibrateOptions& o, int& code) {
  po::options_description desc("chaosctl calibrate options");
  desc.add_options()("file", po::value(&o.file)->required(), "the experiment file")(
      "runs", po::value(&o.runs)->default_value(20), "how many runs, each with no fault")(
      "report-dir", po::value(&o.reportDir),
      "where the calibration folder goes (default: report.dir)")(
      "out", po::value(&o.out),
      "the calibration file (default: calibration.json in the calibration folder)");
  addStateDirOption(desc, o.stateDir);
  addVarOptions(desc, o.vars);
  addCommonOptions(desc, o.common);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  code = kExitOk;
  if (!parseArgs("chaosctl calibrate [options] FILE", desc, pos, args, vm, code)) return false;
  code = kExitInvalid;
  if (o.runs == 0 || o.runs > kMaxRuns) {
    std::cerr << "chaosctl calibrate: --runs " << o.runs << " is not 1.." << kMaxRuns << "\n";
    return false;
  }
  return applyCommonOptions(o.common);
}

// The run in progress, so that a signal stops it (after its faults are reverted: none here)
// and no further run starts.
class CalibrationStop {
 public:
  void request(const std::string& why) {
    std::lock_guard lock(mu_);
    if (!reason_) reason_ = why;
    if (current_ != nullptr) current_->requestAbort(why);
  }
  void setCurrent(OwnedRun* run) {
    std::lock_guard lock(mu_);
    current_ = run;
    if (run != nullptr && reason_) run->requestAbort(*reason_);
  }
  bool requested() const {
    std::lock_guard lock(mu_);
    return reason_.has_value();
  }

 private:
  mutable std::mutex mu_;
  OwnedRun* current_ = nullptr;
  std::optional<std::string> reason_;
};

struct CalibrationContext {
  const Experiment& experiment;  // without faults
  const CalibrateOptions& options;
  FaultJournal& journal;
  std::string folder;
  std::FILE* progress;  // stdout, or stderr when stdout is JSON
  CalibrationStop stop;
};

std::string runLine(size_t i, size_t n, const OwnedRunResult& r) {
  std::string line = "run " + std::to_string(i) + " of " + std::to_string(n) + ": ";
  auto alarms = falseAlarmsOf(r.run);
  if (!alarms.empty()) {
    line += "false alarm: ";
    for (size_t k = 0; k < alarms.size(); ++k) line += (k ? ", " : "") + alarms[k];
  } else {
    line += "no false alarm";
  }
  if (r.run.outcome != Outcome::kOk && alarms.empty() && !r.run.reasons.empty()) {
    line += "; " + std::string(outcomeName(r.run.outcome)) + ": " + r.run.reasons.front();
  }
  return line + " (" + r.runDir + ")";
}

std::string runDirName(size_t i, size_t n) {
  const size_t width = std::max<size_t>(2, std::to_string(n).size());
  std::string digits = std::to_string(i);
  return "run-" + std::string(width - std::min(width, digits.size()), '0') + digits;
}

// Runs the experiment without faults, run by run; the exit code that stops the calibration
// (3 aborted, 4 leftovers, 5 runtime error) or 0 when every run finished.
int runAll(CalibrationContext& ctx, std::vector<RunResult>& results) {
  const size_t n = ctx.options.runs;
  for (size_t i = 1; i <= n; ++i) {
    if (ctx.stop.requested()) return kExitAborted;
    OwnedRunConfig config;
    config.journal = &ctx.journal;
    config.registry = &builtinRegistry();
    config.runId = newRunId();
    config.runDir = ctx.folder + "/" + runDirName(i, n);
    config.guardian.logLevel = ctx.options.common.logLevel;
    OwnedRun run(ctx.experiment, std::move(config));
    ctx.stop.setCurrent(&run);
    auto result = run.run();
    ctx.stop.setCurrent(nullptr);
    if (!result) {
      std::fprintf(stderr, "chaosctl calibrate: run %zu of %zu: %s\n", i, n,
                   result.error().describe().c_str());
      return kExitRuntimeError;
    }
    std::fprintf(ctx.progress, "%s\n", runLine(i, n, *result).c_str());
    std::fflush(ctx.progress);
    const int code = result->exitCode();
    if (code > kExitDeviated) {
      std::fprintf(stderr, "chaosctl calibrate: run %zu of %zu ended %s (exit %d); stopping\n", i,
                   n, std::string(outcomeName(result->run.outcome)).c_str(), code);
      for (const auto& why : result->run.reasons) std::fprintf(stderr, "  - %s\n", why.c_str());
      return result->reportError ? kExitRuntimeError : code;
    }
    results.push_back(std::move(result->run));
  }
  return kExitOk;
}

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * x);
  return buf;
}

std::string signedPercent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", 100 * x);
  return buf;
}

void printTable(const CalibrationFile& file, const std::string& path) {
  std::printf("\ncalibration of %s: %zu runs, no fault injected\n", file.experiment.c_str(),
              file.runs);
  int w = 5;
  for (const auto& c : file.phases) w = std::max(w, static_cast<int>(c.probe.size()));
  std::printf("%-*s  %-6s  %4s  %6s  %6s  %-15s  %6s  %7s  %8s  %8s  %8s\n", w, "probe", "phase",
              "runs", "alarms", "rate", "95% interval", "alpha", "allowed", "drift-md", "drift-mx",
              "not-held");
  for (const auto& c : file.phases) {
    const std::string interval =
        "[" + percent(c.interval.low) + ", " + percent(c.interval.high) + "]";
    std::printf("%-*s  %-6s  %4zu  %6zu  %6s  %-15s  %6s  %7zu  %8s  %8s  %8zu%s\n", w,
                c.probe.c_str(), c.phase.c_str(), c.runs, c.falseAlarms, percent(c.rate).c_str(),
                interval.c_str(), percent(c.nominal).c_str(), c.allowed,
                signedPercent(c.driftMedian).c_str(), signedPercent(c.driftMax).c_str(), c.notHeld,
                c.exceeded && c.phase != "both" ? "  ABOVE ALPHA" : "");
  }
  for (const auto& c : file.phases) {
    if (!c.exceeded || c.phase == "both") continue;
    std::printf(
        "above alpha: %s %s deviated in %zu of %zu runs with no fault; alpha %s allows "
        "at most %zu\n",
        c.probe.c_str(), c.phase.c_str(), c.falseAlarms, c.runs, percent(c.alpha).c_str(),
        c.allowed);
  }
  std::printf("within alpha: %s\ncalibration file: %s\n", file.withinAlpha() ? "yes" : "no",
              path.c_str());
}

// The experiment's statistical probes; an empty list when it has none to calibrate.
bool hasStatisticalPhase(const Experiment& exp) {
  for (const auto& p : exp.steadyState.probes) {
    if (!p.tolerance.baseline) continue;
    for (Phase ph : p.phases) {
      if (ph != Phase::kBefore) return true;
    }
  }
  return false;
}

CalibrationFile calibrationOf(const Experiment& exp, const std::string& experimentFile,
                              const std::vector<RunResult>& results) {
  CalibrationFile file;
  file.experiment = exp.metadata.name;
  std::error_code ec;
  auto absolute = std::filesystem::absolute(experimentFile, ec);
  file.experimentFile = ec ? experimentFile : absolute.lexically_normal().string();
  file.experimentSha256 = sha256File(experimentFile).valueOr(std::string());
  file.created = utcStamp(/*iso=*/true);
  file.runs = results.size();
  file.phases = aggregateCalibration(exp, results);
  return file;
}

}  // namespace

int calibrateCommand(const std::vector<std::string>& args) {
  CalibrateOptions o;
  int code = kExitOk;
  if (!parseCalibrateOptions(args, o, code)) return code;
  auto parsed = loadExperiment("calibrate", o.file, o.vars);
  if (!parsed) return kExitInvalid;
  const Experiment& original = *parsed->experiment;
  if (!hasStatisticalPhase(original)) {
    std::cerr << "chaosctl calibrate: " << o.file
              << ": no probe has tolerance.baseline in its during or after phase: nothing to "
                 "calibrate\n";
    return kExitInvalid;
  }
  const Experiment aa = withoutFaults(original);
  auto journal = openStateJournal(o.stateDir);
  if (!journal) {
    std::cerr << "chaosctl calibrate: " << journal.error().describe() << "\n";
    return kExitRuntimeError;
  }
  recoverLeftovers(*journal);
  const std::string folder = (o.reportDir.empty() ? original.report.dir : o.reportDir) + "/" +
                             original.metadata.name + "-calibration-" + utcStamp();
  CalibrationContext ctx{aa, o, *journal, folder, o.common.json() ? stderr : stdout, {}};
  std::fprintf(ctx.progress, "chaosctl: calibrating %s: %zu runs with no fault, in %s\n",
               original.metadata.name.c_str(), o.runs, folder.c_str());
  std::fflush(ctx.progress);
  std::vector<RunResult> results;
  {
    StopSignals signals([&ctx](const std::string& why) { ctx.stop.request(why); });
    code = runAll(ctx, results);
  }
  if (code != kExitOk) {
    std::fprintf(stderr,
                 "chaosctl calibrate: stopped after %zu of %zu runs; no calibration "
                 "file written\n",
                 results.size(), o.runs);
    return code;
  }
  CalibrationFile file = calibrationOf(original, o.file, results);
  const std::string path = o.out.empty() ? folder + "/calibration.json" : o.out;
  if (auto written = writeCalibrationFile(file, path); !written) {
    std::cerr << "chaosctl calibrate: " << written.error().describe() << "\n";
    return kExitRuntimeError;
  }
  if (o.common.json()) {
    nlohmann::json doc = calibrationJson(file);
    doc["calibrationFile"] = path;
    doc["folder"] = folder;
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    printTable(file, path);
  }
  return file.withinAlpha() ? kExitOk : kExitDeviated;
}

}  // namespace chaosd::cli
