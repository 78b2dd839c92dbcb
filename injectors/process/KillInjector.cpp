#include "injectors/process/KillInjector.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "injectors/process/ProcessInjector.h"

namespace chaosd {
namespace {

using Clock = std::chrono::steady_clock;

// A pid seen for the first time is looked at again (full scans) for this long: a restart
// appears as a fork of the supervisor and matches the selector only once it has exec'd.
constexpr auto kYoungFor = std::chrono::seconds(2);

bool isStoppingSignal(int signal) {
  return signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU;
}

int64_t startTimeToBootNs(uint64_t ticks) {
  static const int64_t kNsPerTick = 1'000'000'000 / std::max<long>(1, ::sysconf(_SC_CLK_TCK));
  return static_cast<int64_t>(ticks) * kNsPerTick;
}

int pollTimeoutMs(Clock::time_point until) {
  auto left = until - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// A signalled victim whose death has not been seen yet.
struct Pending {
  Fd pidfd;
  size_t record = 0;  // index into Run::records
  Clock::time_point signalledAt;
};

}  // namespace

// One applied kill: its records, and the watch that goes on after apply() in a thread.
// Before the thread starts, apply() owns it; after, only the thread until it is joined.
struct KillInjector::Run {
  std::shared_ptr<ProcessKernel> kernel;
  ProcessPlan plan;
  Options options;
  Clock::time_point start;
  Clock::time_point end;             // the watch ends here at the latest
  std::vector<KillOutcome> records;  // one per victim (and interval round)
  std::vector<Pending> pending;
  size_t signalled = 0;
  size_t died = 0;
  // The restart watch: processes already matching, and pids recently appeared.
  bool watchRestarts = false;
  std::set<std::pair<pid_t, uint64_t>> known;
  std::set<pid_t> listed;
  std::map<pid_t, Clock::time_point> young;  // pid -> until when it is worth a scan
  Clock::time_point nextTick;
  Clock::time_point nextScan;
  std::vector<std::pair<int64_t, pid_t>> kills;  // (boot ns, pid) of every signal sent
  std::vector<RestartSeen> restarts;
  uint64_t nextRound = 1;
  Fd stopFd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::thread thread;

  bool isInterval() const { return plan.interval.count() > 0; }
  Clock::time_point roundAt(uint64_t k) const {
    return start + std::chrono::duration_cast<Clock::duration>(plan.interval) * k;
  }

