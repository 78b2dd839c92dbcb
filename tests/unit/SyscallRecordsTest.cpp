// syscall.error's and syscall.delay's typed records without root: the undo records in the exact
// format the journal holds parse and convert back to the same JSON, and give the supervisor its
// rule; damaged records fail as values; the normalised args parse to the struct prepare acts
// on. prepare(), apply() and revert() run against a supervisor of a listener that never
// speaks (an eventfd), so no process is filtered.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/syscall/SyscallInjector.h"
#include "injectors/syscall/SyscallRecords.h"
#include "injectors/syscall/SyscallSupervisor.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;

// As prepare() writes them today (x86-64 numbers; fromJson never resolves them again).
constexpr const char* kErrorRecord = R"({
  "faultId": "eio", "pid": 4242, "startTime": 987654321, "syscalls": ["write", "fsync"],
  "numbers": [1, 74], "errno": "EIO", "errnoValue": 5, "probability": 0.3,
  "path": "*/out.bin", "seed": 18446744073709551000})";
constexpr const char* kDelayRecord = R"({
  "faultId": "slow", "pid": 77, "startTime": 12, "syscalls": ["fsync"], "numbers": [74],
  "delayNs": 50000000, "probability": 1.0, "first": 10, "after": 2, "seed": 7})";

nlohmann::json parse(const char* text) { return nlohmann::json::parse(text); }

void expectRefused(const nlohmann::json& j) {
  auto r = SyscallUndo::fromJson(j);
  ASSERT_FALSE(r.ok()) << j.dump();
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid) << r.error().describe();
}

nlohmann::json with(const char* text, const char* key, nlohmann::json value) {
  nlohmann::json j = parse(text);
  j[key] = std::move(value);
  return j;
}

nlohmann::json without(const char* text, const char* key) {
  nlohmann::json j = parse(text);
  j.erase(key);
  return j;
}

TEST(SyscallRecordsTest, UndoRecordsOfTodayParseAndConvertBackUnchanged) {
  for (const char* text : {kErrorRecord, kDelayRecord}) {
    const nlohmann::json journalled = parse(text);
    auto u = SyscallUndo::fromJson(journalled);
    ASSERT_TRUE(u.ok()) << u.error().describe();
    EXPECT_EQ(u->toJson(), journalled);
    EXPECT_EQ(u->toJson().dump(), journalled.dump());
  }
}

TEST(SyscallRecordsTest, AnErrorRecordGivesTheSupervisorItsRule) {
  auto u = SyscallUndo::fromJson(parse(kErrorRecord));
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->pid, 4242);
  EXPECT_EQ(u->startTime, 987654321u);
  EXPECT_EQ(u->syscalls, (std::vector<std::string>{"write", "fsync"}));
  ASSERT_TRUE(std::holds_alternative<SyscallErrno>(u->action));
  EXPECT_EQ(std::get<SyscallErrno>(u->action).name, "EIO");
  const SyscallRule rule = u->rule();
  EXPECT_EQ(rule.faultId, "eio");
  EXPECT_EQ(rule.syscalls, (std::set<int>{1, 74}));
  EXPECT_EQ(rule.errnoValue, 5);
  EXPECT_EQ(rule.delay, 0ns);
  EXPECT_DOUBLE_EQ(rule.probability, 0.3);
  EXPECT_EQ(rule.pathGlob, "*/out.bin");
  EXPECT_EQ(rule.first, 0u);
  EXPECT_EQ(rule.after, 0u);
  EXPECT_EQ(rule.seed, 18446744073709551000u);  // above 2^63: kept as unsigned
}

TEST(SyscallRecordsTest, ADelayRecordGivesTheSupervisorItsRule) {
  auto u = SyscallUndo::fromJson(parse(kDelayRecord));
  ASSERT_TRUE(u.ok()) << u.error().describe();
  ASSERT_TRUE(std::holds_alternative<SyscallDelay>(u->action));
  const SyscallRule rule = u->rule();
  EXPECT_EQ(rule.faultId, "slow");
  EXPECT_EQ(rule.syscalls, (std::set<int>{74}));
  EXPECT_EQ(rule.errnoValue, 0);
  EXPECT_EQ(rule.delay, 50ms);
  EXPECT_DOUBLE_EQ(rule.probability, 1.0);
  EXPECT_EQ(rule.pathGlob, "");
  EXPECT_EQ(rule.first, 10u);
  EXPECT_EQ(rule.after, 2u);
  EXPECT_EQ(rule.seed, 7u);
}

TEST(SyscallRecordsTest, KeysThatWereNeverRequiredKeepTheirDefaults) {
  nlohmann::json j{{"faultId", "x"}, {"pid", 9}, {"numbers", {1}}, {"delayNs", 1000}};
  auto u = SyscallUndo::fromJson(j);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->startTime, 0u);
  EXPECT_DOUBLE_EQ(u->probability, 1.0);
  EXPECT_EQ(u->seed, 0u);
  EXPECT_TRUE(u->syscalls.empty());
}

