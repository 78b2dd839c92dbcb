#include "chaosd/app/daemon/RunPool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <random>
#include <tuple>

#include "chaosd/app/daemon/Access.h"
#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/Sha256.h"
#include "chaosd/base/StartAt.h"
#include "chaosd/engine/Recovery.h"
#include "experiments/parser/ExperimentParser.h"
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
double epochMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

class LiveProgress final : public EngineObserver {
 public:
  LiveProgress(Metrics& metrics, std::shared_ptr<RunEvents> events)
      : metrics_(metrics), events_(std::move(events)) {}

  void phaseStarted(Phase phase, Duration length) override {
    const auto now = std::chrono::system_clock::now();
    events_->append({{"type", "phase"},
                     {"phase", std::string(phaseName(phase))},
                     {"at", epochMs(now)},
                     {"seconds", std::chrono::duration<double>(length).count()}});
    std::lock_guard lock(mu_);
    phase_ = std::string(phaseName(phase));
    phaseStarted_ = now;
    phaseLength_ = length;
  }
  void phaseEnded(Phase phase, const std::vector<PhaseVerdict>& verdicts) override {
    nlohmann::json vs = nlohmann::json::array();
    for (const auto& v : verdicts) {
      vs.push_back({{"probe", v.probe},
                    {"held", v.held},
                    {"count", v.count},
                    {"passed", v.passed},
                    {"reasons", v.reasons}});
    }
    events_->append({{"type", "phaseEnded"},
                     {"phase", std::string(phaseName(phase))},
                     {"at", epochMs(std::chrono::system_clock::now())},
                     {"verdicts", vs}});
    std::lock_guard lock(mu_);
    note("phase " + std::string(phaseName(phase)) + " ended");
  }
  void faultApplied(const FaultRecordOut& f) override {
    feed(f);
    update(f);
  }
  void faultReverted(const FaultRecordOut& f) override {
    if (f.state == FaultState::kRevertFailed) metrics_.revertFailed();
    feed(f);
    update(f);
  }
  void sample(const ProbeSample& s) override {
    metrics_.probeSample(s.ok);
    nlohmann::json e = {{"type", "sample"},
                        {"probe", s.probe},
                        {"phase", std::string(phaseName(s.phase))},
                        {"at", epochMs(s.wallStart)},
                        {"ms", std::chrono::duration<double, std::milli>(s.duration).count()},
                        {"ok", s.ok},
                        {"detail", s.detail}};
    if (s.value) e["value"] = *s.value;
    events_->append(std::move(e));
    std::lock_guard lock(mu_);
    auto& p = probes_[s.probe];
    ++p.samples;
    if (!s.ok) {
      ++p.failures;
      p.lastFailure = s.detail;
    }
  }
  void message(const std::string& line) override {
    events_->append(
        {{"type", "message"}, {"at", epochMs(std::chrono::system_clock::now())}, {"line", line}});
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
  void feed(const FaultRecordOut& f) {
    events_->append({{"type", "fault"},
                     {"id", f.faultId},
                     {"step", f.step},
                     {"fault", f.type},
                     {"target", f.description.empty() ? f.target : f.description},
                     {"state", std::string(faultStateName(f.state))},
                     {"at", epochMs(std::chrono::system_clock::now())},
                     {"error", f.error}});
  }
  void update(const FaultRecordOut& f) {
    std::lock_guard lock(mu_);
    faults_[f.faultId] = {f.step, f.type, f.description.empty() ? f.target : f.description,
                          std::string(faultStateName(f.state))};
  }
  void note(std::string line) {
    messages_.push_back(std::move(line));
    while (messages_.size() > 20) messages_.pop_front();
  }

  Metrics& metrics_;
  std::shared_ptr<RunEvents> events_;
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
  std::unique_ptr<Experiment> experiment;
  std::shared_ptr<RunEvents> events = std::make_shared<RunEvents>();
  std::unique_ptr<LiveProgress> progress;
  std::unique_ptr<OwnedRun> owned;  // its targets, abort, and the run itself
  std::chrono::system_clock::time_point submittedAt;
  nlohmann::json caller = nlohmann::json::object();
};

RunPool::RunPool(FaultJournal& journal, const FaultRegistry& registry, Metrics& metrics,
                 RunPoolConfig config)
    : journal_(journal), registry_(registry), metrics_(metrics), config_(std::move(config)) {}

RunPool::~RunPool() { shutdown("the daemon is stopping"); }

std::string RunPool::runDir(const std::string& runId) const {
  return config_.stateDir + "/runs/" + runId;
}

std::optional<Error> RunPool::conflictWithActive(const Active& run) const {
  for (const auto& [otherId, other] : active_) {
    for (const auto& mine : run.owned->targets()) {
      for (const auto& theirs : other->owned->targets()) {
        if (!keysOverlap(mine.key, theirs.key)) continue;
        return Error(ErrorCode::kConflict, "target '" + mine.target + "' (" + mine.what +
                                               ") is in use by run " + otherId + " (" +
                                               other->experiment->metadata.name + ", target '" +
                                               theirs.target + "': " + theirs.what + ")");
      }
    }
  }
  return std::nullopt;
}

std::string experimentHash(const std::string& yaml,
                           const std::map<std::string, std::string>& vars) {
  std::string all = yaml;
  for (const auto& [k, v] : vars) all += "\n" + k + "=" + v;
  return sha256Hex(all);
}

std::variant<Submitted, SubmitRefusal> RunPool::submit(const SubmitRequest& request) {
  const std::string hash = experimentHash(request.yaml, request.vars);
  auto result = admit(request, hash);
  // The audit trail: every submission, accepted or refused, with who asked.
  AuditRecord a;
  a.action = request.source.starts_with("schedule:") ? "schedule-run" : "submit";
  a.uid = request.caller ? request.caller->uid : ::getuid();
  a.pid = request.invokerPid;
  a.experimentHash = hash;
  if (request.source.starts_with("schedule:")) a.scheduleId = request.source.substr(9);
  if (auto* ok = std::get_if<Submitted>(&result)) {
    a.result = "accepted";
    a.runId = ok->runId;
  } else {
    auto& refused = std::get<SubmitRefusal>(result);
    refused.experimentHash = hash;
    a.result = "refused";
    a.detail = refused.error.describe();
    if (refused.error.code() == ErrorCode::kPermission) metrics_.refused(a.action);
  }
  if (auto written = journal_.audit(a); !written) {
    log::get("audit")->error("audit line not journalled action={} error=\"{}\"", a.action,
                             written.error().describe());
  }
  log::get("audit")->info("{} {} uid={} pid={} hash={} run={} detail=\"{}\"", a.action, a.result,
                          a.uid, a.pid, hash.substr(0, 12), a.runId, a.detail);
  return result;
}

std::variant<Submitted, SubmitRefusal> RunPool::admit(const SubmitRequest& request,
                                                      const std::string& hash) {
  ParseOptions options;
  options.vars = request.vars;
  options.registry = &registry_;
  ParseResult parsed = parseExperimentText(request.yaml, request.fileName, options);
  if (!parsed.ok()) {
    SubmitRefusal refusal{Error(ErrorCode::kInvalid, "the experiment is not valid"), {}, hash};
    for (const auto& d : parsed.diagnostics) refusal.diagnostics.push_back(d.str());
    return refusal;
  }
  // The policy before anything else: a refused experiment resolves no target and applies
  // nothing. Root callers and the daemon itself are not checked.
  const bool asCaller = request.caller && !request.caller->isRoot();
  if (asCaller && config_.policy != nullptr) {
    auto policy = config_.policy->current();
    PolicyDecision decision = checkExperiment(*policy, *request.caller, *parsed.experiment);
    if (!decision.allowed) {
      return SubmitRefusal{
          Error(ErrorCode::kPermission, "refused by policy: " + decision.reason), {}, hash};
    }
    // The grants' limits over the experiment's own guardrails.
    auto& g = parsed.experiment->guardrails;
    if (decision.maxTargets) g.maxTargets = std::min(g.maxTargets, *decision.maxTargets);
    if (decision.maxDuration) g.maxDuration = std::min(g.maxDuration, *decision.maxDuration);
  }
  auto run = std::make_shared<Active>();
  run->runId = newRunId();
  run->source = request.source;
  run->experiment = std::make_unique<Experiment>(std::move(*parsed.experiment));
  run->progress = std::make_unique<LiveProgress>(metrics_, run->events);
  run->submittedAt = std::chrono::system_clock::now();
  OwnedRunConfig config{.journal = &journal_,
                        .registry = &registry_,
                        .runId = run->runId,
                        .runDir = runDir(run->runId),
                        .guardian = {},
                        .invokerPid = request.invokerPid,
                        .runAs = asCaller ? request.caller : std::nullopt,
                        .caller = nlohmann::json::object(),
                        .observer = run->progress.get(),
                        .onEnded =
                            [this, id = run->runId, events = run->events](Outcome outcome) {
                              // Counted, and out of the active set, as the journal records the
                              // end: a client that sees the run ended sees it in /metrics and may
                              // submit on its targets at once.
                              metrics_.runFinished(outcome);
                              events->end(std::string(outcomeName(outcome)));
                              finished(id);
                            },
                        .beforeReport = {},
                        .startAt = request.startAt};
  if (request.caller) {
    config.caller = callerJson(*request.caller, request.invokerPid);
    config.caller["experimentHash"] = hash;
    config.caller["source"] = request.source;
  }
  run->caller = config.caller;
  config.guardian.logLevel = config_.logLevel;
  config.guardian.executable = config_.guardianExecutable;
  config.guardian.leadingArgs = config_.guardianArgs;
  run->owned = std::make_unique<OwnedRun>(*run->experiment, std::move(config));

  std::lock_guard lock(mu_);
  if (!accepting_) {
    return SubmitRefusal{
        Error(ErrorCode::kAborted, "the daemon is stopping; no new runs"), {}, hash};
  }
  // Runs of others (`chaosctl run`, another daemon on the same state dir) are in the journal;
  // beginRun checks again atomically when the run starts.
  if (auto free = journal_.checkTargetsFree(run->owned->targets(), journalOwnerAlive); !free) {
    return SubmitRefusal{std::move(free).error(), {}, hash};
  }
  if (auto conflict = conflictWithActive(*run)) {
    return SubmitRefusal{std::move(*conflict), {}, hash};
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
  Submitted out{run->runId, run->experiment->metadata.name, hash};
  threads_.emplace_back([this, run] { execute(run); });
  log::get("runs")->info("run submitted run={} experiment={} source={} startAt={}", run->runId,
                         run->experiment->metadata.name, run->source,
                         request.startAt ? formatStartAt(*request.startAt) : "-");
  return out;
}

void RunPool::execute(std::shared_ptr<Active> run) {
  auto logger = log::get("runs");
  const std::string& name = run->experiment->metadata.name;
  logger->info("run started run={} experiment={}", run->runId, name);
  auto result = run->owned->run();
  if (!result) {
    // Nothing was applied; the run folder says why, as a report.json with outcome error.
    const std::string why = result.error().describe();
    logger->error("run failed to start run={} error=\"{}\"", run->runId, why);
    nlohmann::json doc = {
        {"runId", run->runId}, {"experiment", name}, {"outcome", "error"}, {"reasons", {why}}};
    (void)writeReportJson(doc, runDir(run->runId));
    metrics_.runFinished(Outcome::kError);
    run->events->append({{"type", "message"}, {"line", why}});
    run->events->end("error");
    finished(run->runId);
    return;
  }
  if (result->reportError) {
    logger->error("report.json not written run={} error=\"{}\"", run->runId,
                  result->reportError->describe());
  }
  for (const auto& w : result->reports) {
    if (w.error)
      logger->warn("report not written path={} error=\"{}\"", w.path, w.error->describe());
  }
  std::string reasons;
  for (const auto& r : result->run.reasons) reasons += (reasons.empty() ? "" : "; ") + r;
  logger->info("run ended run={} experiment={} outcome={} exit={} reasons=\"{}\"", run->runId, name,
               outcomeName(result->run.outcome), result->run.exitCode(), reasons);
  pruneHistory(journal_, config_.retention, config_.stateDir);
}

void pruneHistory(FaultJournal& journal, const Retention& retention, const std::string& stateDir) {
  auto logger = log::get("runs");
  // Batches until nothing is left to prune: a first start with a long history trims it all.
  for (;;) {
    auto pruned = journal.prune(retention, std::chrono::system_clock::now());
    if (!pruned) {
      logger->warn("journal not pruned error=\"{}\"", pruned.error().describe());
      return;
    }
    for (const auto& id : pruned->runs) {
      if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") continue;
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(stateDir) / "runs" / id, ec);
      if (ec) logger->warn("run folder not removed run={} error=\"{}\"", id, ec.message());
    }
    if (!pruned->runs.empty() || pruned->auditLines > 0) {
      logger->info("journal pruned runs={} faults={} audit_lines={}", pruned->runs.size(),
                   pruned->faults, pruned->auditLines);
    }
    if (pruned->runs.size() < 500) return;
  }
}

void RunPool::finished(const std::string& runId) {
  std::lock_guard lock(mu_);
  if (auto it = active_.find(runId); it != active_.end()) {
    // Kept a little after the end, so a live view that reconnects then still gets the end.
    endedFeeds_.emplace_back(runId, it->second->events);
    while (endedFeeds_.size() > 16) endedFeeds_.pop_front();
  }
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
  j["experiment"] = run->experiment->metadata.name;
  j["source"] = run->source;
  j["submittedAt"] = isoTime(run->submittedAt);
  if (!run->caller.empty()) j["caller"] = run->caller;
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : run->owned->targets()) {
    keys.push_back({{"target", k.target}, {"what", k.what}});
  }
  j["targets"] = keys;
  if (auto reason = run->owned->abortReason()) j["aborting"] = *reason;
  return j;
}

