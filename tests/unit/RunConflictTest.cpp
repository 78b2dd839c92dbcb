// Runs journalled with their targets: a second run on a target another run holds is refused
// (whoever owns either, `chaosctl run` or the daemon), atomically across processes; a journal
// of an older schema is migrated with its runs and faults intact.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/TargetKeys.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/parser/ExperimentParser.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

class RunConflictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-conflict-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto j = openJournal(dir_ + "/journal.db");
    ASSERT_TRUE(j.ok()) << j.error().describe();
    journal_.emplace(std::move(*j));
  }
  void TearDown() override {
    journal_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static RunRecord run(const std::string& id, std::vector<TargetKey> targets) {
    RunRecord r;
    r.runId = id;
    r.experiment = "exp-" + id;
    r.ownerPid = 4242;
    r.ownerStartTime = 7;
    r.targets = std::move(targets);
    return r;
  }
  static TargetKey path(const std::string& p) { return {"path:" + p, "data", "path " + p}; }
  static TargetKey iface(const std::string& ns, const std::string& dev) {
    return {"interface:" + ns + ":" + dev, "net", "interface " + dev};
  }

  static bool alive(const RunRecord&) { return true; }
  static bool dead(const RunRecord&) { return false; }

  FaultIntent fault(const std::string& id) {
    FaultIntent f;
    f.faultId = id;
    f.step = "s";
    f.faultType = "test.none";
    f.target = "t";
    return f;
  }

  std::string dir_;
  std::optional<FaultJournal> journal_;
};

TEST_F(RunConflictTest, TargetsRoundTrip) {
  const std::vector<TargetKey> targets = {path("/srv/data"), iface("netns app", "veth0")};
  ASSERT_TRUE(journal_->beginRun(run("r1", targets), alive).ok());
  auto back = journal_->run("r1");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->targets, targets);
  auto open = journal_->openRuns();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().targets, targets);
}

TEST_F(RunConflictTest, ASecondRunOnATargetALiveRunHoldsIsRefusedAndNotJournalled) {
  ASSERT_TRUE(journal_->beginRun(run("first", {path("/srv/data")}), alive).ok());
  auto second = journal_->beginRun(run("second", {path("/srv/data")}), alive);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kConflict);
  const std::string message = second.error().describe();
  for (const char* needle : {"run first", "exp-first", "pid 4242", "path /srv/data", "running"}) {
    EXPECT_NE(message.find(needle), std::string::npos) << needle << " in " << message;
  }
  EXPECT_EQ(journal_->run("second").error().code(), ErrorCode::kNotFound);
  // The same check alone says the same and writes nothing.
  auto check = journal_->checkTargetsFree({path("/srv/data")}, alive);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().describe(), message);
  EXPECT_EQ(journal_->openRuns()->size(), 1u);
}

TEST_F(RunConflictTest, NestedPathsOverlapSiblingsAndOtherInterfacesDoNot) {
  ASSERT_TRUE(journal_->beginRun(run("a", {path("/srv/data"), iface("host", "eth1")}), alive).ok());
  EXPECT_EQ(journal_->beginRun(run("b", {path("/srv/data/wal")}), alive).error().code(),
            ErrorCode::kConflict);
  EXPECT_EQ(journal_->beginRun(run("c", {path("/srv")}), alive).error().code(),
            ErrorCode::kConflict);
  EXPECT_TRUE(journal_->beginRun(run("d", {path("/srv/database")}), alive).ok());
  EXPECT_TRUE(journal_->beginRun(run("e", {iface("host", "eth2")}), alive).ok());
  EXPECT_TRUE(journal_->beginRun(run("f", {iface("netns x", "eth1")}), alive).ok());
  EXPECT_EQ(journal_->beginRun(run("g", {iface("host", "eth1")}), alive).error().code(),
            ErrorCode::kConflict);
  // A run without targets (only exec targets, or none) never conflicts.
  EXPECT_TRUE(journal_->beginRun(run("h", {}), alive).ok());
}

TEST_F(RunConflictTest, AnEndedRunOrADeadOwnerWithNothingHeldDoesNotBlock) {
  ASSERT_TRUE(journal_->beginRun(run("ended", {path("/data")}), alive).ok());
  ASSERT_TRUE(journal_->endRun("ended", "ok").ok());
  EXPECT_TRUE(journal_->beginRun(run("next", {path("/data")}), dead).ok());
  // "next" is open, its owner dead (per `dead`), and it holds nothing: stale, not a conflict.
  EXPECT_TRUE(journal_->beginRun(run("after", {path("/data")}), dead).ok());
}

