#include "chaosd/daemon/RunPool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <random>

#include "chaosd/core/Log.h"
#include "chaosd/engine/Engine.h"
#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/Rollbacks.h"
#include "chaosd/engine/TargetResolution.h"
#include "chaosd/probes/Probe.h"
#include "experiments/parser/ExperimentParser.h"
#include "reports/ReportFiles.h"
#include "reports/ReportJson.h"

namespace chaosd::daemon {
namespace {

std::string newRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// What a run is doing now, for GET /v1/runs/{id}; also feeds the daemon's counters.
class LiveProgress final : public EngineObserver {
 public:
  explicit LiveProgress(Metrics& metrics) : metrics_(metrics) {}

  void phaseStarted(Phase phase, Duration length) override {
    std::lock_guard lock(mu_);
    phase_ = std::string(phaseName(phase));
    phaseStarted_ = std::chrono::system_clock::now();
    phaseLength_ = length;
  }
  void phaseEnded(Phase phase, const std::vector<PhaseVerdict>& /*verdicts*/) override {
    std::lock_guard lock(mu_);
    note("phase " + std::string(phaseName(phase)) + " ended");
  }
  void faultApplied(const FaultRecordOut& f) override { update(f); }
  void faultReverted(const FaultRecordOut& f) override {
    if (f.state == "revert-failed") metrics_.revertFailed();
    update(f);
  }
  void sample(const ProbeSample& s) override {
    metrics_.probeSample(s.ok);
    std::lock_guard lock(mu_);
    auto& p = probes_[s.probe];
    ++p.samples;
    if (!s.ok) {
      ++p.failures;
      p.lastFailure = s.detail;
    }
  }
  void message(const std::string& line) override {
    std::lock_guard lock(mu_);
    note(line);
  }

  nlohmann::json toJson() const {
    std::lock_guard lock(mu_);
    nlohmann::json j;
    j["phase"] = phase_.empty() ? nlohmann::json("starting") : nlohmann::json(phase_);
    if (!phase_.empty()) {
      j["phaseStartedAt"] = isoTime(phaseStarted_);
      j["phaseSeconds"] = std::chrono::duration<double>(phaseLength_).count();
    }
    j["faults"] = nlohmann::json::array();
    for (const auto& [id, f] : faults_) {
      j["faults"].push_back({{"id", id},
                             {"step", f.step},
                             {"type", f.type},
                             {"target", f.target},
                             {"state", f.state}});
    }
    j["probes"] = nlohmann::json::object();
    for (const auto& [name, p] : probes_) {
      j["probes"][name] = {
          {"samples", p.samples}, {"failures", p.failures}, {"lastFailure", p.lastFailure}};
    }
    j["messages"] = nlohmann::json(std::vector<std::string>(messages_.begin(), messages_.end()));
    return j;
  }

 private:
  struct FaultLine {
    std::string step, type, target, state;
  };
  struct ProbeLine {
    uint64_t samples = 0;
    uint64_t failures = 0;
    std::string lastFailure;
  };
  void update(const FaultRecordOut& f) {
    std::lock_guard lock(mu_);
    faults_[f.faultId] = {f.step, f.type, f.description.empty() ? f.target : f.description,
                          f.state};
  }
  void note(std::string line) {
    messages_.push_back(std::move(line));
    while (messages_.size() > 20) messages_.pop_front();
  }

