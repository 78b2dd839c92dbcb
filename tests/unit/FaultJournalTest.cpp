#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/testing/FileFaultInjector.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-journal-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

RunRecord makeRun(const std::string& id, pid_t pid = ::getpid(), uint64_t start = 0) {
  RunRecord run;
  run.runId = id;
  run.experiment = "exp-" + id;
  run.ownerPid = pid;
  run.ownerStartTime = start != 0 ? start : *selfStartTime();
  return run;
}

FaultIntent makeFault(const std::string& id, bool durable = false) {
  FaultIntent f;
  f.faultId = id;
  f.step = "step-" + id;
  f.faultType = "test.none";
  f.target = "target of " + id;
  f.undo = {{"id", id}, {"n", 42}};
  f.resources = {"res:" + id};
  f.durable = durable;
  return f;
}

FaultJournal open(const std::string& path) {
  auto j = openJournal(path);
  if (!j) ADD_FAILURE() << j.error().describe();
  return std::move(*j);
}

FaultState stateOf(FaultJournal& j, const std::string& id) { return j.fault(id)->state; }

// ---- schema, open, reopen ---------------------------------------------------------------

TEST(FaultJournalTest, CreatesVersionedSchemaInWalModeAndItsDirectory) {
  TempDir dir;
  std::string path = dir.file("sub/dir/journal.db");
  {
    auto j = open(path);
    EXPECT_EQ(*j.schemaVersion(), kJournalSchemaVersion);
    ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
    EXPECT_TRUE(fs::exists(path + "-wal"));  // WAL mode: writes go to the -wal file
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST(FaultJournalTest, RefusesANewerSchema) {
  TempDir dir;
  std::string path = dir.file("journal.db");
  { auto j = open(path); }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto j = openJournal(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(j.error().describe().find("99"), std::string::npos) << j.error().describe();
}

TEST(FaultJournalTest, MigratesAnEmptyDatabaseAndReopensWithoutChange) {
  TempDir dir;
  std::string path = dir.file("journal.db");
  {
    sqlite3* raw = nullptr;  // an existing, empty file: version 0
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    sqlite3_close(raw);
  }
  {
    auto j = open(path);
    ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
    ASSERT_TRUE(j.recordIntent("r1", makeFault("f1")).ok());
    ASSERT_TRUE(j.markApplied("f1").ok());
  }
  auto j = open(path);
  EXPECT_EQ(*j.schemaVersion(), kJournalSchemaVersion);
  auto f = j.fault("f1");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->state, FaultState::kApplied);
  EXPECT_EQ(j.run("r1")->experiment, "exp-r1");
}

TEST(FaultJournalTest, FailsOnAFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = dir.file("journal.db");
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("this is not an sqlite database, not at all, no header here ....", f);
  std::fclose(f);
  auto j = openJournal(path);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().describe().find(path), std::string::npos) << j.error().describe();
}

// ---- records and the state machine ------------------------------------------------------

TEST(FaultJournalTest, RoundTripsEveryField) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  auto run = makeRun("r1");
  run.startedAt = WallTime(std::chrono::seconds(1'700'000'000));
  ASSERT_TRUE(j.beginRun(run).ok());
  auto intent = makeFault("f1", true);
  intent.deadline = WallTime(std::chrono::nanoseconds(1'700'000'060'123'456'789));
  intent.revertible = false;
  intent.resources = {"a", "b"};
  auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(j.recordIntent("r1", intent).ok());

  auto f = j.fault("f1");
  ASSERT_TRUE(f.ok()) << f.error().describe();
  EXPECT_EQ(f->faultId, "f1");
  EXPECT_EQ(f->runId, "r1");
  EXPECT_EQ(f->step, "step-f1");
  EXPECT_EQ(f->faultType, "test.none");
  EXPECT_EQ(f->target, "target of f1");
  EXPECT_EQ(f->undo, intent.undo);
  EXPECT_EQ(f->resources, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->state, FaultState::kIntent);
  EXPECT_EQ(f->deadline, intent.deadline);
  EXPECT_FALSE(f->revertible);
  EXPECT_TRUE(f->durable);
  EXPECT_GE(f->intentAt, before);
  EXPECT_FALSE(f->appliedAt.has_value());
  EXPECT_FALSE(f->revertedAt.has_value());

  auto r = j.run("r1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ownerPid, ::getpid());
  EXPECT_EQ(r->ownerStartTime, *selfStartTime());
  EXPECT_EQ(r->startedAt, run.startedAt);
  EXPECT_FALSE(r->endedAt.has_value());
  EXPECT_EQ(r->outcome, "");
}

TEST(FaultJournalTest, StateMachineAndIdempotentMarks) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(j.recordIntent("r1", makeFault("f1")).ok());

  EXPECT_EQ(*j.markApplied("f1"), true);
  EXPECT_EQ(*j.markApplied("f1"), false);  // a second mark changes nothing
  EXPECT_EQ(stateOf(j, "f1"), FaultState::kApplied);
  EXPECT_TRUE(j.fault("f1")->appliedAt.has_value());

  EXPECT_EQ(*j.markRevertFailed("f1", "EBUSY"), true);
  EXPECT_EQ(stateOf(j, "f1"), FaultState::kRevertFailed);
  EXPECT_EQ(j.fault("f1")->error, "EBUSY");
  EXPECT_EQ(*j.markRevertFailed("f1", "EBUSY again"), true);  // a retry that failed again
  EXPECT_EQ(j.fault("f1")->error, "EBUSY again");

  EXPECT_EQ(*j.markReverted("f1", "guardian"), true);  // a later attempt succeeded
  auto f = j.fault("f1");
  EXPECT_EQ(f->state, FaultState::kReverted);
  EXPECT_EQ(f->revertedBy, "guardian");
  EXPECT_EQ(f->error, "");
  EXPECT_TRUE(f->revertedAt.has_value());

  // The owner's own revert after the guardian's: a no-op, first writer kept.
  EXPECT_EQ(*j.markReverted("f1", "owner"), false);
  EXPECT_EQ(j.fault("f1")->revertedBy, "guardian");
  // A failure reported after someone else succeeded does not undo the success.
  EXPECT_EQ(*j.markRevertFailed("f1", "late"), false);
  EXPECT_EQ(stateOf(j, "f1"), FaultState::kReverted);
  // Applying what was already reverted: the caller must revert again.
  auto applied = j.markApplied("f1");
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kConflict);
}

// The marks of a group in one commit move each fault as the single mark would, leave a fault
// someone else already moved as it is, and write nothing when an id is unknown.
TEST(FaultJournalTest, GroupMarksMoveEachFaultAsTheSingleMarkWould) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  for (const char* id : {"g1", "g2", "g3"}) ASSERT_TRUE(j.recordIntent("r1", makeFault(id)).ok());
  ASSERT_TRUE(j.markReverted("g3", "guardian").ok());  // the guardian got there first

  ASSERT_TRUE(j.markAppliedAll({"g1", "g2", "g3"}).ok());
  EXPECT_EQ(stateOf(j, "g1"), FaultState::kApplied);
  EXPECT_EQ(stateOf(j, "g2"), FaultState::kApplied);
  EXPECT_TRUE(j.fault("g2")->appliedAt.has_value());
  EXPECT_EQ(stateOf(j, "g3"), FaultState::kReverted);  // not brought back

  auto unknown = j.markRevertedAll({"g1", "nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(stateOf(j, "g1"), FaultState::kApplied);  // all or nothing

  ASSERT_TRUE(j.markRevertedAll({"g1", "g2", "g3"}, "owner").ok());
  for (const char* id : {"g1", "g2"}) {
    auto f = j.fault(id);
    EXPECT_EQ(f->state, FaultState::kReverted);
    EXPECT_EQ(f->revertedBy, "owner");
    EXPECT_TRUE(f->revertedAt.has_value());
  }
  EXPECT_EQ(j.fault("g3")->revertedBy, "guardian");  // first writer kept
  EXPECT_TRUE(j.markAppliedAll({}).ok());
}

TEST(FaultJournalTest, IntentCanBeRevertedOrSkippedWithoutApply) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(j.recordIntents("r1", {makeFault("f1"), makeFault("f2"), makeFault("f3")}).ok());

  EXPECT_EQ(*j.markReverted("f1"), true);
  EXPECT_EQ(stateOf(j, "f1"), FaultState::kReverted);

  EXPECT_EQ(*j.markSkipped("f2", "guardian not alive"), true);
  EXPECT_EQ(*j.markSkipped("f2", "again"), false);
  EXPECT_EQ(j.fault("f2")->error, "guardian not alive");
  EXPECT_EQ(*j.markReverted("f2"), false);  // nothing to revert: stays skipped
  EXPECT_EQ(stateOf(j, "f2"), FaultState::kSkipped);
  EXPECT_EQ(j.markApplied("f2").error().code(), ErrorCode::kConflict);

  ASSERT_TRUE(j.markApplied("f3").ok());
  EXPECT_EQ(j.markSkipped("f3", "too late").error().code(), ErrorCode::kConflict);
}

TEST(FaultJournalTest, RejectsUnknownAndDuplicateIds) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  EXPECT_EQ(j.recordIntent("nope", makeFault("f1")).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  EXPECT_EQ(j.beginRun(makeRun("r1")).error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(j.recordIntent("r1", makeFault("f1")).ok());
  EXPECT_EQ(j.recordIntent("r1", makeFault("f1")).error().code(), ErrorCode::kConflict);
  EXPECT_EQ(j.markApplied("zz").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.markReverted("zz").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.markRevertFailed("zz", "x").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.markSkipped("zz", "x").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.fault("zz").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.run("zz").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.endRun("zz", "ok").error().code(), ErrorCode::kNotFound);
}

TEST(FaultJournalTest, BatchIsAllOrNothing) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(j.recordIntent("r1", makeFault("taken")).ok());
  auto r = j.recordIntents("r1", {makeFault("a"), makeFault("taken"), makeFault("b", true)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(j.fault("a").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.faultsOfRun("r1")->size(), 1u);
  // The journal is still usable after the rolled-back transaction.
  ASSERT_TRUE(j.recordIntents("r1", {makeFault("a"), makeFault("b", true)}).ok());
  EXPECT_EQ(j.faultsOfRun("r1")->size(), 3u);
}

TEST(FaultJournalTest, UnrevertedAndHeldQueries) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(j.beginRun(makeRun("r2")).ok());
  ASSERT_TRUE(j.recordIntents("r1", {makeFault("a"), makeFault("b"), makeFault("c")}).ok());
  ASSERT_TRUE(j.recordIntents("r2", {makeFault("d"), makeFault("e")}).ok());
  ASSERT_TRUE(j.recordIntent("r1", makeFault("f")).ok());
  ASSERT_TRUE(j.markApplied("a").ok());
  ASSERT_TRUE(j.markReverted("b").ok());
  ASSERT_TRUE(j.markApplied("c").ok());
  ASSERT_TRUE(j.markRevertFailed("c", "boom").ok());
  ASSERT_TRUE(j.markSkipped("e", "no").ok());

  auto ids = [](const Result<std::vector<FaultRecord>>& rows) {
    std::vector<std::string> out;
    for (const auto& f : *rows) out.push_back(f.faultId);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(j.unreverted("r1")), (V{"a", "c", "f"}));  // in intent order
  EXPECT_EQ(ids(j.unreverted("r2")), (V{"d"}));
  EXPECT_EQ(ids(j.unreverted()), (V{"a", "c", "d", "f"}));
  EXPECT_EQ(ids(j.faultsHeld()), (V{"a", "d", "f"}));  // revert-failed is not "held"
  EXPECT_EQ(ids(j.faultsOfRun("r1")), (V{"a", "b", "c", "f"}));
  auto all = j.unreverted();
  EXPECT_TRUE(
      std::is_sorted(all->begin(), all->end(), [](auto& x, auto& y) { return x.seq < y.seq; }));
  EXPECT_TRUE(j.unreverted("nope")->empty());
}

TEST(FaultJournalTest, EndRunFirstOutcomeWins) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(j.beginRun(makeRun("r2")).ok());
  EXPECT_EQ(j.openRuns()->size(), 2u);
  EXPECT_EQ(*j.endRun("r1", "owner-died"), true);
  EXPECT_EQ(*j.endRun("r1", "ok"), false);
  auto r = j.run("r1");
  EXPECT_EQ(r->outcome, "owner-died");
  EXPECT_TRUE(r->endedAt.has_value());
  auto open = j.openRuns();
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().runId, "r2");
}

