#include "chaosd/app/daemon/Scheduler.h"

#include "chaosd/base/Log.h"
#include "reports/ReportJson.h"

namespace chaosd::daemon {
namespace {

WallTime fromUnix(int64_t s) { return WallTime(std::chrono::seconds(s)); }
int64_t toUnix(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Scheduler::Scheduler(FaultJournal& journal, const Clock& clock, Metrics& metrics, StartRun start)
    : journal_(journal), clock_(clock), metrics_(metrics), start_(std::move(start)) {}

Scheduler::~Scheduler() { stop(); }

int64_t Scheduler::nowUnix() const { return toUnix(clock_.wallNow()); }

Result<Scheduler::Planned> Scheduler::plan(ScheduleRecord record) const {
  auto cron = parseCron(record.cron);
  if (!cron) return std::move(cron).error().withContext("schedule cron");
  auto zone = TimeZone::load(record.timezone);
  if (!zone) return std::move(zone).error().withContext("schedule timezone");
  std::optional<DailyWindow> window;
  if (!record.windowStart.empty() || !record.windowEnd.empty()) {
    auto w = parseWindow(record.windowStart, record.windowEnd);
    if (!w) return std::move(w).error().withContext("schedule window");
    window = *w;
  }
  return Planned{std::move(record), std::move(*cron), std::move(*zone), window, std::nullopt};
}

void Scheduler::planNext(Planned& p, int64_t afterUnix) const {
  if (p.record.maxRuns && p.record.runsStarted >= *p.record.maxRuns) {
    p.next.reset();
    return;
  }
  p.next = nextCronTime(p.cron, p.zone, p.window, afterUnix);
}

ScheduleView Scheduler::view(const Planned& p) const {
  ScheduleView v;
  v.record = p.record;
  v.exhausted = p.record.maxRuns && p.record.runsStarted >= *p.record.maxRuns;
  if (p.next && !p.record.paused) v.nextRun = fromUnix(*p.next);
  return v;
}

Result<void> Scheduler::load() {
  auto records = journal_.schedules();
  if (!records) return std::move(records).error().withContext("loading schedules");
  auto logger = log::get("schedule");
  const int64_t now = nowUnix();
  std::lock_guard lock(mu_);
  schedules_.clear();
  for (auto& r : *records) {
    auto p = plan(r);
    if (!p) {
      logger->error("schedule unusable schedule={} error=\"{}\"", r.id, p.error().describe());
      continue;
    }
    // Every time between the last fire (or the creation) and now passed while the daemon was
    // down: skipped, not run late.
    int64_t from = toUnix(r.lastFireAt.value_or(r.createdAt));
    uint64_t missed = 0;
    std::optional<int64_t> first, last;
    if (!r.paused && !(r.maxRuns && r.runsStarted >= *r.maxRuns)) {
      for (auto t = nextCronTime(p->cron, p->zone, p->window, from);
           t && *t < now && missed < 100000; t = nextCronTime(p->cron, p->zone, p->window, *t)) {
        if (!first) first = t;
        last = t;
        ++missed;
      }
    }
    if (missed > 0) {
      logger->warn(
          "schedule missed runs while the daemon was down; skipped, not run late schedule={} "
          "name={} missed={} first={} last={}",
          r.id, r.name, missed, isoTime(fromUnix(*first)), isoTime(fromUnix(*last)));
      for (uint64_t i = 0; i < missed; ++i) metrics_.scheduleFired(false);
      (void)journal_.recordScheduleFire(r.id, fromUnix(*last), "");
      p->record.lastFireAt = fromUnix(*last);
    }
    planNext(*p, now - 1);
    schedules_.emplace(r.id, std::move(*p));
  }
  logger->info("schedules loaded count={}", schedules_.size());
  return success();
}

Result<ScheduleView> Scheduler::add(ScheduleRecord record) {
  record.createdAt = clock_.wallNow();
  auto p = plan(std::move(record));
  if (!p) return std::move(p).error();
  planNext(*p, nowUnix());
  CHAOSD_TRY(journal_.addSchedule(p->record));
  std::lock_guard lock(mu_);
  auto [it, inserted] = schedules_.emplace(p->record.id, std::move(*p));
  log::get("schedule")
      ->info("schedule added schedule={} name={} cron=\"{}\" timezone={} next={}",
             it->second.record.id, it->second.record.name, it->second.record.cron,
             it->second.zone.name(),
             it->second.next ? isoTime(fromUnix(*it->second.next)) : "never");
  wake_.notify_all();
  return view(it->second);
}

Result<void> Scheduler::remove(const std::string& id) {
  CHAOSD_TRY(journal_.deleteSchedule(id));
  std::lock_guard lock(mu_);
  schedules_.erase(id);
  log::get("schedule")->info("schedule deleted schedule={}", id);
  return success();
}

Result<ScheduleView> Scheduler::setPaused(const std::string& id, bool paused) {
  CHAOSD_TRY(journal_.setSchedulePaused(id, paused));
  std::lock_guard lock(mu_);
  auto it = schedules_.find(id);
  if (it == schedules_.end()) return Error(ErrorCode::kNotFound, "unknown schedule " + id);
  it->second.record.paused = paused;
  // Resuming plans from now: the times that passed while paused are not made up for.
  if (!paused) planNext(it->second, nowUnix());
  log::get("schedule")->info("schedule {} schedule={}", paused ? "paused" : "resumed", id);
  wake_.notify_all();
  return view(it->second);
}

std::vector<ScheduleView> Scheduler::list() const {
  std::lock_guard lock(mu_);
  std::vector<ScheduleView> out;
  for (const auto& [id, p] : schedules_) out.push_back(view(p));
  return out;
}

Result<ScheduleView> Scheduler::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(id);
  if (it == schedules_.end()) return Error(ErrorCode::kNotFound, "unknown schedule " + id);
  return view(it->second);
}

void Scheduler::tick() {
  auto logger = log::get("schedule");
  const int64_t now = nowUnix();
  std::vector<std::pair<ScheduleRecord, int64_t>> due;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, p] : schedules_) {
      if (p.record.paused || !p.next || *p.next > now) continue;
      due.emplace_back(p.record, *p.next);
      p.record.lastFireAt = fromUnix(*p.next);
      planNext(p, now);
    }
  }
  for (auto& [record, at] : due) {
    if (now - at > kLateness.count()) {
      logger->warn("schedule time skipped, not run late schedule={} name={} due={} late_s={}",
                   record.id, record.name, isoTime(fromUnix(at)), now - at);
      metrics_.scheduleFired(false);
      (void)journal_.recordScheduleFire(record.id, fromUnix(at), "");
      continue;
    }
    auto runId = start_(record);
    if (!runId) {
      logger->error("scheduled run refused schedule={} name={} due={} error=\"{}\"", record.id,
                    record.name, isoTime(fromUnix(at)), runId.error().describe());
      metrics_.scheduleFired(false);
      (void)journal_.recordScheduleFire(record.id, fromUnix(at), "");
      continue;
    }
    logger->info("scheduled run started schedule={} name={} due={} run={}", record.id, record.name,
                 isoTime(fromUnix(at)), *runId);
    metrics_.scheduleFired(true);
    (void)journal_.recordScheduleFire(record.id, fromUnix(at), *runId);
    std::lock_guard lock(mu_);
    auto it = schedules_.find(record.id);
    if (it != schedules_.end()) {
      ++it->second.record.runsStarted;
      it->second.record.lastRunId = *runId;
      if (it->second.record.maxRuns &&
          it->second.record.runsStarted >= *it->second.record.maxRuns) {
        it->second.next.reset();
        logger->info("schedule reached maxRuns schedule={} runs={}", record.id,
                     it->second.record.runsStarted);
      }
    }
  }
}

void Scheduler::startThread() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      tick();
      lock.lock();
      std::optional<int64_t> next;
      for (const auto& [id, p] : schedules_) {
        if (!p.record.paused && p.next && (!next || *p.next < *next)) next = p.next;
      }
      auto wait = std::chrono::milliseconds(1000);
      if (next) {
        auto until = std::chrono::seconds(*next) - clock_.wallNow().time_since_epoch();
        wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until),
                          std::chrono::milliseconds(0), wait);
      }
      wake_.wait_for(lock, wait, [this] { return stopping_; });
    }
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace chaosd::daemon