TEST(SyscallRecordsTest, DamagedUndoRecordsFailAsValues) {
  for (const char* key : {"faultId", "pid", "numbers"}) expectRefused(without(kErrorRecord, key));
  expectRefused(without(kDelayRecord, "delayNs"));  // neither an errno nor a delay
  expectRefused(without(kErrorRecord, "errno"));    // half an errno
  expectRefused(without(kErrorRecord, "errnoValue"));
  expectRefused(with(kErrorRecord, "delayNs", 1000000));  // both
  expectRefused(with(kErrorRecord, "pid", "4242"));
  expectRefused(with(kErrorRecord, "pid", 0));
  expectRefused(with(kErrorRecord, "pid", -1));
  expectRefused(with(kErrorRecord, "pid", 1e12));
  expectRefused(with(kErrorRecord, "numbers", {1, "fsync"}));
  expectRefused(with(kErrorRecord, "numbers", 1));
  expectRefused(with(kErrorRecord, "errnoValue", 5.5));
  expectRefused(with(kErrorRecord, "seed", -3));
  expectRefused(with(kErrorRecord, "probability", "30%"));
  expectRefused(with(kDelayRecord, "delayNs", "50ms"));
  expectRefused(with(kDelayRecord, "first", -1));

  const std::vector<nlohmann::json> others = {
      nullptr, "x", -1, 1.5, true, nlohmann::json::array(), nlohmann::json::object()};
  for (const char* text : {kErrorRecord, kDelayRecord}) {
    const nlohmann::json good = parse(text);
    for (const auto& [key, value] : good.items()) {
      for (const auto& other : others) {
        nlohmann::json j = good;
        j[key] = other;
        EXPECT_NO_THROW({
          auto r = SyscallUndo::fromJson(j);
          if (!r.ok()) {
            EXPECT_EQ(r.error().code(), ErrorCode::kInvalid) << key << "=" << other;
          }
        });
      }
    }
  }
  for (const auto& whole : others) EXPECT_NO_THROW(expectRefused(whole));
}

TEST(SyscallRecordsTest, ArgsOfBothTypesParse) {
  // As the schema normalises them (SyscallFaults.cpp): probability's and errno's defaults in.
  const nlohmann::json error{
      {"syscalls", {"openat", "write"}}, {"probability", 1.0}, {"errno", "EIO"}};
  auto e = SyscallArgs::fromJson(error);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(e->syscalls, (std::vector<std::string>{"openat", "write"}));
  EXPECT_DOUBLE_EQ(e->probability, 1.0);
  EXPECT_EQ(e->errnoName, "EIO");
  EXPECT_FALSE(e->delay.has_value());
  EXPECT_FALSE(e->path.has_value());
  EXPECT_FALSE(e->first.has_value());
  EXPECT_FALSE(e->after.has_value());
  EXPECT_EQ(e->toJson(), error);

  const nlohmann::json delay{{"syscalls", {"fsync"}}, {"probability", 0.5}, {"delay", 100000000},
                             {"path", "/var/lib/*"},  {"first", 3},         {"after", 1}};
  auto d = SyscallArgs::fromJson(delay);
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_FALSE(d->errnoName.has_value());
  EXPECT_EQ(d->delay, 100ms);
  EXPECT_EQ(d->path, "/var/lib/*");
  EXPECT_EQ(d->first, 3u);
  EXPECT_EQ(d->after, 1u);
  EXPECT_EQ(d->toJson(), delay);

  for (const nlohmann::json& bad :
       {nlohmann::json{{"syscalls", "write"}}, nlohmann::json{{"syscalls", {1}}},
        nlohmann::json{{"delay", "1s"}}, nlohmann::json{{"first", -2}},
        nlohmann::json{{"errno", 5}}, nlohmann::json::array()}) {
    auto r = SyscallArgs::fromJson(bad);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  }
}

TEST(SyscallRecordsTest, TheExecHookFiltersTheSyscallsOfTheStepsArgs) {
  FaultRegistry registry;
  registerSyscallFaults(registry);
  ASSERT_EQ(registry.execHooks().size(), 1u);
  const ExecHook& hook = registry.execHooks()[0];
  const std::vector<ExecStep> steps = {
      {"syscall.error", {{"syscalls", {"write", "fsync"}}, {"probability", 1.0}, {"errno", "EIO"}}},
      {"syscall.delay", {{"syscalls", {"fsync", "openat"}}, {"delay", 1000000}}},
      {"disk.fill", {{"syscalls", {"read"}}}}};  // another family's step
  auto contribution = hook(steps);
  ASSERT_NE(contribution, nullptr);
  ExecOptions options;
  contribution->beforeExec(options);
  std::set<int> filtered(options.notifySyscalls.begin(), options.notifySyscalls.end());
  EXPECT_EQ(filtered, (std::set<int>{seccomp_syscall_resolve_name("write"),
                                     seccomp_syscall_resolve_name("fsync"),
                                     seccomp_syscall_resolve_name("openat")}));
  EXPECT_EQ(hook({{"disk.fill", {{"size", 1}}}}), nullptr);
}