TEST(FaultJournalTest, MakeIntentTakesWhatPrepareDecided) {
  FaultRequest request;
  request.runId = "r1";
  request.faultId = "f1";
  request.stepName = "db-latency";
  request.faultType = "network.delay";
  PreparedFault prepared;
  prepared.undo = {{"ifindex", 3}};
  prepared.description = "delay 200ms on veth-db";
  prepared.resources = {"iface:host:veth-db"};
  prepared.revertible = true;
  WallTime deadline = std::chrono::system_clock::now() + 60s;
  auto i = makeIntent(request, prepared, deadline, false);
  EXPECT_EQ(i.faultId, "f1");
  EXPECT_EQ(i.step, "db-latency");
  EXPECT_EQ(i.faultType, "network.delay");
  EXPECT_EQ(i.target, "delay 200ms on veth-db");
  EXPECT_EQ(i.undo, prepared.undo);
  EXPECT_EQ(i.resources, prepared.resources);
  EXPECT_EQ(i.deadline, deadline);
  EXPECT_FALSE(i.durable);
}

TEST(FaultJournalTest, StateNamesRoundTrip) {
  for (auto s : {FaultState::kIntent, FaultState::kApplied, FaultState::kReverted,
                 FaultState::kRevertFailed, FaultState::kSkipped}) {
    EXPECT_EQ(*parseFaultState(faultStateName(s)), s);
  }
  EXPECT_FALSE(parseFaultState("held").ok());
}