TEST_F(RunConflictTest, ADeadOwnersUnrevertedFaultsBlockUntilReverted) {
  ASSERT_TRUE(journal_->beginRun(run("crashed", {path("/data")}), alive).ok());
  ASSERT_TRUE(journal_->recordIntent("crashed", fault("f1")).ok());
  ASSERT_TRUE(journal_->markApplied("f1").ok());
  auto refused = journal_->beginRun(run("next", {path("/data")}), dead);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_NE(refused.error().describe().find("1 fault(s) not reverted"), std::string::npos)
      << refused.error().describe();
  EXPECT_NE(refused.error().describe().find("chaosctl recover"), std::string::npos);
  ASSERT_TRUE(journal_->markReverted("f1", "guardian").ok());
  EXPECT_TRUE(journal_->beginRun(run("next", {path("/data")}), dead).ok());
}

TEST_F(RunConflictTest, JournalOwnerAliveReadsProc) {
  RunRecord self = run("self", {});
  self.ownerPid = ::getpid();
  self.ownerStartTime = *selfStartTime();
  EXPECT_TRUE(journalOwnerAlive(self));
  self.ownerStartTime += 1;  // the pid of another process (reused)
  EXPECT_FALSE(journalOwnerAlive(self));
}

// Processes that begin a run on one target at the same moment: exactly one begins.
TEST_F(RunConflictTest, OfRunsBegunAtOnceByManyProcessesExactlyOneBegins) {
  constexpr int kProcs = 8;
  const std::string db = dir_ + "/journal.db";
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      auto j = openJournal(db);
      if (!j) ::_exit(3);
      char c;
      if (::read(go[0], &c, 1) != 0) ::_exit(4);  // EOF: all go at once
      auto r = j->beginRun(run("p" + std::to_string(i), {path("/shared")}), alive);
      ::_exit(r.ok() ? 0 : (r.error().code() == ErrorCode::kConflict ? 1 : 2));
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  int begun = 0, refused = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 0) ++begun;
    if (WEXITSTATUS(status) == 1) ++refused;
  }
  EXPECT_EQ(begun, 1);
  EXPECT_EQ(refused, kProcs - 1);
  EXPECT_EQ(journal_->openRuns()->size(), 1u);
}

// The keys of an experiment: interfaces by namespace, paths made canonical, exec targets none.
TEST(TargetKeysTest, KeysOfAnExperiment) {
  const std::string yaml = R"(apiVersion: chaosd/v1
kind: Experiment
metadata: {name: keys}
targets:
  net: {interface: {name: veth0, netns: app}}
  data: {path: /tmp/../tmp/chaosd-keys}
  svc: {exec: {argv: [/bin/sleep, "5"]}}
  unused: {path: /var}
steadyState:
  baseline: {duration: 1s}
  recovery: {duration: 1s}
  probes: [{name: ok, command: {argv: [/bin/true]}, every: 1s}]
method:
  - {name: d, fault: network.delay, target: net, args: {delay: 10ms}, duration: 1s}
  - {name: f, fault: disk.fill, target: data, args: {size: 1MiB}, duration: 1s}
  - {name: p, fault: process.pause, target: svc, duration: 1s}
)";
  ParseOptions options;
  options.registry = &cli::builtinRegistry();
  auto parsed = parseExperimentText(yaml, "keys.yaml", options);
  ASSERT_TRUE(parsed.ok()) << (parsed.diagnostics.empty() ? "" : parsed.diagnostics[0].str());
  auto keys = targetKeys(*parsed.experiment, nullptr);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].target, "data");
  EXPECT_EQ(keys[0].key, "path:/tmp/chaosd-keys");
  EXPECT_EQ(keys[1].target, "net");
  EXPECT_EQ(keys[1].key.rfind("interface:", 0), 0u);
  EXPECT_NE(keys[1].key.find("veth0"), std::string::npos);
}

