// The journal's record of who asked (schema version 4): a run's caller, a schedule's creator,
// and the daemon's audit trail, kept across a reopen.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "chaosd/app/daemon/Access.h"
#include "chaosd/engine/journal/FaultJournal.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

struct ScratchJournal {
  ScratchJournal() {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-audit-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~ScratchJournal() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path() const { return dir + "/journal.db"; }
  std::string dir;
};

TEST(AuditTrailTest, CallersAndAuditLinesSurviveAReopen) {
  ScratchJournal scratch;
  const Credentials alice{4242, 4242, {4242, 5000}, "alice"};
  {
    auto j = openJournal(scratch.path());
    ASSERT_TRUE(j) << j.error().describe();
    RunRecord run{"r1", "exp", 1, 2, {}, std::nullopt, "", {}, daemon::callerJson(alice, 777), ""};
    run.caller["experimentHash"] = "abc";
    ASSERT_TRUE(j->beginRun(run));
    ScheduleRecord s;
    s.id = "s1";
    s.name = "nightly";
    s.cron = "0 3 * * *";
    s.experimentYaml = "yaml";
    s.creator = daemon::callerJson(alice, 778);
    ASSERT_TRUE(j->addSchedule(s));
    AuditRecord refused{0, {}, "submit", "refused", 4242, 777, "abc", "", "", "policy says no"};
    AuditRecord accepted{0, {}, "submit", "accepted", 4242, 777, "abc", "r1", "", ""};
    ASSERT_TRUE(j->audit(refused));
    ASSERT_TRUE(j->audit(accepted));
  }
  auto j = openJournal(scratch.path(), JournalOpen::kExisting);
  ASSERT_TRUE(j);
  auto run = j->run("r1");
  ASSERT_TRUE(run);
  auto who = daemon::credentialsFromJson(run->caller);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->uid, 4242u);
  EXPECT_EQ(who->groups, (std::vector<gid_t>{4242, 5000}));
  EXPECT_EQ(run->caller["pid"], 777);
  EXPECT_EQ(run->caller["experimentHash"], "abc");
  auto schedule = j->schedule("s1");
  ASSERT_TRUE(schedule);
  EXPECT_EQ(daemon::credentialsFromJson(schedule->creator)->user, "alice");
  auto trail = j->auditTrail();
  ASSERT_TRUE(trail);
  ASSERT_EQ(trail->size(), 2u);
  EXPECT_EQ(trail->front().result, "accepted");  // newest first
  EXPECT_EQ(trail->front().runId, "r1");
  EXPECT_EQ(trail->back().detail, "policy says no");
  EXPECT_EQ(trail->back().uid, 4242u);
  EXPECT_EQ(trail->back().pid, 777);
  EXPECT_EQ(j->auditTrail(1)->size(), 1u);
  // A run without a caller (chaosctl run) runs as the daemon.
  EXPECT_FALSE(daemon::credentialsFromJson(nlohmann::json::object()));
}

}  // namespace
}  // namespace chaosd
