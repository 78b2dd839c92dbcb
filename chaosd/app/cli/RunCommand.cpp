#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/Progress.h"
#include "chaosd/app/cli/RunSupport.h"
#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/StartAt.h"
#include "chaosd/engine/CalibrationFile.h"
#include "chaosd/engine/Impact.h"
#include "chaosd/engine/probes/Verdict.h"
#include "reports/ReportFiles.h"

namespace chaosd::cli {
namespace {

// How a probe showed a fault, for the impact line (ProbeImpact::by).
std::string detectedWords(const ProbeImpact& i) {
  if (i.by == "latency") return "over its latency bound";
  if (i.by == "baseline") return "deviated from its baseline";
  return "failed";
}

// One line per fault and probe that noticed it: the time to detect and to recover. A deviated
// run none of whose probes showed it while a fault was held (it failed for want of samples,
// or only in the after phase) says so rather than "no probe failed".
void printImpacts(const RunResult& result) {
  bool header = false;
  for (const auto& f : result.faults) {
    for (const auto& i : f.impact) {
      if (!i.detected) continue;
      if (!header) {
        std::printf("impact (time to detect after apply, time to recover after revert):\n");
        header = true;
      }
      std::string line = "  " + f.step + " (" + f.type + ") -> probe " + i.probe + ": " +
                         detectedWords(i) + " " + formatLatency(i.detectedAfter) +
                         " after apply (" + i.detail + "); ";
      line += i.recovered ? "recovered " + formatLatency(i.recoveredAfter) + " after revert"
                          : "did not recover before the run ended";
      std::printf("%s\n", line.c_str());
    }
  }
  const bool anyApplied =
      std::any_of(result.faults.begin(), result.faults.end(),
                  [](const FaultRecordOut& f) { return f.appliedAt.has_value(); });
  if (header || !anyApplied) return;  // nothing held: the reasons say why
  bool deviated = false;
  for (const auto& p : result.probes) {
    for (const auto& v : p.verdicts) deviated = deviated || !v.held;
  }
  if (deviated) {
    std::printf(
        "impact: no time to detect: no sample taken while a fault was held shows the deviation "
        "(see the reasons above)\n");
  } else {
    std::printf("impact: no probe failed while a fault was held\n");
  }
}

// The verdict, the impacts and where the reports went; the run's exit code.
int printOutcome(const OwnedRunResult& r) {
  std::printf("\nverdict: %s (exit %d)\n", std::string(outcomeName(r.run.outcome)).c_str(),
              r.run.exitCode());
  for (const auto& reason : r.run.reasons) std::printf("  - %s\n", reason.c_str());
  printImpacts(r.run);
  if (r.reportError) {
    std::fprintf(stderr, "chaosctl run: cannot write the report: %s\n",
                 r.reportError->describe().c_str());
    return r.exitCode();
  }
  std::printf("run folder: %s\n", r.runDir.c_str());
  for (const auto& w : r.reports) {
    if (w.error) {
      std::fprintf(stderr, "chaosctl run: cannot write %s: %s\n", w.path.c_str(),
                   w.error->describe().c_str());
    } else if (w.format == report::ReportFormat::kHtml) {
      std::printf("report: %s\n", w.path.c_str());
    }
  }
  return r.exitCode();
}

struct RunOptions {
  CommonOptions common;
  VarOptions vars;
  std::string file;
  std::string stateDir;
  std::string reportDir;
  std::string calibration;
  std::string startAt;
};

// false (and the exit code) when the command line is not a run's.
bool parseRunOptions(const std::vector<std::string>& args, RunOptions& o, int& code) {
  po::options_description desc("chaosctl run options");
  desc.add_options()("file", po::value(&o.file)->required(), "the experiment file")(
      "report-dir", po::value(&o.reportDir), "where the run folder goes (default: report.dir)")(
      "calibration", po::value(&o.calibration),
      "a calibration file of this experiment (chaosctl calibrate): its measured false-alarm "
      "rates go into the statistical verdicts")(
      "start-at", po::value(&o.startAt),
      "a synchronised start (RFC 3339, e.g. 2026-05-01T10:00:00Z): the method begins at that "
      "instant, the baseline runs until then");
  addStateDirOption(desc, o.stateDir);
  addVarOptions(desc, o.vars);
  addCommonOptions(desc, o.common);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  code = kExitOk;
  if (!parseArgs("chaosctl run [options] FILE", desc, pos, args, vm, code)) return false;
  if (applyCommonOptions(o.common)) return true;
  code = kExitInvalid;
  return false;
}

}  // namespace

void addStateDirOption(po::options_description& desc, std::string& stateDir) {
  desc.add_options()("state-dir", po::value(&stateDir)->default_value("/var/lib/chaosd"),
                     "where the fault journal lives");
}

int runCommand(const std::vector<std::string>& args) {
  RunOptions o;
  int code = kExitOk;
  if (!parseRunOptions(args, o, code)) return code;
  auto parsed = loadExperiment("run", o.file, o.vars);
  if (!parsed) return kExitInvalid;
  const Experiment& exp = *parsed->experiment;
  std::optional<WallClock> startAt;
  if (!o.startAt.empty()) {
    auto at = parseStartAt(o.startAt);
    Result<void> ok =
        at ? checkStartAt(*at, std::chrono::system_clock::now()) : Result<void>(at.error());
    if (!ok) {
      std::cerr << "chaosctl run: --start-at: " << ok.error().message()
                << "\nchaosctl run: nothing was run\n";
      return kExitInvalid;
    }
    startAt = *at;
  }
  std::optional<CalibrationFile> calibration;
  if (!o.calibration.empty()) {
    auto loaded = loadCalibrationFile(o.calibration, exp.metadata.name);
    if (!loaded) {
      std::cerr << "chaosctl run: --calibration: " << loaded.error().describe()
                << "\nchaosctl run: nothing was run\n";
      return kExitInvalid;
    }
    calibration = std::move(*loaded);
    // The verdicts name the file absolutely: the report is read elsewhere, later.
    std::error_code ec;
    auto absolute = std::filesystem::absolute(o.calibration, ec);
    if (!ec) o.calibration = absolute.lexically_normal().string();
  }
  auto journal = openStateJournal(o.stateDir);
  if (!journal) {
    std::cerr << "chaosctl run: " << journal.error().describe() << "\n";
    return kExitRuntimeError;
  }
  recoverLeftovers(*journal);
  const std::string runId = newRunId();
  ProgressPrinter progress(stdout);
  OwnedRunConfig config;
  config.journal = &*journal;
  config.registry = &builtinRegistry();
  config.runId = runId;
  config.runDir = (o.reportDir.empty() ? exp.report.dir : o.reportDir) + "/" +
                  runFolderName(exp.metadata.name, runId);
  config.observer = &progress;
  config.guardian.logLevel = o.common.logLevel;
  config.startAt = startAt;
  if (calibration) {
    config.beforeReport = [&calibration, &o](RunResult& r) {
      size_t n = applyCalibration(r, calibration->phases, o.calibration);
      std::printf("calibration: %zu probe phase(s) carry the false-alarm rate measured in %s\n", n,
                  o.calibration.c_str());
    };
  }
  OwnedRun run(exp, std::move(config));
  std::printf("chaosctl: running %s (run %s)\n", exp.metadata.name.c_str(), runId.c_str());
  std::fflush(stdout);
  Result<OwnedRunResult> result = [&run] {
    StopSignals stop([&run](const std::string& why) { run.requestAbort(why); });
    return run.run();
  }();
  if (!result) {
    std::cerr << "chaosctl run: " << result.error().describe()
              << "\nchaosctl run: nothing applied\n";
    return kExitRuntimeError;
  }
  return printOutcome(*result);
}

}  // namespace chaosd::cli