// ---- several connections and processes ----------------------------------------------------

TEST(FaultJournalTest, TwoConnectionsSeeEachOthersWrites) {
  TempDir dir;
  auto a = open(dir.file("journal.db"));
  auto b = open(dir.file("journal.db"));
  ASSERT_TRUE(a.beginRun(makeRun("r1")).ok());
  ASSERT_TRUE(b.recordIntent("r1", makeFault("f1")).ok());
  ASSERT_TRUE(a.markApplied("f1").ok());
  EXPECT_EQ(stateOf(b, "f1"), FaultState::kApplied);
  // Owner and guardian racing to revert the same fault: exactly one changes it.
  auto first = b.markReverted("f1", "guardian");
  auto second = a.markReverted("f1", "owner");
  EXPECT_NE(*first, *second);
  EXPECT_EQ(a.fault("f1")->revertedBy, "guardian");
}

// Writers in several processes at once, as owner, guardian and `chaosctl recover` are: every
// write lands, none fails with SQLITE_BUSY (the busy timeout and BEGIN IMMEDIATE serialise).
TEST(FaultJournalTest, SeveralProcessesWriteAtOnce) {
  TempDir dir;
  std::string path = dir.file("journal.db");
  constexpr int kChildren = 3;
  constexpr int kFaults = 60;
  // Prints the first failure, so a failing child says which call failed and why.
  auto work = [&](const std::string& runId) -> bool {
    auto failed = [&](const Error& e) {
      std::fprintf(stderr, "%s: %s\n", runId.c_str(), e.describe().c_str());
      return false;
    };
    auto j = openJournal(path);
    if (!j) return failed(j.error());
    if (auto r = j->beginRun(makeRun(runId)); !r) return failed(r.error());
    for (int i = 0; i < kFaults; ++i) {
      std::string id = runId + "-" + std::to_string(i);
      if (auto r = j->recordIntent(runId, makeFault(id, i % 10 == 0)); !r) return failed(r.error());
      if (auto r = j->markApplied(id); !r) return failed(r.error());
      if (auto r = j->markReverted(id); !r) return failed(r.error());
    }
    auto r = j->endRun(runId, "ok");
    return r ? true : failed(r.error());
  };
  // Children are forked before this process opens the database: SQLite connections must not
  // cross a fork.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char byte;
      if (::read(go[0], &byte, 1) < 0) ::_exit(3);
      ::_exit(work("child" + std::to_string(c)) ? 0 : 1);
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);  // releases every child at once
  bool parentOk = work("parent");
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  EXPECT_TRUE(parentOk);
  auto j = open(path);
  for (const std::string run : {"parent", "child0", "child1", "child2"}) {
    auto faults = j.faultsOfRun(run);
    ASSERT_TRUE(faults.ok());
    EXPECT_EQ(faults->size(), static_cast<size_t>(kFaults)) << run;
    for (const auto& f : *faults) EXPECT_EQ(f.state, FaultState::kReverted) << f.faultId;
    EXPECT_EQ(j.run(run)->outcome, "ok");
  }
  EXPECT_TRUE(j.unreverted()->empty());
}