// ---- the injector against a supervisor whose listener never speaks ----

class SyscallPrepareTest : public ::testing::Test {
 protected:
  // A pid no supervisor of another test uses; the listener is an eventfd, never readable.
  static constexpr pid_t kPid = 0x3ffffff0;
  static constexpr uint64_t kStartTime = 4711;

  void SetUp() override {
    Fd listener(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    ASSERT_TRUE(listener);
    supervisor_ = std::make_unique<SyscallSupervisor>(kPid, kStartTime, std::move(listener));
    write_ = seccomp_syscall_resolve_name("write");
    fsync_ = seccomp_syscall_resolve_name("fsync");
    supervisor_->setFiltered({write_, fsync_});
    supervisors_->add(kPid, *supervisor_);
    target_.name = "app";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = kPid;
  }

  void TearDown() override {
    if (supervisor_) supervisors_->remove(kPid, *supervisor_);
  }

  FaultRequest request(const std::string& id, const std::string& type, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    r.duration = 10s;
    return r;
  }

  static std::vector<std::string> keysOf(const nlohmann::json& j) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    return keys;
  }

  // The registry the injectors find the supervisor in (registerSyscallFaults makes one).
  std::shared_ptr<SupervisorRegistry> supervisors_ = std::make_shared<SupervisorRegistry>();
  std::unique_ptr<SyscallSupervisor> supervisor_;
  TargetSpec target_;
  int write_ = 0;
  int fsync_ = 0;
};

TEST_F(SyscallPrepareTest, AnErrorFaultsRecordHasTodaysKeysAndItsRuleIsApplied) {
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(request("eio", "syscall.error",
                                           {{"syscalls", {"write", "fsync"}},
                                            {"errno", "EIO"},
                                            {"probability", 0.3},
                                            {"path", "*/out.bin"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  const nlohmann::json& undo = prepared->undo;
  EXPECT_EQ(keysOf(undo), keysOf(parse(kErrorRecord)));
  EXPECT_EQ(undo.at("pid"), kPid);
  EXPECT_EQ(undo.at("startTime"), kStartTime);
  EXPECT_EQ(undo.at("numbers"), (nlohmann::json{write_, fsync_}));
  EXPECT_EQ(undo.at("errnoValue"), EIO);
  auto u = SyscallUndo::fromJson(nlohmann::json::parse(undo.dump()));
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->toJson(), undo);

  auto applied = injector.apply("eio", undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "seccomp-notify");
  EXPECT_EQ(applied->observed["seed"], undo.at("seed"));
  EXPECT_TRUE(supervisor_->hasRule("eio"));
  EXPECT_EQ(injector.audit(undo)->size(), 1u);
  EXPECT_FALSE(injector.revert("other", undo).ok());
  auto reverted = injector.revert("eio", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ(*reverted, (nlohmann::json{{"matched", 0}, {"hit", 0}, {"passed", 0}}));
  EXPECT_FALSE(supervisor_->hasRule("eio"));
  EXPECT_TRUE(injector.audit(undo)->empty());
}

TEST_F(SyscallPrepareTest, ADelayFaultsRecordHasTodaysKeys) {
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(
      request("slow", "syscall.delay",
              {{"syscalls", {"fsync"}}, {"delay", 50000000}, {"first", 10}, {"after", 2}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(keysOf(prepared->undo), keysOf(parse(kDelayRecord)));
  EXPECT_EQ(prepared->undo["delayNs"], 50000000);
  EXPECT_EQ(prepared->undo["probability"], 1.0);
  EXPECT_EQ(prepared->description,
            "+50ms on fsync of pid " + std::to_string(kPid) + " (target app)");
}

TEST_F(SyscallPrepareTest, ASubMillisecondDelayIsDescribedAsWritten) {
  // It read "+0ms": whole milliseconds, rounded down.
  SyscallInjector injector(supervisors_);
  auto prepared = injector.prepare(
      request("slow", "syscall.delay", {{"syscalls", {"fsync"}}, {"delay", 350000}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->description,
            "+350us on fsync of pid " + std::to_string(kPid) + " (target app)");
}

TEST_F(SyscallPrepareTest, TheGuardiansRevertWithoutTheSupervisorIsANote) {
  // Another process's record (its start time differs): nothing here to take back.
  SyscallInjector injector(supervisors_);
  nlohmann::json undo = parse(kDelayRecord);
  undo["pid"] = kPid;
  auto reverted = injector.revert("slow", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_TRUE(reverted->contains("note"));
}

}  // namespace
}  // namespace chaosd