// A version-1 journal (runs and faults only) written by an older chaosd, with a run whose
// fault was never reverted: opened by this one, it is migrated to the current version in
// place and the fault is still there to revert.
TEST(JournalMigrationTest, Version1And2JournalsMigrateWithTheirRunsAndFaults) {
  for (int from : {1, 2}) {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-migrate-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    const std::string db = tmpl + "/journal.db";
    {
      sqlite3* raw = nullptr;
      ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
      // The version-1 schema as chaosd 0.1 wrote it.
      std::string sql = R"sql(
CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL,
  owner_pid INTEGER NOT NULL, owner_start_time INTEGER NOT NULL, started_at INTEGER NOT NULL,
  ended_at INTEGER, outcome TEXT NOT NULL DEFAULT '');
CREATE TABLE faults (seq INTEGER PRIMARY KEY AUTOINCREMENT, fault_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL REFERENCES runs(run_id), step TEXT NOT NULL, fault_type TEXT NOT NULL,
  target TEXT NOT NULL, undo TEXT NOT NULL, resources TEXT NOT NULL, state TEXT NOT NULL
  CHECK (state IN ('intent', 'applied', 'reverted', 'revert-failed', 'skipped')),
  error TEXT NOT NULL DEFAULT '', reverted_by TEXT NOT NULL DEFAULT '',
  intent_at INTEGER NOT NULL, applied_at INTEGER, reverted_at INTEGER, deadline_at INTEGER,
  revertible INTEGER NOT NULL, durable INTEGER NOT NULL);
CREATE INDEX faults_by_run ON faults(run_id, seq);
INSERT INTO runs VALUES ('old', 'old-exp', 99999999, 1, 1000, NULL, '');
INSERT INTO faults (fault_id, run_id, step, fault_type, target, undo, resources, state,
  intent_at, applied_at, revertible, durable)
  VALUES ('old-1', 'old', 'fill', 'disk.fill', 'fill /data', '{"path":"/data/x"}', '[]',
  'applied', 1000, 2000, 1, 1);
)sql";
      if (from == 2) {
        sql += R"sql(
CREATE TABLE schedules (id TEXT PRIMARY KEY, name TEXT NOT NULL, cron TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT '', window_start TEXT NOT NULL DEFAULT '',
  window_end TEXT NOT NULL DEFAULT '', max_runs INTEGER, runs_started INTEGER NOT NULL DEFAULT 0,
  paused INTEGER NOT NULL DEFAULT 0, experiment TEXT NOT NULL, vars TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL, last_fire_at INTEGER, last_run_id TEXT NOT NULL DEFAULT '');
INSERT INTO schedules (id, name, cron, experiment, created_at)
  VALUES ('s1', 'nightly', '0 3 * * *', 'yaml', 5);
)sql";
      }
      sql += "PRAGMA user_version=" + std::to_string(from) + ";";
      char* err = nullptr;
      ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
          << (err ? err : "");
      sqlite3_close(raw);
    }
    auto j = openJournal(db, JournalOpen::kExisting);
    ASSERT_TRUE(j.ok()) << j.error().describe();
    EXPECT_EQ(*j->schemaVersion(), kJournalSchemaVersion) << "from " << from;
    auto old = j->run("old");
    ASSERT_TRUE(old.ok());
    EXPECT_EQ(old->experiment, "old-exp");
    EXPECT_TRUE(old->targets.empty());
    EXPECT_TRUE(old->caller.empty());  // version 4: no caller journalled before it
    auto held = j->unreverted();
    ASSERT_TRUE(held.ok());
    ASSERT_EQ(held->size(), 1u);
    EXPECT_EQ(held->front().faultId, "old-1");
    EXPECT_EQ(held->front().undo["path"], "/data/x");
    auto schedules = j->schedules();
    ASSERT_TRUE(schedules.ok());
    EXPECT_EQ(schedules->size(), from == 2 ? 1u : 0u);
    if (from == 2) {
      EXPECT_TRUE(schedules->front().creator.empty());
    }
    // An old run without targets blocks nothing; a new one is journalled with its targets.
    RunRecord next;
    next.runId = "new";
    next.experiment = "new-exp";
    next.ownerPid = ::getpid();
    next.targets = {{"path:/data", "data", "path /data"}};
    EXPECT_TRUE(j->beginRun(next, [](const RunRecord&) { return true; }).ok());
    EXPECT_EQ(j->run("new")->targets.size(), 1u);
    std::error_code ec;
    fs::remove_all(tmpl, ec);
  }
}

}  // namespace
}  // namespace chaosd