// ---- cost of durability (printed, not asserted) -------------------------------------------

struct Stats {
  double medianUs, p90Us, meanUs;
};
Stats stats(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10],
          std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size())};
}

TEST(FaultJournalTest, PrintsTheCostOfRecordIntentPerDurability) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
  constexpr int kRounds = 200;
  std::vector<double> normal, full, batchFull;
  int n = 0;
  auto timeIt = [&](std::vector<double>& into, auto&& fn) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    into.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  };
  for (int i = 0; i < kRounds; ++i) {
    timeIt(normal, [&] { ASSERT_TRUE(j.recordIntent("r1", makeFault(std::to_string(n++))).ok()); });
  }
  for (int i = 0; i < kRounds; ++i) {
    timeIt(full,
           [&] { ASSERT_TRUE(j.recordIntent("r1", makeFault(std::to_string(n++), true)).ok()); });
  }
  for (int i = 0; i < kRounds / 10; ++i) {
    std::vector<FaultIntent> batch;
    for (int k = 0; k < 10; ++k) batch.push_back(makeFault(std::to_string(n++), true));
    timeIt(batchFull, [&] { ASSERT_TRUE(j.recordIntents("r1", batch).ok()); });
  }
  struct statfs sfs {};
  ::statfs(dir.path().c_str(), &sfs);
  auto sn = stats(normal), sf = stats(full), sb = stats(batchFull);
  std::printf(
      "[ measure  ] recordIntent on %s (f_type 0x%lx), %d calls each:\n"
      "[ measure  ]   synchronous=NORMAL (WAL): median %.1f us, p90 %.1f us, mean %.1f us\n"
      "[ measure  ]   synchronous=FULL (durable): median %.1f us, p90 %.1f us, mean %.1f us\n"
      "[ measure  ]   recordIntents, 10 durable faults per batch: median %.1f us per batch "
      "(%.1f us per fault)\n",
      dir.path().c_str(), static_cast<unsigned long>(sfs.f_type), kRounds, sn.medianUs, sn.p90Us,
      sn.meanUs, sf.medianUs, sf.p90Us, sf.meanUs, sb.medianUs, sb.medianUs / 10);
}

