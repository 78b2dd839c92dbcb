// The process family's typed records (injectors/process/ProcessRecords.h): undo records in the
// exact format prepare() and execUndo() write today (the guardian of a later release reverts
// from them), corrupt records refused as values, process.kill's arguments, and the observed
// entries the reports read.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <string>
#include <vector>

#include "injectors/process/ExecTarget.h"
#include "injectors/process/ProcessRecords.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Mutation = std::function<void(Json&)>;

// process.kill as prepare() writes it: one victim, SIGTERM, the experiment's seed (above 2^63).
const char* kKillRecord = R"json({
  "version": 1, "faultId": "run-1-f1", "faultType": "process.kill",
  "selectorText": "process name=api AND cmdline=/--worker/",
  "selector": {"name": "api", "cmdline": "--worker", "cgroup": "", "user": "", "pidFile": ""},
  "selection": {"mode": "count", "count": 2, "fraction": 0.0},
  "seed": 18446744073709551600, "seedSource": "experiment", "signal": 15,
  "durationNs": 0, "intervalNs": 0, "noop": false, "matched": 3, "eligible": 2,
  "refused": ["pid 1 (init) is protected: it is the init process (PID 1)"],
  "victims": [{"pid": 101, "startTime": 5000, "comm": "api"},
              {"pid": 102, "startTime": 5001, "comm": "a p)i"}]
})json";

// process.kill with an interval, a pid selector and a seed drawn at random.
const char* kIntervalKillRecord = R"json({
  "version": 1, "faultId": "run-1-f2", "faultType": "process.kill",
  "selectorText": "process pid=77",
  "selector": {"name": "", "cmdline": "", "cgroup": "", "user": "", "pidFile": "", "pid": 77},
  "selection": {"mode": "all", "count": 0, "fraction": 0.0},
  "seed": 42, "seedSource": "random", "signal": 9,
  "durationNs": 1000000000, "intervalNs": 250000000, "noop": false, "matched": 1,
  "eligible": 1, "refused": [], "victims": [{"pid": 77, "startTime": 9, "comm": "w"}]
})json";

// `empty: skip` and nothing matched.
const char* kNoopKillRecord = R"json({
  "version": 1, "faultId": "run-1-f3", "faultType": "process.kill",
  "selectorText": "process name=none",
  "selector": {"name": "none", "cmdline": "", "cgroup": "", "user": "", "pidFile": ""},
  "selection": {"mode": "one", "count": 0, "fraction": 0.0},
  "seed": 7, "seedSource": "experiment", "signal": 9,
  "durationNs": 0, "intervalNs": 0, "noop": true, "matched": 0, "eligible": 0,
  "refused": [], "victims": []
})json";

// process.pause: one victim to stop, one already stopped by someone else.
const char* kPauseRecord = R"json({
  "version": 1, "faultId": "run-2-f1", "faultType": "process.pause",
  "selectorText": "process user=app",
  "selector": {"name": "", "cmdline": "", "cgroup": "/app.slice", "user": "app", "pidFile": ""},
  "selection": {"mode": "percent", "count": 0, "fraction": 0.5},
  "seed": 1234, "seedSource": "random", "signal": 19,
  "durationNs": 30000000000, "intervalNs": 0, "noop": false, "matched": 4, "eligible": 4,
  "refused": [],
  "victims": [{"pid": 201, "startTime": 700, "comm": "worker"},
              {"pid": 202, "startTime": 701, "comm": "worker"}],
  "stopped": [{"pid": 201, "startTime": 700, "comm": "worker"}],
  "alreadyStopped": [{"pid": 202, "startTime": 701, "comm": "worker"}]
})json";

// process.pause over two containers (`mode: all`): their groups, each init spared.
const char* kSeveralContainersPauseRecord = R"json({
  "version": 1, "faultId": "run-3-f1", "faultType": "process.pause",
  "selectorText": "process cgroup=/machine.slice/libpod-a.scope|/machine.slice/libpod-b.scope",
  "selector": {"name": "", "cmdline": "", "cgroup": "/machine.slice/libpod-a.scope",
               "user": "", "pidFile": "", "exceptPids": [300, 400],
               "moreCgroups": ["/machine.slice/libpod-b.scope"]},
  "selection": {"mode": "all", "count": 0, "fraction": 0.0},
  "seed": 1, "seedSource": "random", "signal": 19,
  "durationNs": 30000000000, "intervalNs": 0, "noop": false, "matched": 2, "eligible": 2,
  "refused": [],
  "victims": [{"pid": 301, "startTime": 900, "comm": "app"},
              {"pid": 401, "startTime": 901, "comm": "app"}],
  "stopped": [{"pid": 301, "startTime": 900, "comm": "app"},
              {"pid": 401, "startTime": 901, "comm": "app"}],
  "alreadyStopped": []
})json";

