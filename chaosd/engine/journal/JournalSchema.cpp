#include "chaosd/engine/journal/JournalSchema.h"

#include <string>

#include "chaosd/engine/journal/FaultJournal.h"
#include "chaosd/engine/journal/Sqlite.h"

namespace chaosd {
namespace {

// Version 1. Times are nanoseconds since the Unix epoch (wall clock). `seq` keeps the order of
// intent, which revert follows backwards.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE runs (
  run_id           TEXT PRIMARY KEY,
  experiment       TEXT NOT NULL,
  owner_pid        INTEGER NOT NULL,
  owner_start_time INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  ended_at         INTEGER,
  outcome          TEXT NOT NULL DEFAULT ''
);
CREATE TABLE faults (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  fault_id    TEXT NOT NULL UNIQUE,
  run_id      TEXT NOT NULL REFERENCES runs(run_id),
  step        TEXT NOT NULL,
  fault_type  TEXT NOT NULL,
  target      TEXT NOT NULL,
  undo        TEXT NOT NULL,
  resources   TEXT NOT NULL,
  state       TEXT NOT NULL
              CHECK (state IN ('intent', 'applied', 'reverted', 'revert-failed', 'skipped')),
  error       TEXT NOT NULL DEFAULT '',
  reverted_by TEXT NOT NULL DEFAULT '',
  intent_at   INTEGER NOT NULL,
  applied_at  INTEGER,
  reverted_at INTEGER,
  deadline_at INTEGER,
  revertible  INTEGER NOT NULL,
  durable     INTEGER NOT NULL
);
CREATE INDEX faults_by_run ON faults(run_id, seq);
CREATE INDEX faults_unreverted ON faults(seq)
  WHERE state IN ('intent', 'applied', 'revert-failed');
)sql";

// Version 2: the daemon's schedules. `vars` is a JSON object; times as in version 1.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE schedules (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  cron          TEXT NOT NULL,
  timezone      TEXT NOT NULL DEFAULT '',
  window_start  TEXT NOT NULL DEFAULT '',
  window_end    TEXT NOT NULL DEFAULT '',
  max_runs      INTEGER,
  runs_started  INTEGER NOT NULL DEFAULT 0,
  paused        INTEGER NOT NULL DEFAULT 0,
  experiment    TEXT NOT NULL,
  vars          TEXT NOT NULL DEFAULT '{}',
  created_at    INTEGER NOT NULL,
  last_fire_at  INTEGER,
  last_run_id   TEXT NOT NULL DEFAULT ''
);
)sql";

// Version 3: what each run's faults touch, a JSON array of {key, target, what}.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE runs ADD COLUMN targets TEXT NOT NULL DEFAULT '[]';
)sql";

// Version 4: who asked (the daemon's caller: uid, gid, groups, pid, experiment hash) for each
// run and schedule, as JSON objects ('{}': chaosctl run, or journalled before version 4), and
// the daemon's audit trail: every submit, abort, schedule change and refusal.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE runs ADD COLUMN caller TEXT NOT NULL DEFAULT '{}';
ALTER TABLE schedules ADD COLUMN creator TEXT NOT NULL DEFAULT '{}';
CREATE TABLE audit (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  at              INTEGER NOT NULL,
  action          TEXT NOT NULL,
  result          TEXT NOT NULL,
  uid             INTEGER NOT NULL,
  pid             INTEGER NOT NULL,
  experiment_hash TEXT NOT NULL DEFAULT '',
  run_id          TEXT NOT NULL DEFAULT '',
  schedule_id     TEXT NOT NULL DEFAULT '',
  detail          TEXT NOT NULL DEFAULT ''
);
)sql";

// Version 5: the boot id (/proc/sys/kernel/random/boot_id) of each run's owner: after a power
// cut the owner's pid and start time may name a process of the new boot.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE runs ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
)sql";

}  // namespace

Result<void> upgradeJournalSchema(sqlite3* db) {
  using sqlite::exec;
  using sqlite::queryInt;
  auto version = queryInt(db, "PRAGMA user_version");
  if (!version) return std::move(version).error();
  if (*version > kJournalSchemaVersion) {
    return Error(ErrorCode::kUnsupported, "journal schema version " + std::to_string(*version) +
                                              " is newer than this chaosd understands (" +
                                              std::to_string(kJournalSchemaVersion) + ")");
  }
  if (*version < 1) CHAOSD_TRY(exec(db, kSchemaV1, "creating the journal schema"));
  if (*version < 2) CHAOSD_TRY(exec(db, kSchemaV2, "adding the schedules table"));
  if (*version < 3) CHAOSD_TRY(exec(db, kSchemaV3, "adding the targets of runs"));
  if (*version < 4) CHAOSD_TRY(exec(db, kSchemaV4, "adding callers and the audit trail"));
  if (*version < 5) CHAOSD_TRY(exec(db, kSchemaV5, "adding the boot of each run"));
  // Later versions add their steps here: if (*version < 6) ...
  if (*version != kJournalSchemaVersion) {
    std::string pragma = "PRAGMA user_version=" + std::to_string(kJournalSchemaVersion);
    CHAOSD_TRY(exec(db, pragma.c_str(), "recording the schema version"));
  }
  return success();
}

}  // namespace chaosd