// ---- recovery from the journal alone ------------------------------------------------------

// A process that existed and is gone: (pid, start time) of a reaped child.
std::pair<pid_t, uint64_t> deadProcess() {
  int gate[2];
  if (::pipe(gate) != 0) std::abort();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(gate[1]);
    char b;
    (void)!::read(gate[0], &b, 1);
    ::_exit(0);
  }
  ::close(gate[0]);
  uint64_t start = *readStartTime(pid);
  ::close(gate[1]);
  ::waitpid(pid, nullptr, 0);
  return {pid, start};
}

class FaultJournalRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { registerTestFaults(registry_); }

  // Journals and applies a test.file fault of a run; returns its file.
  std::string applyFault(FaultJournal& j, const std::string& runId, const std::string& id,
                         bool durable = false) {
    FaultRequest request;
    request.runId = runId;
    request.faultId = id;
    request.faultType = std::string(kTestFileFault);
    request.args = {{"path", dir_.path().string()}};
    auto prepared = injector_.prepare(request);
    EXPECT_TRUE(prepared.ok());
    EXPECT_TRUE(j.recordIntent(runId, makeIntent(request, *prepared, std::nullopt, durable)).ok());
    EXPECT_TRUE(injector_.apply(id, prepared->undo).ok());
    EXPECT_TRUE(j.markApplied(id).ok());
    return prepared->undo["file"].get<std::string>();
  }

  TempDir dir_;
  FaultRegistry registry_;
  FileFaultInjector injector_;
};