// process.exec as execUndo() writes it.
const char* kExecRecord =
    R"json({"pid": 4242, "startTime": 123456, "program": "/usr/bin/python3", "graceMs": 5000})json";

// The record as the journal holds it (text), parsed, and written again.
void expectRoundTrip(const char* text) {
  const Json record = Json::parse(text);
  auto plan = ProcessPlan::fromJson(record);
  ASSERT_TRUE(plan.ok()) << plan.error().describe();
  EXPECT_EQ(plan->toJson(), record);
  EXPECT_EQ(plan->toJson().dump(), record.dump());
}

void expectAllRefused(const Json& good, const std::vector<Mutation>& mutations,
                      const std::function<bool(const Json&)>& parses) {
  for (const auto& mutate : mutations) {
    Json bad = good;
    mutate(bad);
    bool ok = true;
    EXPECT_NO_THROW(ok = parses(bad)) << bad.dump(-1, ' ', false, Json::error_handler_t::replace);
    EXPECT_FALSE(ok) << bad.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

TEST(ProcessRecordsTest, TodaysUndoRecordsRoundTripUnchanged) {
  expectRoundTrip(kKillRecord);
  expectRoundTrip(kIntervalKillRecord);
  expectRoundTrip(kNoopKillRecord);
  expectRoundTrip(kPauseRecord);
  expectRoundTrip(kSeveralContainersPauseRecord);

  const Json exec = Json::parse(kExecRecord);
  auto undo = ExecUndo::fromJson(exec);
  ASSERT_TRUE(undo.ok()) << undo.error().describe();
  EXPECT_EQ(undo->toJson(), exec);
  EXPECT_EQ(undo->toJson().dump(), exec.dump());
}

TEST(ProcessRecordsTest, KillRecordParsesIntoItsFields) {
  auto p = ProcessPlan::fromJson(Json::parse(kKillRecord), "run-1-f1");
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->faultId, "run-1-f1");
  EXPECT_EQ(p->faultType, "process.kill");
  EXPECT_EQ(p->selector.name, "api");
  EXPECT_EQ(p->selector.cmdline, "--worker");
  EXPECT_FALSE(p->selector.pid.has_value());
  EXPECT_EQ(p->selection.mode, SelectionMode::kCount);
  EXPECT_EQ(p->selection.count, 2u);
  EXPECT_EQ(p->seed, 18446744073709551600ULL);
  EXPECT_EQ(p->selection.seed, p->seed);
  EXPECT_TRUE(p->seedFromExperiment);
  EXPECT_EQ(p->signal, SIGTERM);
  EXPECT_EQ(p->duration, 0ns);
  EXPECT_EQ(p->interval, 0ns);
  EXPECT_FALSE(p->noop);
  EXPECT_EQ(p->matched, 3u);
  EXPECT_EQ(p->eligible, 2u);
  ASSERT_EQ(p->refused.size(), 1u);
  ASSERT_EQ(p->victims.size(), 2u);
  EXPECT_EQ(p->victims[1].pid, 102);
  EXPECT_EQ(p->victims[1].startTime, 5001u);
  EXPECT_EQ(p->victims[1].comm, "a p)i");
  EXPECT_TRUE(p->stopped.empty());

  auto interval = ProcessPlan::fromJson(Json::parse(kIntervalKillRecord));
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(interval->selector.pid, 77);
  EXPECT_EQ(interval->selection.mode, SelectionMode::kAll);
  EXPECT_FALSE(interval->seedFromExperiment);
  EXPECT_EQ(interval->duration, 1s);
  EXPECT_EQ(interval->interval, 250ms);
}

TEST(ProcessRecordsTest, PauseRecordParsesIntoItsFields) {
  auto p = ProcessPlan::fromJson(Json::parse(kPauseRecord), "run-2-f1");
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->faultType, "process.pause");
  EXPECT_EQ(p->selector.cgroup, "/app.slice");
  EXPECT_EQ(p->selector.user, "app");
  EXPECT_EQ(p->selection.mode, SelectionMode::kPercent);
  EXPECT_DOUBLE_EQ(p->selection.fraction, 0.5);
  EXPECT_EQ(p->signal, SIGSTOP);
  EXPECT_EQ(p->duration, 30s);
  ASSERT_EQ(p->stopped.size(), 1u);
  EXPECT_EQ(p->stopped[0].pid, 201);
  EXPECT_EQ(p->stopped[0].startTime, 700u);
  ASSERT_EQ(p->alreadyStopped.size(), 1u);
  EXPECT_EQ(p->alreadyStopped[0].pid, 202);
}