  Result<void> signalOne(const Victim& victim, std::optional<uint64_t> round);
  bool waitEvents(Clock::time_point until, bool withStop = true);
  void absorb(const std::vector<ProcessInfo>& matches, bool asRestarts);
  void takeBaseline(const std::set<pid_t>& before);
  void watchTick(Clock::time_point now);
  void runRound(uint64_t round);
  bool finished() const;
  void watch();
  void finalLook();
  void rereadRestarts();
  nlohmann::json summary() const;
};

// Reaches the victim through a pidfd and signals it, unless it is gone or its pid reused.
// Errors are recorded and returned (EPERM); "gone" is recorded only.
Result<void> KillInjector::Run::signalOne(const Victim& victim, std::optional<uint64_t> round) {
  KillOutcome rec;
  rec.victim = victim;
  rec.round = round;
  auto reached = reachVictim(*kernel, victim);
  if (reached && reached->state == VictimState::kLive) {
    const auto at = Clock::now();
    const int64_t atBoot = kernel->bootTimeNs();
    auto sent = signalVictim(*kernel, reached->pidfd, plan.signal, victim);
    if (sent) {
      rec.outcome = "signalled";
      rec.signalledMs = millisBetween(start, at);
      records.push_back(std::move(rec));
      pending.push_back(Pending{std::move(reached->pidfd), records.size() - 1, at});
      kills.emplace_back(atBoot, victim.pid);
      known.insert({victim.pid, victim.startTime});
      ++signalled;
      return success();
    }
    if (sent.error().sysErrno() == ESRCH) {
      reached->state = VictimState::kExited;
    } else {
      reached = std::move(sent).error();
    }
  }
  if (!reached) {
    rec.outcome = "error: " + reached.error().describe();
    records.push_back(std::move(rec));
    return std::move(reached).error();
  }
  rec.outcome = std::string(victimStateText(reached->state));
  log::get("process")->info("not signalled fault={} pid={} start={} reason=\"{}\"", plan.faultId,
                            victim.pid, victim.startTime, victimStateText(reached->state));
  records.push_back(std::move(rec));
  return success();
}

// Waits until `until` for a victim to die or for revert's stop request; true on the latter.
bool KillInjector::Run::waitEvents(Clock::time_point until, bool withStop) {
  std::vector<pollfd> fds;
  fds.push_back(pollfd{withStop ? stopFd.get() : -1, POLLIN, 0});
  for (const Pending& p : pending) fds.push_back(pollfd{p.pidfd.get(), POLLIN, 0});
  int n = ::poll(fds.data(), fds.size(), pollTimeoutMs(until));
  if (n < 0) {
    if (errno != EINTR) {
      log::get("process")->warn("poll failed fault={} error=\"{}\"", plan.faultId,
                                std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  if ((fds[0].revents & POLLIN) != 0) return true;
  const auto now = Clock::now();
  for (size_t i = pending.size(); i-- > 0;) {
    if (fds[i + 1].revents == 0) continue;
    KillOutcome& rec = records[pending[i].record];
    rec.diedMs = millisBetween(start, now);
    rec.diedAfterSignalMs = millisBetween(pending[i].signalledAt, now);
    ++died;
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return false;
}

// Takes note of the processes matching now; those not seen before are restarts once
// something has died (else only the baseline).
void KillInjector::Run::absorb(const std::vector<ProcessInfo>& matches, bool asRestarts) {
  const auto now = Clock::now();
  for (const ProcessInfo& p : matches) {
    if (p.state == 'Z' || p.state == 'X') continue;
    young.erase(p.pid);
    if (!known.insert({p.pid, p.startTime}).second || !asRestarts) continue;
    const int64_t startedBoot = startTimeToBootNs(p.startTime);
    // The latest kill before it started (within a tick's rounding) is the one it replaces.
    const std::pair<int64_t, pid_t>* kill = kills.empty() ? nullptr : &kills.back();
    for (const auto& k : kills) {
      if (k.first <= startedBoot + startTimeToBootNs(1)) kill = &k;
    }
    RestartSeen rec;
    rec.process = Victim{p.pid, p.startTime, p.comm};
    rec.detectedMs = millisBetween(start, now);
    if (kill != nullptr) {
      // The start time is truncated to a clock tick: the middle of that tick, but not before
      // the signal and not after we saw it.
      const int64_t seenAfter = kernel->bootTimeNs() - kill->first;
      const int64_t estimate = startedBoot + startTimeToBootNs(1) / 2 - kill->first;
      rec.replaces = kill->second;
      rec.restartMs = static_cast<double>(std::clamp<int64_t>(estimate, 0, seenAfter)) / 1e6;
    }
    log::get("process")->info("restart seen fault={} pid={} comm={} restart_ms={}", plan.faultId,
                              p.pid, p.comm, rec.restartMs.value_or(-1.0));
    restarts.push_back(std::move(rec));
  }
}

// One look for restarts: /proc listed (cheap); a full scan only while new pids are young,
// and no more often than four times the last scan's cost, so a large machine stays idle.
void KillInjector::Run::watchTick(Clock::time_point now) {
  nextTick = now + options.restartPoll;
  std::set<pid_t> pids = kernel->listPids();
  for (pid_t pid : pids) {
    if (!listed.contains(pid)) young.emplace(pid, now + kYoungFor);
  }
  listed = std::move(pids);
  std::erase_if(young, [&](const auto& y) { return y.second < now || !listed.contains(y.first); });
  if (young.empty() || now < nextScan) return;
  auto table = kernel->scan(kScanAll, nullptr);
  auto matches =
      table ? table->match(plan.selector) : Result<std::vector<ProcessInfo>>(table.error());
  const auto cost = Clock::now() - now;
  nextScan = Clock::now() + std::max<Clock::duration>(options.restartPoll, 4 * cost);
  if (!matches) {
    log::get("process")->warn("restart watch: {}", matches.error().describe());
    return;
  }
  absorb(*matches, true);
  // Pids that matched nothing after a full scan stay young until they expire.
}

// After the signals: what matches now is the baseline if its pid was listed before them;
// a match with a newer pid is already a restart. Pids newer than the signals that match
// nothing yet (a supervisor's fork before its exec) stay young for the ticks to come.
void KillInjector::Run::takeBaseline(const std::set<pid_t>& before) {
  auto table = kernel->scan(kScanAll, nullptr);
  if (!table) {
    log::get("process")->warn("restart watch: {}", table.error().describe());
    return;
  }
  const auto now = Clock::now();
  for (const ProcessInfo& p : table->processes()) {
    listed.insert(p.pid);
    if (!before.contains(p.pid)) young.emplace(p.pid, now + kYoungFor);
  }
  auto matches = table->match(plan.selector);
  if (!matches) return;
  std::vector<ProcessInfo> old, fresh;
  for (ProcessInfo& p : *matches) (before.contains(p.pid) ? old : fresh).push_back(std::move(p));
  absorb(old, false);
  absorb(fresh, died > 0);
  nextTick = now + options.restartPoll;
  nextScan = nextTick;
}

void KillInjector::Run::runRound(uint64_t round) {
  const auto now = Clock::now();
  // A round that signalled no one is recorded with its time.
  auto noVictim = [&](std::string outcome) {
    KillOutcome rec;
    rec.round = round;
    rec.atMs = millisBetween(start, now);
    rec.outcome = std::move(outcome);
    records.push_back(std::move(rec));
  };
  auto table = kernel->scan(kScanAll, nullptr);
  auto matches =
      table ? table->match(plan.selector) : Result<std::vector<ProcessInfo>>(table.error());
  if (!matches) {
    noVictim("error: " + matches.error().describe());
    return;
  }
  if (watchRestarts) absorb(*matches, died > 0);
  Candidates c = eligibleAmong(*table, std::move(*matches), defaultProtection());
  auto pick = chooseForRound(std::move(c.eligible), plan.selection, plan.seed, round);
  if (!pick) {
    noVictim("no eligible process");
    return;
  }
  auto sent = signalOne(Victim{pick->pid, pick->startTime, pick->comm}, round);
  if (!sent) {
    log::get("process")->warn("interval round failed fault={} round={} error=\"{}\"", plan.faultId,
                              round, sent.error().describe());
  }
}

bool KillInjector::Run::finished() const {
  if (isInterval() || !pending.empty()) return false;
  return !(watchRestarts && died > 0 && restarts.size() < died);
}

void KillInjector::Run::watch() {
  for (;;) {
    const auto now = Clock::now();
    // A round due before the end runs even when this thread woke late: the number of kills
    // is decided by the duration and the interval, not by scheduling.
    if (isInterval() && roundAt(nextRound) < end && roundAt(nextRound) <= now) {
      runRound(nextRound++);
      continue;
    }
    if (now >= end || finished()) break;
    Clock::time_point wake = end;
    if (isInterval()) wake = std::min(wake, roundAt(nextRound));
    if (watchRestarts && died > 0) {
      if (now >= nextTick) watchTick(now);
      wake = std::min(wake, nextTick);
    }
    if (waitEvents(wake)) break;
  }
}

// Once the watch has stopped: deaths and restarts that happened since its last look.
void KillInjector::Run::finalLook() {
  (void)waitEvents(Clock::now(), false);
  if (!watchRestarts || died == 0) return;
  if (auto table = kernel->scan(kScanAll, nullptr)) {
    auto matches = table->match(plan.selector);
    if (matches) absorb(*matches, true);
  }
  rereadRestarts();
}

// A restart was named by its command when the watch saw it, which can be the moment between
// a supervisor's fork and its exec. Read again now, the same process (pid and start time) is
// named by what it runs; the first name is kept as startedAs when it changed, or when the
// process is gone and what it became cannot be known.
void KillInjector::Run::rereadRestarts() {
  for (RestartSeen& r : restarts) {
    auto now = kernel->readProcess(r.process.pid);
    if (!now || now->startTime != r.process.startTime || now->state == 'Z') {
      r.startedAs = r.process.comm;
    } else if (now->comm != r.process.comm) {
      r.startedAs = std::exchange(r.process.comm, now->comm);
    }
  }
}

nlohmann::json KillInjector::Run::summary() const {
  nlohmann::json victims = nlohmann::json::array();
  for (const KillOutcome& r : records) victims.push_back(r.toJson());
  nlohmann::json restarted = nlohmann::json::array();
  for (const RestartSeen& r : restarts) restarted.push_back(r.toJson());
  nlohmann::json j = {
      {"signal", plan.signal}, {"signalName", units::signalName(plan.signal)},
      {"seed", plan.seed},     {"seedSource", plan.seedFromExperiment ? "experiment" : "random"},
      {"victims", victims},    {"signalled", signalled},
      {"died", died},          {"restarts", restarted}};
  if (!plan.refused.empty()) j["refused"] = plan.refused;
  if (!restarts.empty() && restarts.front().restartMs) {
    j["timeToRestartMs"] = *restarts.front().restartMs;
  }
  return j;
}

// ---- KillInjector -----------------------------------------------------------------------

KillInjector::KillInjector() : KillInjector(Options{}) {}
KillInjector::KillInjector(Options options) : KillInjector(systemProcessKernel(), options) {}
KillInjector::KillInjector(std::shared_ptr<ProcessKernel> kernel, Options options)
    : kernel_(std::move(kernel)), options_(options) {}

KillInjector::~KillInjector() {
  std::lock_guard lock(mutex_);
  for (auto& [id, run] : runs_) {
    if (!run->thread.joinable()) continue;
    uint64_t one = 1;
    (void)!::write(run->stopFd.get(), &one, sizeof one);
    run->thread.join();
  }
}

Result<PreparedFault> KillInjector::prepare(const FaultRequest& request) {
  auto args = KillArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  const int signal = args->signal;
  if (isStoppingSignal(signal)) {
    return Error(ErrorCode::kInvalid, "process.kill does not send " + units::signalName(signal) +
                                          ": a stopped process would be left behind; use "
                                          "process.pause, which resumes it");
  }
  const std::chrono::nanoseconds interval = args->interval;
  if (interval.count() > 0 && request.duration.count() <= 0) {
    return Error(ErrorCode::kInvalid, "an interval needs the step's duration");
  }
  auto plan = planProcessFault(*kernel_, request, signal, interval);
  if (!plan) return std::move(plan).error();

  PreparedFault prepared;
  prepared.revertible = false;
  prepared.undo = plan->toJson();
  std::string what = "kill (" + units::signalName(signal) + ")";
  if (plan->noop) {
    prepared.description =
        what + ": no process matches " + plan->selectorText + " (empty: skip, nothing to do)";
    return prepared;
  }
  for (const Victim& v : plan->victims) {
    prepared.resources.push_back("pid:" + std::to_string(v.pid) + "@" +
                                 std::to_string(v.startTime));
  }
  std::string seed = " (seed " + std::to_string(plan->seed) +
                     (plan->seedFromExperiment ? "" : ", drawn at random") + ")";
  if (interval.count() > 0) {
    prepared.description = what + " one of " + std::to_string(plan->eligible) +
                           " processes matching " + plan->selectorText + " every " +
                           units::formatDuration(interval) + seed + ", first " +
                           describeVictims(plan->victims);
  } else {
    prepared.description = what + " " + std::to_string(plan->victims.size()) + " of " +
                           std::to_string(plan->eligible) + " processes matching " +
                           plan->selectorText + seed + ": " + describeVictims(plan->victims);
  }
  return prepared;
}

Result<AppliedFault> KillInjector::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto plan = ProcessPlan::fromJson(undo, faultId);
  if (!plan) return std::move(plan).error();
  AppliedFault applied;
  if (plan->noop) {
    applied.backend = "none";
    applied.observed = {{"noop", true}, {"seed", plan->seed}, {"signalled", 0}};
    return applied;
  }
  auto run = std::make_unique<Run>();
  run->kernel = kernel_;
  run->plan = std::move(*plan);
  run->options = options_;
  if (!run->stopFd) return Error::fromErrno("eventfd for the kill watch", errno);
  run->start = Clock::now();
  const bool instant = run->plan.duration.count() <= 0;
  run->end = run->start +
             (instant ? std::chrono::duration_cast<Clock::duration>(options_.instantRestartWatch)
                      : std::chrono::duration_cast<Clock::duration>(run->plan.duration));
  // A restart cannot match a pid selector (a new process has a new pid: a match would be
  // an unrelated process that got the pid).
  run->watchRestarts = !run->plan.selector.pid.has_value();
  // Only a listing before the signals (a full scan would delay them): what matches later
  // with one of these pids was there before and is not a restart.
  std::set<pid_t> before;
  if (run->watchRestarts) before = kernel_->listPids();
  for (const Victim& v : run->plan.victims) {
    auto sent = run->signalOne(v, run->isInterval() ? std::optional<uint64_t>(0) : std::nullopt);
    if (!sent) return std::move(sent).error().withContext("process.kill");
  }
  const auto deathWait = std::min<Clock::duration>(
      options_.deathWait, instant ? Clock::duration::max() : run->plan.duration);
  const auto waitUntil = run->start + deathWait;
  while (!run->pending.empty() && Clock::now() < waitUntil) (void)run->waitEvents(waitUntil);
  if (run->watchRestarts) run->takeBaseline(before);

  applied.backend = "pidfd";
  applied.observed = run->summary();
  log::get("process")->info("kill applied fault={} signal={} signalled={} died={}", faultId,
                            units::signalName(run->plan.signal), run->signalled, run->died);
  // An instantaneous kill watches for restarts only: victims still alive after deathWait
  // are not waited for (a SIGHUP may well be handled).
  if (instant) run->pending.clear();
  bool watch = run->isInterval() || !run->pending.empty() || (run->watchRestarts && run->died > 0);
  Run* raw = run.get();
  std::lock_guard lock(mutex_);
  if (watch) raw->thread = std::thread([raw] { raw->watch(); });
  runs_[faultId] = std::move(run);
  return applied;
}

Result<nlohmann::json> KillInjector::revert(const std::string& faultId,
                                            const nlohmann::json& undo) {
  std::unique_ptr<Run> run;
  {
    std::lock_guard lock(mutex_);
    auto it = runs_.find(faultId);
    if (it != runs_.end()) {
      run = std::move(it->second);
      runs_.erase(it);
    }
  }
  if (!run) {
    (void)undo;
    return nlohmann::json{{"note", "nothing to undo: a signal cannot be taken back"}};
  }
  // Never waited for, not even an instantaneous kill's: the engine calls revert from its
  // main loop (probes, stop conditions and Ctrl-C wait meanwhile) and the guardian counts a
  // fault unreverted past its deadline as a hung owner.
  if (run->thread.joinable()) {
    uint64_t one = 1;
    (void)!::write(run->stopFd.get(), &one, sizeof one);
    run->thread.join();
  }
  run->finalLook();
  nlohmann::json out = run->summary();
  out["watchedMs"] = millisBetween(run->start, Clock::now());
  return out;
}

Result<std::vector<std::string>> KillInjector::audit(const nlohmann::json& undo) {
  (void)undo;
  return std::vector<std::string>{};
}

}  // namespace chaosd