TEST_F(FaultJournalRecoveryTest, OwnerAliveTellsAReusedOrDeadPid) {
  EXPECT_TRUE(ownerAlive(::getpid(), *selfStartTime()));
  EXPECT_FALSE(ownerAlive(::getpid(), *selfStartTime() + 1));  // same pid, another process
  auto [pid, start] = deadProcess();
  EXPECT_FALSE(ownerAlive(pid, start));
  EXPECT_FALSE(ownerAlive(0, 0));
  // A zombie (exited, not yet reaped) is dead.
  pid_t zombie = ::fork();
  if (zombie == 0) ::_exit(0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(zombie), &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(ownerAlive(zombie, *readStartTime(zombie)));
  ::waitpid(zombie, nullptr, 0);
}

TEST_F(FaultJournalRecoveryTest, RevertsDeadOwnersNewestFirstAndSparesLiveOnes) {
  auto j = open(dir_.file("journal.db"));
  auto [deadPid, deadStart] = deadProcess();
  ASSERT_TRUE(j.beginRun(makeRun("dead", deadPid, deadStart)).ok());
  ASSERT_TRUE(j.beginRun(makeRun("live")).ok());
  std::vector<std::string> deadFiles;
  for (int i = 0; i < 3; ++i) deadFiles.push_back(applyFault(j, "dead", "d" + std::to_string(i)));
  std::string liveFile = applyFault(j, "live", "l0");
  // An intent never applied (the owner died between journal and apply).
  FaultIntent intentOnly = makeFault("d-intent");
  intentOnly.faultType = std::string(kTestFileFault);
  intentOnly.undo = {{"file", FileFaultInjector::fileFor(dir_.path(), "d-intent")}};
  ASSERT_TRUE(j.recordIntent("dead", intentOnly).ok());

  auto report = recoverAll(j, registry_);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  std::vector<std::string> order;
  for (const auto& o : report->outcomes) {
    EXPECT_TRUE(o.reverted) << o.fault.faultId << ": " << o.error;
    order.push_back(o.fault.faultId);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"d-intent", "d2", "d1", "d0"}));
  for (const auto& f : deadFiles) EXPECT_FALSE(fs::exists(f)) << f;
  EXPECT_TRUE(j.unreverted("dead")->empty());
  EXPECT_EQ(j.fault("d0")->revertedBy, "recovery");
  EXPECT_EQ(j.run("dead")->outcome, "recovered");
  EXPECT_EQ(report->runsEnded, (std::vector<std::string>{"dead"}));

  // The live owner's fault is untouched...
  ASSERT_EQ(report->ownerAlive.size(), 1u);
  EXPECT_EQ(report->ownerAlive.front().faultId, "l0");
  EXPECT_TRUE(fs::exists(liveFile));
  EXPECT_EQ(stateOf(j, "l0"), FaultState::kApplied);
  // ...until forced; its run stays open (its owner lives and ends it).
  RecoveryFilter force;
  force.force = true;
  report = recoverAll(j, registry_, force);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->reverted(), 1u);
  EXPECT_FALSE(fs::exists(liveFile));
  EXPECT_EQ(stateOf(j, "l0"), FaultState::kReverted);
  EXPECT_EQ(j.run("live")->outcome, "");
}

TEST_F(FaultJournalRecoveryTest, AFaultThatCannotBeRevertedIsAnOutcome) {
  auto j = open(dir_.file("journal.db"));
  auto [pid, start] = deadProcess();
  ASSERT_TRUE(j.beginRun(makeRun("dead", pid, start)).ok());
  ASSERT_TRUE(j.recordIntent("dead", makeFault("unknown-type")).ok());
  std::string file = applyFault(j, "dead", "ok");
  RecoveryFilter only;
  only.runId = "dead";
  auto report = recoverAll(j, registry_, only);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->reverted(), 1u);
  EXPECT_EQ(report->failed(), 1u);
  EXPECT_FALSE(report->clean());
  auto f = j.fault("unknown-type");
  EXPECT_EQ(f->state, FaultState::kRevertFailed);
  EXPECT_NE(f->error.find("test.none"), std::string::npos) << f->error;
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(j.run("dead")->outcome, "recovery-failed");
  // A revert-failed fault is still unreverted: the next recovery tries it again.
  EXPECT_EQ(j.unreverted()->size(), 1u);
}