TEST(ProcessRecordsTest, AbsentOptionalKeysTakeTheirDefaults) {
  // Only faultId and faultType are required: a kill record has no stopped lists at all.
  auto p = ProcessPlan::fromJson(Json{{"faultId", "f"}, {"faultType", "process.kill"}});
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->selection.mode, SelectionMode::kAll);
  EXPECT_EQ(p->seed, 0u);
  EXPECT_FALSE(p->seedFromExperiment);
  EXPECT_TRUE(p->victims.empty());
  EXPECT_TRUE(p->stopped.empty());

  // As in every release: a selector field of the wrong type, or a mode this release does not
  // know, reads as absent; stopping the processes must not depend on it.
  Json lenient = Json::parse(kPauseRecord);
  lenient["selector"]["name"] = 5;
  lenient["selection"]["mode"] = "half";
  lenient["refused"] = "none";
  auto q = ProcessPlan::fromJson(lenient);
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->selector.name, "");
  EXPECT_EQ(q->selection.mode, SelectionMode::kAll);
  EXPECT_TRUE(q->refused.empty());
  EXPECT_EQ(q->stopped.size(), 1u);
}

TEST(ProcessRecordsTest, CorruptProcessRecordsFailAsValues) {
  const Json good = Json::parse(kPauseRecord);
  auto foreign = ProcessPlan::fromJson(good, "run-9");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(foreign.error().message().find("belongs to fault run-2-f1"), std::string::npos);

  expectAllRefused(
      good,
      {
          [](Json& j) { j = Json::array(); },
          [](Json& j) { j = nullptr; },
          [](Json& j) { j = "process.pause"; },
          [](Json& j) { j.erase("faultId"); },
          [](Json& j) { j["faultType"] = 3; },
          [](Json& j) { j["selectorText"] = Json::array(); },
          [](Json& j) { j["selection"]["count"] = "two"; },
          [](Json& j) { j["selection"]["mode"] = 1; },
          [](Json& j) { j["seed"] = "seven"; },
          [](Json& j) { j["seed"] = "\xff\xfe"; },  // not UTF-8: the message must not throw
          [](Json& j) { j["seedSource"] = false; },
          [](Json& j) { j["signal"] = nullptr; },
          [](Json& j) { j["durationNs"] = Json::array(); },
          [](Json& j) { j["intervalNs"] = 1e300; },  // no int64 holds it
          [](Json& j) { j["noop"] = 1; },
          [](Json& j) { j["matched"] = "3"; },
          [](Json& j) { j["stopped"] = "201"; },
          [](Json& j) { j["stopped"][0] = 201; },
          [](Json& j) { j["stopped"][0].erase("startTime"); },
          [](Json& j) { j["stopped"][0]["pid"] = 0; },  // a process group
          [](Json& j) { j["stopped"][0]["pid"] = 1ULL << 40; },
          [](Json& j) { j["victims"][0]["pid"] = -1; },  // every process
          [](Json& j) { j["victims"][0]["pid"] = "201"; },
          [](Json& j) { j["victims"][0]["startTime"] = -5; },
          [](Json& j) { j["victims"][0]["comm"] = 5; },
          [](Json& j) { j["alreadyStopped"] = Json::object(); },
      },
      [](const Json& j) {
        auto p = ProcessPlan::fromJson(j, "run-2-f1");
        if (!p.ok()) {
          EXPECT_EQ(p.error().code(), ErrorCode::kInvalid);
        }
        return p.ok();
      });
}

TEST(ProcessRecordsTest, ExecRecordsParseAndCorruptOnesFailAsValues) {
  StartedExec started;
  started.pid = 4242;
  started.startTime = 123456;
  started.program = "/usr/bin/python3";
  EXPECT_EQ(execUndo(started, 5000ms), Json::parse(kExecRecord));

  auto undo = ExecUndo::fromJson(Json::parse(kExecRecord));
  ASSERT_TRUE(undo.ok());
  EXPECT_EQ(undo->pid, 4242);
  EXPECT_EQ(undo->startTime, 123456u);
  EXPECT_EQ(undo->program, "/usr/bin/python3");
  EXPECT_EQ(undo->grace, 5000ms);

  // Stopping the group needs only its pid and start time.
  auto bare = ExecUndo::fromJson(Json{{"pid", 10}, {"startTime", 3u}, {"graceMs", "soon"}});
  ASSERT_TRUE(bare.ok()) << bare.error().describe();
  EXPECT_EQ(bare->grace, 5000ms);
  EXPECT_EQ(bare->program, "");

  expectAllRefused(Json::parse(kExecRecord),
                   {
                       [](Json& j) { j = Json::array(); },
                       [](Json& j) { j.erase("pid"); },
                       [](Json& j) { j.erase("startTime"); },
                       [](Json& j) { j["pid"] = "4242"; },
                       [](Json& j) { j["pid"] = 1; },  // init
                       [](Json& j) { j["pid"] = 0; },
                       [](Json& j) { j["pid"] = -4242; },
                       [](Json& j) { j["pid"] = 1ULL << 40; },
                       [](Json& j) { j["startTime"] = -1; },
                       [](Json& j) { j["startTime"] = "\xff"; },
                   },
                   [](const Json& j) {
                     auto u = ExecUndo::fromJson(j);
                     if (!u.ok()) {
                       EXPECT_EQ(u.error().code(), ErrorCode::kInvalid);
                     }
                     return u.ok();
                   });
  // The JSON entry points refuse it too, before touching any process.
  EXPECT_FALSE(stopExec(Json::array()).ok());
  EXPECT_FALSE(execLeftovers(Json{{"pid", 1}, {"startTime", 1u}}).ok());
}