  Metrics& metrics_;
  mutable std::mutex mu_;
  std::string phase_;
  std::chrono::system_clock::time_point phaseStarted_{};
  Duration phaseLength_{0};
  std::map<std::string, FaultLine> faults_;
  std::map<std::string, ProbeLine> probes_;
  std::deque<std::string> messages_;
};

}  // namespace

struct RunPool::Active {
  std::string runId;
  std::string source;
  pid_t invokerPid = 0;
  std::unique_ptr<Experiment> experiment;
  std::vector<TargetKey> keys;
  std::unique_ptr<LiveProgress> progress;
  std::chrono::system_clock::time_point submittedAt;
  std::mutex mu;  // guards engine and abortReason
  Engine* engine = nullptr;
  std::optional<std::string> abortReason;
};

RunPool::RunPool(FaultJournal& journal, const FaultRegistry& registry, Metrics& metrics,
                 RunPoolConfig config)
    : journal_(journal), registry_(registry), metrics_(metrics), config_(std::move(config)) {}

RunPool::~RunPool() { shutdown("the daemon is stopping"); }

std::string RunPool::runDir(const std::string& runId) const {
  return config_.stateDir + "/runs/" + runId;
}

std::variant<Submitted, SubmitRefusal> RunPool::submit(const SubmitRequest& request) {
  ParseOptions options;
  options.vars = request.vars;
  options.registry = &registry_;
  ParseResult parsed = parseExperimentText(request.yaml, request.fileName, options);
  if (!parsed.ok()) {
    SubmitRefusal refusal{Error(ErrorCode::kInvalid, "the experiment is not valid"), {}};
    for (const auto& d : parsed.diagnostics) refusal.diagnostics.push_back(d.str());
    return refusal;
  }
  auto run = std::make_shared<Active>();
  run->runId = newRunId();
  run->source = request.source;
  run->invokerPid = request.invokerPid;
  run->experiment = std::make_unique<Experiment>(std::move(*parsed.experiment));
  run->progress = std::make_unique<LiveProgress>(metrics_);
  run->submittedAt = std::chrono::system_clock::now();
  auto table = ProcessTable::scan();
  run->keys = targetKeys(*run->experiment, table ? &*table : nullptr);

  std::lock_guard lock(mu_);
  if (!accepting_) {
    return SubmitRefusal{Error(ErrorCode::kAborted, "the daemon is stopping; no new runs"), {}};
  }
  // Runs of others (`chaosctl run`, another daemon on the same state dir) are in the journal;
  // beginRun checks again atomically when the run starts.
  if (auto free = journal_.checkTargetsFree(run->keys, journalOwnerAlive); !free) {
    return SubmitRefusal{std::move(free).error(), {}};
  }
  for (const auto& [otherId, other] : active_) {
    for (const auto& mine : run->keys) {
      for (const auto& theirs : other->keys) {
        if (!keysOverlap(mine.key, theirs.key)) continue;
        return SubmitRefusal{
            Error(ErrorCode::kConflict, "target '" + mine.target + "' (" + mine.what +
                                            ") is in use by run " + otherId + " (" +
                                            other->experiment->metadata.name + ", target '" +
                                            theirs.target + "': " + theirs.what + ")"),
            {}};
      }
    }
  }
  // Threads of runs that ended are joined here, so they do not pile up.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (std::find(done_.begin(), done_.end(), it->get_id()) != done_.end()) {
      done_.erase(std::find(done_.begin(), done_.end(), it->get_id()));
      it->join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  active_[run->runId] = run;
  Submitted out{run->runId, run->experiment->metadata.name};
  threads_.emplace_back([this, run] { execute(run); });
  log::get("runs")->info("run submitted run={} experiment={} source={}", run->runId,
                         run->experiment->metadata.name, run->source);
  return out;
}

void RunPool::execute(std::shared_ptr<Active> run) {
  auto logger = log::get("runs");
  const Experiment& exp = *run->experiment;
  const std::string dir = runDir(run->runId);
  std::string outcome = "error";
  auto end = [&](const std::string& why) {
    logger->error("run failed to start run={} error=\"{}\"", run->runId, why);
    nlohmann::json doc = {{"runId", run->runId},
                          {"experiment", exp.metadata.name},
                          {"outcome", "error"},
                          {"reasons", {why}}};
    (void)writeReportJson(doc, dir);
  };

  auto start = selfStartTime();
  auto begun =
      journal_.beginRun(RunRecord{run->runId, exp.metadata.name, ::getpid(), start ? *start : 0,
                                  std::chrono::system_clock::now(), std::nullopt, "", run->keys},
                        journalOwnerAlive);
  if (!begun) {
    end("journal: " + begun.error().describe());
    metrics_.runFinished(outcome);
    finished(run->runId);
    return;
  }
  GuardianConfig gc;
  gc.journalPath = journal_.path();
  gc.runId = run->runId;
  gc.logLevel = config_.logLevel;
  gc.executable = config_.guardianExecutable;
  gc.leadingArgs = config_.guardianArgs;
  auto guardian = startGuardian(gc);
  if (!guardian) {
    end("cannot start the guardian: " + guardian.error().describe() +
        "; no fault is applied without a guardian");
    (void)journal_.endRun(run->runId, "error");
    metrics_.runFinished(outcome);
    finished(run->runId);
    return;
  }

  RealClock clock;
  RealWaiter waiter(clock);
  EngineDeps deps;
  deps.clock = &clock;
  deps.waiter = &waiter;
  deps.registry = &registry_;
  deps.journal = &journal_;
  deps.guardian = &*guardian;
  deps.makeProbe = [&clock](const ProbeSpec& spec) { return makeProbe(spec, clock); };
  deps.makeRunner = [](std::vector<std::unique_ptr<Probe>> probes, ProbeRunner::Deliver d) {
    return std::make_unique<ThreadedProbeRunner>(std::move(probes), std::move(d));
  };
  deps.runRollback = runRollbackCommand;
  deps.observer = run->progress.get();
  for (const auto& t : exp.targets) {
    if (t.kind != TargetKind::kExec) continue;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (!ec) deps.execLogDir = dir;
    break;
  }
  const pid_t guardianPid = guardian->pid();
  const pid_t invoker = run->invokerPid > 0 ? run->invokerPid : ::getpid();
  deps.checkTarget = [&exp, guardianPid, invoker](const TargetSpec& t) {
    auto table = ProcessTable::scan();
    ResolveContext ctx;
    if (table) ctx.processes = &*table;
    ctx.protection.selfPid = ::getpid();
    ctx.protection.guardedPids.insert(guardianPid);
    ctx.protection.invokerPid = invoker;
    ResolvedTarget r = resolveTarget(t, exp.guardrails, ctx);
    if (r.usable) return std::vector<std::string>{};
    return r.problems;
  };

  logger->info("run started run={} experiment={} guardian={}", run->runId, exp.metadata.name,
               guardianPid);
  RunResult result;
  {
    Engine engine(exp, deps, run->runId);
    {
      std::lock_guard lock(run->mu);
      run->engine = &engine;
      if (run->abortReason) engine.requestAbort(*run->abortReason);
    }
    result = engine.run();
    std::lock_guard lock(run->mu);
    run->engine = nullptr;
  }
  const nlohmann::json reportDoc = reportJson(exp, result);
  auto written = writeReportJson(reportDoc, dir);
  if (written) {
    for (const auto& w : report::writeReportFiles(reportDoc, dir, report::allFormats())) {
      if (w.error)
        logger->warn("report not written path={} error=\"{}\"", w.path, w.error->describe());
    }
  } else {
    logger->error("report.json not written run={} error=\"{}\"", run->runId,
                  written.error().describe());
  }
  outcome = std::string(outcomeName(result.outcome));
  // Counted, and out of the active set (conflicts, abort), as the journal records the end: a
  // client that sees the run ended must see it in /metrics and may submit on its targets at
  // once (every fault is reverted by now; the guardian's exit below can take a while).
  (void)journal_.endRun(run->runId, outcome);
  metrics_.runFinished(outcome);
  finished(run->runId);
  auto done = guardian->finish();
  if (!done) logger->warn("guardian run={} error=\"{}\"", run->runId, done.error().describe());
  std::string reasons;
  for (const auto& r : result.reasons) reasons += (reasons.empty() ? "" : "; ") + r;
  logger->info("run ended run={} experiment={} outcome={} exit={} reasons=\"{}\"", run->runId,
               exp.metadata.name, outcome, result.exitCode(), reasons);
}

void RunPool::finished(const std::string& runId) {
  std::lock_guard lock(mu_);
  active_.erase(runId);
  done_.push_back(std::this_thread::get_id());
  idle_.notify_all();
}

std::optional<nlohmann::json> RunPool::progress(const std::string& runId) const {
  std::shared_ptr<Active> run;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(runId);
    if (it == active_.end()) return std::nullopt;
    run = it->second;
  }
  nlohmann::json j = run->progress->toJson();
  j["source"] = run->source;
  j["submittedAt"] = isoTime(run->submittedAt);
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : run->keys) keys.push_back({{"target", k.target}, {"what", k.what}});
  j["targets"] = keys;
  std::lock_guard lock(run->mu);
  if (run->abortReason) j["aborting"] = *run->abortReason;
  return j;
}

Result<void> RunPool::abort(const std::string& runId, const std::string& reason) {
  std::shared_ptr<Active> run;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(runId);
    if (it == active_.end()) return Error(ErrorCode::kNotFound, "run " + runId + " is not running");
    run = it->second;
  }
  std::lock_guard lock(run->mu);
  if (!run->abortReason) run->abortReason = reason;
  if (run->engine != nullptr) run->engine->requestAbort(reason);
  log::get("runs")->info("run abort requested run={} reason=\"{}\"", runId, reason);
  return success();
}

void RunPool::shutdown(const std::string& reason) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    for (const auto& [id, run] : active_) ids.push_back(id);
  }
  for (const auto& id : ids) (void)abort(id, reason);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

size_t RunPool::active() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

bool RunPool::waitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, timeout, [this] { return active_.empty(); });
}

}  // namespace chaosd::daemon