// After a power cut the journal's runs are of another boot. Their owner's (pid, start time)
// can name a process of the new boot (pids and start ticks count from zero again: a VM's boot
// is nearly deterministic), which must not make the run look alive; and a fault that does not
// survive a reboot (a stopped process, a qdisc) must not be reverted from its record, whose
// pids may name the new boot's processes. A durable one (a filler file) is reverted.
TEST_F(FaultJournalRecoveryTest, AnEarlierBootsRunIsDeadAndOnlyItsDurableFaultsAreReverted) {
  ASSERT_FALSE(currentBootId().empty());
  auto j = open(dir_.file("journal.db"));
  RunRecord before = makeRun("before-reboot");  // this process's pid and start time
  before.bootId = "00000000-0000-4000-8000-000000000000";
  ASSERT_TRUE(j.beginRun(before).ok());
  EXPECT_EQ(j.run("before-reboot")->bootId, before.bootId);
  EXPECT_TRUE(ownerAlive(before.ownerPid, before.ownerStartTime));
  EXPECT_FALSE(journalOwnerAlive(*j.run("before-reboot")));
  std::string kernelState = applyFault(j, "before-reboot", "gone", false);
  std::string filler = applyFault(j, "before-reboot", "kept", true);

  auto report = recoverAll(j, registry_);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_TRUE(report->ownerAlive.empty());
  EXPECT_EQ(report->reverted(), 2u);
  EXPECT_EQ(j.fault("gone")->state, FaultState::kReverted);
  EXPECT_EQ(j.fault("gone")->revertedBy, "reboot");
  EXPECT_TRUE(fs::exists(kernelState));  // not touched: its injector was not called
  EXPECT_EQ(j.fault("kept")->revertedBy, "recovery");
  EXPECT_FALSE(fs::exists(filler));
  EXPECT_EQ(j.run("before-reboot")->outcome, "recovered");

  // A run of this boot with the same owner is alive, as before.
  RunRecord now = makeRun("this-boot");
  now.bootId = currentBootId();
  ASSERT_TRUE(j.beginRun(now).ok());
  EXPECT_TRUE(journalOwnerAlive(*j.run("this-boot")));
  std::filesystem::remove(kernelState);
}

TEST(FaultJournalRetentionTest, PrunesOldEndedRunsButNeverOneStillHoldingAFault) {
  TempDir dir;
  auto j = open(dir.file("journal.db"));
  const auto t0 = std::chrono::system_clock::now() - 24h;
  for (int i = 0; i < 6; ++i) {
    RunRecord r = makeRun("r" + std::to_string(i));
    r.startedAt = t0 + std::chrono::minutes(i);
    ASSERT_TRUE(j.beginRun(r).ok());
    ASSERT_TRUE(j.recordIntent(r.runId, makeFault("f" + std::to_string(i))).ok());
    if (i != 1) {
      ASSERT_TRUE(*j.markReverted("f" + std::to_string(i)));
    }
    if (i != 5) {
      ASSERT_TRUE(*j.endRun(r.runId, "ok"));
    }
  }
  for (int i = 0; i < 10; ++i) {
    AuditRecord a;
    a.action = "submit";
    a.result = "accepted";
    a.detail = std::to_string(i);
    ASSERT_TRUE(j.audit(a).ok());
  }
  // Nothing configured: nothing pruned.
  EXPECT_TRUE(j.prune(Retention{}, std::chrono::system_clock::now())->runs.empty());

  Retention keep;
  keep.keepRuns = 2;
  keep.keepAudit = 3;
  auto pruned = j.prune(keep, std::chrono::system_clock::now());
  ASSERT_TRUE(pruned.ok()) << pruned.error().describe();
  // r5 (open) and r4 are the newest two; r1 ended but its fault is still applied.
  EXPECT_EQ(pruned->runs, (std::vector<std::string>{"r0", "r2", "r3"}));
  EXPECT_EQ(pruned->faults, 3);
  EXPECT_EQ(pruned->auditLines, 7);
  std::vector<std::string> left;
  auto runs = j.runs();
  for (const auto& r : *runs) left.push_back(r.runId);
  EXPECT_EQ(left, (std::vector<std::string>{"r5", "r4", "r1"}));
  EXPECT_EQ(j.fault("f0").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.fault("f1")->state, FaultState::kIntent);
  auto trail = j.auditTrail();
  ASSERT_EQ(trail->size(), 3u);
  EXPECT_EQ(trail->front().detail, "9");
  // Batches: one run a call.
  ASSERT_TRUE(*j.markReverted("f1"));
  keep.keepRuns = 1;
  EXPECT_EQ(j.prune(keep, std::chrono::system_clock::now(), 1)->runs,
            (std::vector<std::string>{"r1"}));

  // By age: every ended run whose end is older than keepFor, whatever keepRuns says.
  Retention byAge;
  byAge.keepFor = 1h;
  EXPECT_TRUE(j.prune(byAge, std::chrono::system_clock::now())->runs.empty());
  auto aged = j.prune(byAge, std::chrono::system_clock::now() + 2h);
  EXPECT_EQ(aged->runs, (std::vector<std::string>{"r4"}));  // r5 is open
  EXPECT_EQ(aged->auditLines, 3);
}

