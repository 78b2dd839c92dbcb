// Game-day schedules: time zones from the zoneinfo, cron times in a zone and a window, and the
// Scheduler on a FakeClock with a real journal: due times fire, maxRuns and pause hold, and a
// time that passed while the daemon was down (or the scheduler was late) is skipped, not run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "chaosd/app/daemon/CronCalendar.h"
#include "chaosd/app/daemon/Scheduler.h"
#include "chaosd/app/daemon/TimeZone.h"
#include "chaosd/base/FakeClock.h"

namespace chaosd::daemon {
namespace {

using namespace std::chrono_literals;

constexpr int64_t k20260101 = 1767225600;  // Thursday 2026-01-01T00:00:00Z

int64_t unixOf(int y, int mo, int d, int h, int mi) {
  // days_from_civil (Howard Hinnant)
  y -= mo <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = int64_t{era} * 146097 + static_cast<int64_t>(doe) - 719468;
  return days * 86400 + h * 3600 + mi * 60;
}

std::chrono::system_clock::time_point at(int64_t unixSeconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unixSeconds));
}

CronSpec cron(const std::string& text) {
  auto c = parseCron(text);
  EXPECT_TRUE(c.ok()) << text;
  return c.ok() ? *c : CronSpec{};
}

TEST(TimeZoneTest, OffsetsFromTheZoneinfoAcrossDst) {
  auto berlin = TimeZone::load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.error().describe();
  EXPECT_EQ(berlin->offsetAt(unixOf(2026, 1, 15, 12, 0)), 3600);
  EXPECT_EQ(berlin->offsetAt(unixOf(2026, 7, 15, 12, 0)), 7200);
  // 2026-03-29 01:00Z is when Berlin moves to CEST.
  EXPECT_EQ(berlin->offsetAt(unixOf(2026, 3, 29, 0, 59)), 3600);
  EXPECT_EQ(berlin->offsetAt(unixOf(2026, 3, 29, 1, 0)), 7200);
  auto ny = TimeZone::load("America/New_York");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(ny->offsetAt(unixOf(2026, 1, 15, 12, 0)), -5 * 3600);
  LocalTime t = ny->toLocal(unixOf(2026, 1, 1, 3, 30));  // 22:30 on Dec 31
  EXPECT_EQ(t.year, 2025);
  EXPECT_EQ(t.month, 12);
  EXPECT_EQ(t.day, 31);
  EXPECT_EQ(t.hour, 22);
  EXPECT_EQ(t.weekday, 3);  // Wednesday
  EXPECT_EQ(TimeZone::utc().offsetAt(0), 0);
  EXPECT_EQ(TimeZone::load("")->name(), "UTC");
  EXPECT_EQ(TimeZone::load("Mars/Olympus").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(TimeZone::load("../../etc/passwd").error().code(), ErrorCode::kInvalid);
}

TEST(CronCalendarTest, NextTimesInUtcAZoneAndAWindow) {
  auto utc = TimeZone::utc();
  int64_t t = unixOf(2026, 1, 1, 10, 7);
  EXPECT_EQ(nextCronTime(cron("*/15 * * * *"), utc, std::nullopt, t), unixOf(2026, 1, 1, 10, 15));
  EXPECT_EQ(nextCronTime(cron("* * * * *"), utc, std::nullopt, unixOf(2026, 1, 1, 10, 15)),
            unixOf(2026, 1, 1, 10, 16));  // strictly after
  // Tuesdays at 10:30 in Berlin (winter: 09:30Z); 2026-01-06 is a Tuesday.
  auto berlin = *TimeZone::load("Europe/Berlin");
  EXPECT_EQ(nextCronTime(cron("30 10 * * tue"), berlin, std::nullopt, t),
            unixOf(2026, 1, 6, 9, 30));
  // In summer the same local time is 08:30Z.
  EXPECT_EQ(nextCronTime(cron("30 10 * * tue"), berlin, std::nullopt, unixOf(2026, 7, 1, 0, 0)),
            unixOf(2026, 7, 7, 8, 30));
  // Names, lists, ranges: first weekday 1 or 15 of jun-aug... as Vixie: either day field.
  EXPECT_EQ(nextCronTime(cron("0 12 1,15 jun-aug *"), utc, std::nullopt, t),
            unixOf(2026, 6, 1, 12, 0));
  // A window: every 20 minutes, but only 02:00-02:30 local.
  auto w = parseWindow("02:00", "02:30");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(nextCronTime(cron("*/20 * * * *"), utc, *w, t), unixOf(2026, 1, 2, 2, 0));
  EXPECT_EQ(nextCronTime(cron("*/20 * * * *"), utc, *w, unixOf(2026, 1, 2, 2, 0)),
            unixOf(2026, 1, 2, 2, 20));
  EXPECT_EQ(nextCronTime(cron("*/20 * * * *"), utc, *w, unixOf(2026, 1, 2, 2, 20)),
            unixOf(2026, 1, 3, 2, 0));
  // A window across midnight.
  auto night = parseWindow("23:00", "01:00");
  EXPECT_TRUE(night->contains(23 * 60 + 30));
  EXPECT_TRUE(night->contains(30));
  EXPECT_FALSE(night->contains(2 * 60));
  EXPECT_FALSE(parseWindow("25:00", "01:00").ok());
  // Never: Feb 30.
  EXPECT_FALSE(nextCronTime(cron("0 0 30 feb *"), utc, std::nullopt, t).has_value());
  // 02:30 does not exist in Berlin on 2026-03-29 (02:00 -> 03:00): the next is the 30th.
  EXPECT_EQ(nextCronTime(cron("30 2 * * *"), berlin, std::nullopt, unixOf(2026, 3, 28, 12, 0)),
            unixOf(2026, 3, 30, 0, 30));
}

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() {
    std::string tmpl = "/tmp/chaosd-schedtest-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
  }
  ~SchedulerTest() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  FaultJournal openJ() {
    auto j = openJournal(dir_ + "/journal.db");
    EXPECT_TRUE(j.ok());
    return std::move(*j);
  }

  Scheduler::StartRun recorder() {
    return [this](const ScheduleRecord& r) -> Result<std::string> {
      started_.push_back(r.id);
      return "run-" + std::to_string(started_.size());
    };
  }

  ScheduleRecord record(const std::string& id, const std::string& expr) {
    ScheduleRecord r;
    r.id = id;
    r.name = "gameday";
    r.cron = expr;
    r.experimentYaml = "apiVersion: chaosd/v1\n";
    return r;
  }

  std::string dir_;
  std::vector<std::string> started_;
  Metrics metrics_;
};

