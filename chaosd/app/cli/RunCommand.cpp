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

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/Progress.h"
#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/Impact.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/probes/Verdict.h"
#include "reports/ReportFiles.h"

namespace chaosd::cli {
namespace {

// SIGINT/SIGTERM become a byte on a pipe; a thread turns it into OwnedRun::requestAbort. No
// signal mask is changed, so child processes (probes, rollbacks) start with the usual one.
int gSignalPipe[2] = {-1, -1};

extern "C" void onStopSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &b, 1);
}

class StopSignals {
 public:
  explicit StopSignals(OwnedRun& run) {
    if (::pipe2(gSignalPipe, O_CLOEXEC) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &oldInt_);
    ::sigaction(SIGTERM, &sa, &oldTerm_);
    thread_ = std::thread([&run] {
      unsigned char b = 0;
      while (::read(gSignalPipe[0], &b, 1) == 1 && b != 0) {
        std::string name = b == SIGINT ? "SIGINT" : b == SIGTERM ? "SIGTERM" : "signal";
        std::fprintf(stderr, "\nchaosctl: %s: stopping; reverting every fault first\n",
                     name.c_str());
        run.requestAbort("interrupted by " + name);
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

// What an earlier run left behind (its owner and guardian died, the machine rebooted) is
// reverted before a run begins, as the daemon does at its start; faults of live owners are
// left alone.
void recoverLeftovers(FaultJournal& journal) {
  auto left = recoverAll(journal, builtinRegistry(), RecoveryFilter{"", false, "recovery"});
  if (!left) {
    log::get("run")->warn("recovering earlier leftovers: {}", left.error().describe());
    return;
  }
  for (const auto& o : left->outcomes) {
    const auto& f = o.fault;
    if (o.reverted) {
      std::printf("chaosctl: reverted %s (%s %s), left by run %s whose owner is gone\n",
                  f.faultId.c_str(), f.faultType.c_str(), f.target.c_str(), f.runId.c_str());
    } else {
      std::fprintf(stderr, "chaosctl: could not revert %s (%s %s) left by run %s: %s\n",
                   f.faultId.c_str(), f.faultType.c_str(), f.target.c_str(), f.runId.c_str(),
                   o.error.c_str());
    }
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
};

// false (and the exit code) when the command line is not a run's.
bool parseRunOptions(const std::vector<std::string>& args, RunOptions& o, int& code) {
  po::options_description desc("chaosctl run options");
  desc.add_options()("file", po::value(&o.file)->required(), "the experiment file")(
      "report-dir", po::value(&o.reportDir), "where the run folder goes (default: report.dir)");
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
  OwnedRun run(exp, std::move(config));
  std::printf("chaosctl: running %s (run %s)\n", exp.metadata.name.c_str(), runId.c_str());
  std::fflush(stdout);
  Result<OwnedRunResult> result = [&run] {
    StopSignals stop(run);
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
