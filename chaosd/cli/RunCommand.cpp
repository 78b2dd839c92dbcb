#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "chaosd/cli/Cli.h"
#include "chaosd/cli/Progress.h"
#include "chaosd/core/ExitCode.h"
#include "chaosd/core/Log.h"
#include "chaosd/engine/Engine.h"
#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Impact.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/Rollbacks.h"
#include "chaosd/engine/TargetKeys.h"
#include "chaosd/engine/TargetResolution.h"
#include "chaosd/probes/Verdict.h"
#include "reports/ReportFiles.h"
#include "reports/ReportJson.h"

namespace chaosd::cli {
namespace {

// SIGINT/SIGTERM become a byte on a pipe; a thread turns it into Engine::requestAbort. No
// signal mask is changed, so child processes (probes, rollbacks) start with the usual one.
int gSignalPipe[2] = {-1, -1};

extern "C" void onStopSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &b, 1);
}

class StopSignals {
 public:
  explicit StopSignals(Engine& engine) {
    if (::pipe2(gSignalPipe, O_CLOEXEC) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &oldInt_);
    ::sigaction(SIGTERM, &sa, &oldTerm_);
    thread_ = std::thread([&engine] {
      unsigned char b = 0;
      while (::read(gSignalPipe[0], &b, 1) == 1 && b != 0) {
        std::string name = b == SIGINT ? "SIGINT" : b == SIGTERM ? "SIGTERM" : "signal";
        std::fprintf(stderr, "\nchaosctl: %s: stopping; reverting every fault first\n",
                     name.c_str());
        engine.requestAbort("interrupted by " + name);
      }
    });
  }
  ~StopSignals() {
    if (thread_.joinable()) {
      unsigned char zero = 0;
      [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &zero, 1);
      thread_.join();
    }
    ::sigaction(SIGINT, &oldInt_, nullptr);
    ::sigaction(SIGTERM, &oldTerm_, nullptr);
  }

 private:
  std::thread thread_;
  struct sigaction oldInt_ {};
  struct sigaction oldTerm_ {};
};

std::string newRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

std::string runFolderName(const std::string& name, const std::string& runId) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  return name + "-" + stamp + "-" + runId.substr(0, 8);
}

Result<FaultJournal> openStateJournal(const std::string& stateDir) {
  std::error_code ec;
  std::filesystem::create_directories(stateDir, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot create state dir " + stateDir + ": " + ec.message());
  ::chmod(stateDir.c_str(), 0700);
  return openJournal(stateDir + "/journal.db");
}

// One line per fault and probe that noticed it: the time to detect and to recover.
void printImpacts(const RunResult& result) {
  bool header = false;
  for (const auto& f : result.faults) {
    for (const auto& i : f.impact) {
      if (!i.detected) continue;
      if (!header) {
        std::printf("impact (time to detect after apply, time to recover after revert):\n");
        header = true;
      }
      std::string line = "  " + f.step + " (" + f.type + ") -> probe " + i.probe + ": failed " +
                         formatLatency(i.detectedAfter) + " after apply (" + i.detail + "); ";
      line += i.recovered ? "recovered " + formatLatency(i.recoveredAfter) + " after revert"
                          : "did not recover before the run ended";
      std::printf("%s\n", line.c_str());
    }
  }
  if (!header && !result.faults.empty()) {
    std::printf("impact: no probe failed while a fault was held\n");
  }
}

}  // namespace

void addStateDirOption(po::options_description& desc, std::string& stateDir) {
  desc.add_options()("state-dir", po::value(&stateDir)->default_value("/var/lib/chaosd"),
                     "where the fault journal lives");
}

int runCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl run options");
  CommonOptions common;
  VarOptions varOpts;
  std::string file;
  std::string stateDir;
  std::string reportDir;
  desc.add_options()("file", po::value(&file)->required(), "the experiment file")(
      "report-dir", po::value(&reportDir), "where the run folder goes (default: report.dir)");
  addStateDirOption(desc, stateDir);
  addVarOptions(desc, varOpts);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl run [options] FILE", desc, pos, args, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto parsed = loadExperiment("run", file, varOpts);
  if (!parsed) return kExitInvalid;
  const Experiment& exp = *parsed->experiment;

  auto journal = openStateJournal(stateDir);
  if (!journal) {
    std::cerr << "chaosctl run: " << journal.error().describe() << "\n";
    return kExitRuntimeError;
  }
  // What an earlier run left behind (its owner and guardian died, the machine rebooted) is
  // reverted now, as the daemon does at its start; faults of live owners are left alone.
  if (auto left = recoverAll(*journal, builtinRegistry(), RecoveryFilter{"", false, "recovery"});
      !left) {
    log::get("run")->warn("recovering earlier leftovers: {}", left.error().describe());
  } else {
    for (const auto& o : left->outcomes) {
      if (o.reverted) {
        std::printf("chaosctl: reverted %s (%s %s), left by run %s whose owner is gone\n",
                    o.fault.faultId.c_str(), o.fault.faultType.c_str(), o.fault.target.c_str(),
                    o.fault.runId.c_str());
      } else {
        std::fprintf(stderr, "chaosctl: could not revert %s (%s %s) left by run %s: %s\n",
                     o.fault.faultId.c_str(), o.fault.faultType.c_str(), o.fault.target.c_str(),
                     o.fault.runId.c_str(), o.error.c_str());
      }
    }
  }
  std::string runId = newRunId();
  // Named once, at the start: the run's folder (exec logs go there early, the reports last).
  const std::string runDir = (reportDir.empty() ? exp.report.dir : reportDir) + "/" +
                             runFolderName(exp.metadata.name, runId);
  auto start = selfStartTime();
  // The run's targets go into the journal with it: another run (here or in the daemon) that
  // holds one of them refuses this one, before anything is applied.
  std::vector<TargetKey> targets;
  {
    auto table = ProcessTable::scan();
    targets = targetKeys(exp, table ? &*table : nullptr);
  }
  auto begun = journal->beginRun(
      RunRecord{runId, exp.metadata.name, ::getpid(), start ? *start : 0,
                std::chrono::system_clock::now(), std::nullopt, "", std::move(targets)},
      journalOwnerAlive);
  if (!begun && begun.error().code() == ErrorCode::kConflict) {
    std::cerr << "chaosctl run: " << begun.error().describe()
              << "\nchaosctl run: nothing applied\n";
    return kExitRuntimeError;
  }
  if (!begun) {
    std::cerr << "chaosctl run: journal: " << begun.error().describe() << "\n";
    return kExitRuntimeError;
  }
  GuardianConfig gc;
  gc.journalPath = journal->path();
  gc.runId = runId;
  gc.logLevel = common.logLevel;
  auto guardian = startGuardian(gc);
  if (!guardian) {
    std::cerr << "chaosctl run: cannot start the guardian: " << guardian.error().describe()
              << "\nchaosctl run: no fault is applied without a guardian\n";
    (void)journal->endRun(runId, "error");
    return kExitRuntimeError;
  }

  RealClock clock;
  RealWaiter waiter(clock);
  ProgressPrinter progress(stdout);
  EngineDeps deps;
  deps.clock = &clock;
  deps.waiter = &waiter;
  deps.registry = &builtinRegistry();
  deps.journal = &*journal;
  deps.guardian = &*guardian;
  deps.makeProbe = [&clock](const ProbeSpec& spec) { return makeProbe(spec, clock); };
  deps.makeRunner = [](std::vector<std::unique_ptr<Probe>> probes, ProbeRunner::Deliver d) {
    return std::make_unique<ThreadedProbeRunner>(std::move(probes), std::move(d));
  };
  deps.runRollback = runRollbackCommand;
  deps.observer = &progress;
  // Exec targets write their output into the run folder, next to the report.
  for (const auto& t : exp.targets) {
    if (t.kind != TargetKind::kExec) continue;
    deps.execLogDir = runDir;
    std::error_code ec;
    std::filesystem::create_directories(deps.execLogDir, ec);
    if (ec) deps.execLogDir.clear();  // the output is lost, the run goes on
    break;
  }
  deps.checkTarget = [&exp](const TargetSpec& t) {
    auto table = ProcessTable::scan();
    ResolveContext ctx;
    if (table) ctx.processes = &*table;
    ctx.protection.selfPid = ::getpid();
    ctx.protection.invokerPid = ::getpid();
    ResolvedTarget r = resolveTarget(t, exp.guardrails, ctx);
    if (r.usable) return std::vector<std::string>{};
    return r.problems;
  };

  std::printf("chaosctl: running %s (run %s)\n", exp.metadata.name.c_str(), runId.c_str());
  std::fflush(stdout);
  RunResult result;
  {
    Engine engine(exp, deps, runId);
    StopSignals stop(engine);
    result = engine.run();
  }

  std::string dir = runDir;
  const nlohmann::json reportDoc = reportJson(exp, result);
  auto written = writeReportJson(reportDoc, dir);
  // The other reports come from the same document; a failure to write one is reported, and
  // neither hides the verdict nor changes the exit code (report.json is the record).
  std::vector<report::WrittenFile> reports;
  if (written) reports = report::writeReportFiles(reportDoc, dir, report::allFormats());
  (void)journal->endRun(runId, outcomeName(result.outcome));
  auto finished = guardian->finish();
  if (!finished) log::get("run")->warn("guardian: {}", finished.error().describe());

  std::printf("\nverdict: %s (exit %d)\n", std::string(outcomeName(result.outcome)).c_str(),
              result.exitCode());
  for (const auto& r : result.reasons) std::printf("  - %s\n", r.c_str());
  printImpacts(result);
  if (written) {
    std::printf("run folder: %s\n", dir.c_str());
    for (const auto& w : reports) {
      if (w.error) {
        std::fprintf(stderr, "chaosctl run: cannot write %s: %s\n", w.path.c_str(),
                     w.error->describe().c_str());
      } else if (w.format == report::ReportFormat::kHtml) {
        std::printf("report: %s\n", w.path.c_str());
      }
    }
  } else {
    std::fprintf(stderr, "chaosctl run: cannot write the report: %s\n",
                 written.error().describe().c_str());
    return worse(result.outcome, Outcome::kError) == Outcome::kError ? kExitRuntimeError
                                                                     : result.exitCode();
  }
  return result.exitCode();
}

}  // namespace chaosd::cli