TEST(ProcessRecordsTest, KillArgsParseFromTheNormalisedArgs) {
  auto defaults = KillArgs::fromJson(Json::object());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->signal, SIGKILL);
  EXPECT_EQ(defaults->interval, 0ns);

  auto term = KillArgs::fromJson(Json{{"signal", SIGTERM}});
  ASSERT_TRUE(term.ok());
  EXPECT_EQ(term->signal, SIGTERM);
  EXPECT_EQ(term->interval, 0ns);
  EXPECT_EQ(term->toJson(), (Json{{"signal", SIGTERM}}));

  const Json normalised = {{"signal", 9}, {"interval", 250000000}};
  auto interval = KillArgs::fromJson(normalised);
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(interval->signal, SIGKILL);
  EXPECT_EQ(interval->interval, 250ms);
  EXPECT_EQ(interval->toJson(), normalised);

  auto asDouble = KillArgs::fromJson(Json{{"interval", 2e8}});
  ASSERT_TRUE(asDouble.ok());
  EXPECT_EQ(asDouble->interval, 200ms);

  for (const Json& bad :
       {Json{{"signal", "TERM"}}, Json{{"signal", 15.5}}, Json{{"signal", 1LL << 40}},
        Json{{"interval", "1s"}}, Json{{"interval", nullptr}}}) {
    auto parsed = KillArgs::fromJson(bad);
    ASSERT_FALSE(parsed.ok()) << bad.dump();
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalid);
  }
}

TEST(ProcessRecordsTest, ObservedEntriesKeepTheKeysTheReportsRead) {
  KillOutcome signalled;
  signalled.victim = Victim{101, 5000, "api"};
  signalled.outcome = "signalled";
  signalled.signalledMs = 0.5;
  // Not seen dead yet: diedMs is there, null.
  EXPECT_EQ(signalled.toJson(), Json::parse(R"json({"pid": 101, "startTime": 5000, "comm": "api",
      "outcome": "signalled", "signalledMs": 0.5, "diedMs": null})json"));
  signalled.round = 3;
  signalled.diedMs = 2.0;
  signalled.diedAfterSignalMs = 1.5;
  EXPECT_EQ(signalled.toJson(), Json::parse(R"json({"pid": 101, "startTime": 5000, "comm": "api",
      "round": 3, "outcome": "signalled", "signalledMs": 0.5, "diedMs": 2.0,
      "diedAfterSignalMs": 1.5})json"));

  KillOutcome exited;
  exited.victim = Victim{102, 5001, "b"};
  exited.outcome = "exited before the signal";
  EXPECT_EQ(exited.toJson(), Json::parse(R"json({"pid": 102, "startTime": 5001, "comm": "b",
      "outcome": "exited before the signal"})json"));

  KillOutcome emptyRound;
  emptyRound.round = 2;
  emptyRound.atMs = 500.0;
  emptyRound.outcome = "no eligible process";
  EXPECT_EQ(
      emptyRound.toJson(),
      Json::parse(R"json({"round": 2, "atMs": 500.0, "outcome": "no eligible process"})json"));

  RestartSeen restart;
  restart.process = Victim{301, 6000, "api"};
  restart.detectedMs = 40.0;
  EXPECT_EQ(restart.toJson(), Json::parse(R"json({"pid": 301, "startTime": 6000, "comm": "api",
      "detectedMs": 40.0})json"));
  restart.replaces = 101;
  restart.restartMs = 12.5;
  EXPECT_EQ(restart.toJson(), Json::parse(R"json({"pid": 301, "startTime": 6000, "comm": "api",
      "detectedMs": 40.0, "replaces": 101, "restartMs": 12.5})json"));

  PauseOutcome paused;
  paused.victim = Victim{201, 700, "worker"};
  paused.outcome = "stopped";
  paused.signalledMs = 0.1;
  paused.stoppedMs = 0.3;
  EXPECT_EQ(paused.toJson(), Json::parse(R"json({"pid": 201, "startTime": 700, "comm": "worker",
      "outcome": "stopped", "signalledMs": 0.1, "stoppedMs": 0.3})json"));
}

}  // namespace
}  // namespace chaosd