TEST_F(SchedulerTest, DueEveryMinuteFiresOncePerMinuteOnTheFakeClock) {
  FakeClock clock{at(k20260101 + 5)};
  auto journal = openJ();
  Scheduler s(journal, clock, metrics_, recorder());
  auto added = s.add(record("every", "* * * * *"));
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_TRUE(added->nextRun.has_value());
  EXPECT_EQ(*added->nextRun,
            std::chrono::system_clock::time_point(std::chrono::seconds(k20260101 + 60)));
  s.tick();
  EXPECT_TRUE(started_.empty());  // not due yet
  clock.advance(54s);             // 00:00:59
  s.tick();
  EXPECT_TRUE(started_.empty());
  clock.advance(1s);  // 00:01:00
  s.tick();
  s.tick();  // a second tick in the same minute fires nothing more
  ASSERT_EQ(started_.size(), 1u);
  clock.advance(60s);
  s.tick();
  EXPECT_EQ(started_.size(), 2u);
  auto v = s.get("every");
  EXPECT_EQ(v->record.runsStarted, 2u);
  EXPECT_EQ(v->record.lastRunId, "run-2");
  // The journal saw both.
  auto stored = journal.schedule("every");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->runsStarted, 2u);
  EXPECT_EQ(stored->lastRunId, "run-2");
}