std::shared_ptr<const RunEvents> RunPool::events(const std::string& runId) const {
  std::lock_guard lock(mu_);
  if (auto it = active_.find(runId); it != active_.end()) return it->second->events;
  for (const auto& [id, feed] : endedFeeds_) {
    if (id == runId) return feed;
  }
  return nullptr;
}

std::optional<nlohmann::json> RunPool::caller(const std::string& runId) const {
  std::lock_guard lock(mu_);
  auto it = active_.find(runId);
  if (it == active_.end()) return std::nullopt;
  return it->second->caller;
}

Result<void> RunPool::abort(const std::string& runId, const std::string& reason) {
  std::shared_ptr<Active> run;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(runId);
    if (it == active_.end()) return Error(ErrorCode::kNotFound, "run " + runId + " is not running");
    run = it->second;
  }
  run->owned->requestAbort(reason);
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

std::vector<std::string> RunPool::activeIds() const {
  std::vector<std::shared_ptr<Active>> runs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, run] : active_) runs.push_back(run);
  }
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return std::tie(a->submittedAt, a->runId) > std::tie(b->submittedAt, b->runId);
  });
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r->runId);
  return out;
}

bool RunPool::waitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, timeout, [this] { return active_.empty(); });
}

}  // namespace chaosd::daemon
