#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/app/daemon/CronCalendar.h"
#include "chaosd/app/daemon/Metrics.h"
#include "chaosd/base/Clock.h"
#include "chaosd/base/Result.h"
#include "chaosd/engine/journal/FaultJournal.h"

// Game days: schedules kept in the journal, each firing its experiment at the times of a cron
// expression. A time that passed while the daemon was down is skipped and logged, never run
// late; so is one the scheduler itself reaches more than kLateness after it was due (a
// suspended machine, a clock stepped forward).
namespace chaosd::daemon {

inline constexpr std::chrono::seconds kLateness{30};

struct ScheduleView {
  ScheduleRecord record;
  std::optional<WallTime> nextRun;  // unset: paused, exhausted or never again
  bool exhausted = false;           // maxRuns reached
};

class Scheduler {
 public:
  // Starts one run of a schedule's experiment; returns its run id or why it was refused.
  using StartRun = std::function<Result<std::string>(const ScheduleRecord&)>;

  Scheduler(FaultJournal& journal, const Clock& clock, Metrics& metrics, StartRun start);
  ~Scheduler();

  // Reads the schedules from the journal; times that passed since each last fired (or was
  // created) are logged as missed and skipped.
  Result<void> load();
  // Checks the cron expression, time zone and window, stores the schedule and plans it.
  Result<ScheduleView> add(ScheduleRecord record);
  Result<void> remove(const std::string& id);
  Result<ScheduleView> setPaused(const std::string& id, bool paused);
  std::vector<ScheduleView> list() const;
  Result<ScheduleView> get(const std::string& id) const;

  // Fires every schedule due at the clock's wall time. The thread calls it; tests call it
  // after moving a FakeClock.
  void tick();
  // A thread that ticks at each due time (and at least every second, for clock changes).
  void startThread();
  void stop();

 private:
  struct Planned {
    ScheduleRecord record;
    CronSpec cron;
    TimeZone zone;
    std::optional<DailyWindow> window;
    std::optional<int64_t> next;  // Unix seconds
  };
  Result<Planned> plan(ScheduleRecord record) const;
  void planNext(Planned& p, int64_t afterUnix) const;
  ScheduleView view(const Planned& p) const;
  int64_t nowUnix() const;

  FaultJournal& journal_;
  const Clock& clock_;
  Metrics& metrics_;
  StartRun start_;
  mutable std::mutex mu_;
  std::map<std::string, Planned> schedules_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace chaosd::daemon