TEST_F(SchedulerTest, MaxRunsAndPauseHold) {
  FakeClock clock{at(k20260101)};
  auto journal = openJ();
  Scheduler s(journal, clock, metrics_, recorder());
  auto r = record("twice", "* * * * *");
  r.maxRuns = 2;
  ASSERT_TRUE(s.add(r).ok());
  ASSERT_TRUE(s.add(record("paused", "* * * * *")).ok());
  ASSERT_TRUE(s.setPaused("paused", true).ok());
  for (int i = 0; i < 5; ++i) {
    clock.advance(60s);
    s.tick();
  }
  EXPECT_EQ(started_, (std::vector<std::string>{"twice", "twice"}));
  EXPECT_TRUE(s.get("twice")->exhausted);
  EXPECT_FALSE(s.get("twice")->nextRun.has_value());
  // Resumed: from now on, not the minutes it missed while paused.
  ASSERT_TRUE(s.setPaused("paused", false).ok());
  s.tick();
  EXPECT_EQ(started_.size(), 2u);
  clock.advance(60s);
  s.tick();
  EXPECT_EQ(started_.back(), "paused");
  EXPECT_TRUE(s.remove("paused").ok());
  EXPECT_EQ(s.remove("paused").error().code(), ErrorCode::kNotFound);
}

TEST_F(SchedulerTest, TimesMissedWhileDownAreSkippedAndTheNextOneRuns) {
  FakeClock clock{at(k20260101)};
  {
    auto journal = openJ();
    Scheduler s(journal, clock, metrics_, recorder());
    ASSERT_TRUE(s.add(record("every", "* * * * *")).ok());
    clock.advance(60s);
    s.tick();
    ASSERT_EQ(started_.size(), 1u);
  }
  // Down for 10 minutes and 30 seconds.
  clock.advance(630s);
  auto journal = openJ();
  Scheduler s(journal, clock, metrics_, recorder());
  ASSERT_TRUE(s.load().ok());
  s.tick();
  EXPECT_EQ(started_.size(), 1u) << "a missed time was run late";
  ScrapeState st;
  std::string text = metrics_.render(st);
  EXPECT_NE(text.find("chaosd_schedule_runs_total{result=\"skipped\"} 10"), std::string::npos)
      << text;
  auto v = s.get("every");
  ASSERT_TRUE(v->nextRun.has_value());
  EXPECT_EQ(*v->nextRun,
            std::chrono::system_clock::time_point(std::chrono::seconds(k20260101 + 12 * 60)));
  clock.advance(30s);
  s.tick();
  EXPECT_EQ(started_.size(), 2u);
  EXPECT_EQ(journal.schedule("every")->runsStarted, 2u);
}

TEST_F(SchedulerTest, ATickLaterThanTheLatenessSkipsInsteadOfRunningLate) {
  FakeClock clock{at(k20260101)};
  auto journal = openJ();
  Scheduler s(journal, clock, metrics_, recorder());
  ASSERT_TRUE(s.add(record("hourly", "0 * * * *")).ok());
  clock.advance(1h + kLateness + 1s);  // the machine was suspended over the hour
  s.tick();
  EXPECT_TRUE(started_.empty());
  clock.advance(1h - kLateness - 1s);
  s.tick();
  EXPECT_EQ(started_.size(), 1u);
}

TEST_F(SchedulerTest, BadCronOrZoneIsRefusedAndNothingIsStored) {
  FakeClock clock;
  auto journal = openJ();
  Scheduler s(journal, clock, metrics_, recorder());
  EXPECT_EQ(s.add(record("bad", "* * *")).error().code(), ErrorCode::kInvalid);
  auto r = record("tz", "* * * * *");
  r.timezone = "Nowhere/Atlantis";
  EXPECT_EQ(s.add(r).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(journal.schedules()->empty());
}

}  // namespace
}  // namespace chaosd::daemon