TEST_F(FaultJournalRecoveryTest, FileFaultInjectorIsIdempotentAndTouchesOnlyItsOwn) {
  FaultRequest request;
  request.faultId = "x1";
  request.args = {{"path", dir_.path().string()}};
  auto prepared = injector_.prepare(request);
  ASSERT_TRUE(prepared.ok());
  std::string file = prepared->undo["file"];
  EXPECT_EQ(file, (dir_.path() / ".chaosd-test-x1").string());
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());
  ASSERT_TRUE(injector_.apply("x1", prepared->undo).ok());
  EXPECT_TRUE(fs::exists(file));
  EXPECT_EQ(injector_.audit(prepared->undo)->size(), 1u);
  EXPECT_EQ((*injector_.revert("x1", prepared->undo))["removed"], true);
  EXPECT_EQ((*injector_.revert("x1", prepared->undo))["removed"], false);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());

  std::string foreign = dir_.file("precious");
  std::FILE* f = std::fopen(foreign.c_str(), "w");
  std::fclose(f);
  EXPECT_FALSE(injector_.revert("x", {{"file", foreign}}).ok());
  EXPECT_TRUE(fs::exists(foreign));
  request.args = {{"path", dir_.file("missing")}};
  EXPECT_FALSE(injector_.prepare(request).ok());
  request.args = nlohmann::json::object();
  EXPECT_EQ(injector_.prepare(request).error().code(), ErrorCode::kInvalid);
}

}  // namespace
}  // namespace chaosd

// ---- opening only what exists; the command line over the journal --------------------------

namespace chaosd {
namespace {

using chaosd::testing::runShell;

TEST(FaultJournalOpenTest, ExistingModeCreatesNothing) {
  TempDir dir;
  const std::string path = dir.file("state/journal.db");
  auto j = openJournal(path, JournalOpen::kExisting);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(j.error().message(), "no journal at " + path);
  EXPECT_FALSE(fs::exists(dir.file("state")));
  { auto created = open(path); }
  EXPECT_TRUE(openJournal(path, JournalOpen::kExisting).ok());
}

TEST(JournalCommandsTest, FaultsAndRecoverWithoutAJournalCreateNothing) {
  TempDir dir;
  const std::string state = dir.file("never-used");
  int st = -1;
  std::string out = runShell(std::string(CHAOSCTL_PATH) + " faults --state-dir " + state, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(out, "no faults held (no journal at " + state + "/journal.db)\n");
  out = runShell(std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + state, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(out, "[]\n");
  out = runShell(std::string(CHAOSCTL_PATH) + " recover --state-dir " + state, &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(out, "nothing to recover (no journal at " + state + "/journal.db)\n");
  EXPECT_FALSE(fs::exists(state)) << "reading the journal must not create it";
}

TEST(JournalCommandsTest, FaultsListsHeldAndRevertFailedButNotReverted) {
  TempDir dir;
  {
    auto j = open(dir.file("journal.db"));
    ASSERT_TRUE(j.beginRun(makeRun("r1")).ok());
    for (const char* id : {"held", "stuck", "done"}) {
      ASSERT_TRUE(j.recordIntent("r1", makeFault(id)).ok());
      ASSERT_TRUE(j.markApplied(id).ok());
    }
    ASSERT_TRUE(j.markRevertFailed("stuck", "RTM_DELQDISC: Device or resource busy").ok());
    ASSERT_TRUE(j.markReverted("done").ok());
  }
  int st = -1;
  const std::string out = runShell(
      std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " + dir.path().string(), &st);
  ASSERT_EQ(st, 0) << out;
  auto list = nlohmann::json::parse(out);
  ASSERT_EQ(list.size(), 2u) << out;
  EXPECT_EQ(list[0]["id"], "held");
  EXPECT_EQ(list[0]["state"], "applied");
  EXPECT_EQ(list[0]["owner"], "pid " + std::to_string(::getpid()) + " (running)");
  EXPECT_EQ(list[1]["id"], "stuck");
  EXPECT_EQ(list[1]["state"], "revert-failed");
  EXPECT_EQ(list[1]["error"], "RTM_DELQDISC: Device or resource busy");
  const std::string text =
      runShell(std::string(CHAOSCTL_PATH) + " faults --state-dir " + dir.path().string(), &st);
  EXPECT_NE(text.find("revert failed: RTM_DELQDISC: Device or resource busy (run chaosctl "
                      "recover)"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace chaosd
