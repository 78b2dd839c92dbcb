// time.skew without root: the offset argument, the libfaketime spec chaosd writes,
// the undo record in the format the journal holds (and damaged ones refused as values), and
// the injector's prepare, apply, revert (twice), audit and its failures against control files
// in a temporary folder and a clock in memory; no process is started.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "experiments/model/Experiment.h"
#include "injectors/FaultRegistry.h"
#include "injectors/time/FakeTime.h"
#include "injectors/time/TimeRecords.h"
#include "injectors/time/TimeSkewInjector.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/FakeClockKernel.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::FakeClockKernel;

constexpr const char* kExecRecord = R"({
  "mode": "exec", "faultId": "skew-1", "pid": 4242, "startTime": 987654,
  "controlFile": "/var/lib/chaosd/runs/r1/chaosd-faketime-Ab12Cd.rc",
  "offsetNs": -7200000000000, "execRealtimeNs": 1700000000000000000})";

TEST(TimeSkewArgsTest, OffsetsAreSignedDurations) {
  EXPECT_EQ(*parseClockOffset("-2h"), -2h);
  EXPECT_EQ(*parseClockOffset("+30s"), 30s);
  EXPECT_EQ(*parseClockOffset("1m30s"), 90s);
  EXPECT_EQ(*parseClockOffset("-250ms"), -250ms);
  EXPECT_EQ(*parseClockOffset("+0s"), 0s);
  for (const char* bad : {"", "-", "+-2h", "2", "two hours", "-3651d", "--1s"}) {
    auto r = parseClockOffset(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
    EXPECT_NE(r.error().message().find("signed duration"), std::string::npos);
  }
  EXPECT_EQ(formatClockOffset(-2h), "-2h");
  EXPECT_EQ(formatClockOffset(90s), "+1m30s");
  EXPECT_EQ(formatClockOffset(0s), "+0s");
}

TEST(TimeSkewArgsTest, NormalisedArgsParse) {
  auto a = TimeSkewArgs::fromJson({{"offset", "-2h"}});
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->offset, -2h);
  EXPECT_FALSE(TimeSkewArgs::fromJson(nlohmann::json::object()).ok());
  EXPECT_FALSE(TimeSkewArgs::fromJson({{"offset", 30}}).ok());
}

TEST(TimeSkewArgsTest, SchemaRefusesBadArgsBeforeAnything) {
  const FaultType* type = chaosd::testing::builtinFaults().find("time.skew");
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->targetKinds, std::vector<TargetKind>{TargetKind::kExec});
  nlohmann::json bad{{"offset", "yesterday"}};
  std::optional<ArgProblem> problem;
  for (const auto& c : type->schema.constraints) {
    if (!problem) problem = c(ArgContext{bad, 10s});
  }
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->field, "offset");
}

TEST(TimeSkewSpecTest, WhatLibfaketimeReads) {
  EXPECT_EQ(fakeTimeSpec(-2h), "-7200");
  EXPECT_EQ(fakeTimeSpec(30s), "+30");
  EXPECT_EQ(fakeTimeSpec(-250ms), "-0.25");
  EXPECT_EQ(fakeTimeSpec(1500us), "+0.0015");
  EXPECT_EQ(fakeTimeSpec(0s), "+0");
  for (const char* s : {"-7200", "+30", "-0.25", "+0", "-10 x2", "+65 x0.5\n", "+1 x1e-05"}) {
    EXPECT_TRUE(looksLikeFakeTimeSpec(s)) << s;
  }
  for (const char* s : {"", "root:x:0:0", "2020-01-01 00:00:00", "+1 x", "@2020-01-01"}) {
    EXPECT_FALSE(looksLikeFakeTimeSpec(s)) << s;
  }
}

TEST(TimeSkewRecordsTest, ExecRecordOfTodayParsesAndConvertsBackUnchanged) {
  const auto journalled = nlohmann::json::parse(kExecRecord);
  auto u = FakeTimeUndo::fromJson(journalled);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->pid, 4242);
  EXPECT_EQ(u->offset, -2h);
  EXPECT_EQ(u->toJson(), journalled);
  EXPECT_EQ(*timeRecordMode(journalled), "exec");
}

TEST(TimeSkewRecordsTest, DamagedExecRecordsAreRefusedAsValues) {
  auto with = [](const char* key, nlohmann::json v) {
    auto j = nlohmann::json::parse(kExecRecord);
    j[key] = std::move(v);
    return j;
  };
  auto without = [](const char* key) {
    auto j = nlohmann::json::parse(kExecRecord);
    j.erase(key);
    return j;
  };
  for (const auto& j :
       {without("faultId"), without("pid"), without("controlFile"), without("offsetNs"),
        with("pid", 0), with("pid", "4242"), with("mode", "host"), with("offsetNs", "-2h"),
        with("controlFile", "/etc/passwd"), with("controlFile", "chaosd-faketime-Ab12Cd.rc"),
        with("controlFile", "/tmp/chaosd-faketime-../x.rc"), nlohmann::json::array()}) {
    auto r = FakeTimeUndo::fromJson(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  }
  EXPECT_FALSE(timeRecordMode(with("mode", "moon")).ok());
}

class TimeSkewInjectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chaosd-timeskew-unit-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto file = makeControlFile(dir_.string());
    ASSERT_TRUE(file.ok()) << file.error().describe();
    file_ = *file;
    targets_->add(FakeTimeTarget{pid_, 555, file_, "/usr/lib/libfaketimeMT.so.1",
                                 clock_->trueRealtimeNs - 10'000'000'000});
    target_.name = "app";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = pid_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string content() const {
    std::ifstream in(file_);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  FaultRequest request(nlohmann::json args, std::string id = "skew-1") const {
    FaultRequest r;
    r.runId = "run";
    r.faultId = std::move(id);
    r.faultType = "time.skew";
    r.target = &target_;
    r.args = std::move(args);
    r.duration = 30s;
    return r;
  }

  fs::path dir_;
  std::string file_;
  pid_t pid_ = 4242;
  TargetSpec target_;
  std::shared_ptr<FakeTimeTargets> targets_ = std::make_shared<FakeTimeTargets>();
  std::shared_ptr<FakeClockKernel> clock_ = std::make_shared<FakeClockKernel>();
  TimeSkewInjector injector_{targets_, clock_};
};

TEST_F(TimeSkewInjectorTest, ApplyWritesTheOffsetAndRevertWritesTheTrueTimeTwice) {
  EXPECT_EQ(content(), "+0\n");
  auto prepared = injector_.prepare(request({{"offset", "-2h"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(content(), "+0\n");  // prepare reads, never writes
  EXPECT_EQ(prepared->resources, std::vector<std::string>{"clock:pid:4242"});
  EXPECT_NE(prepared->description.find("clock -2h for pid 4242 (target app)"), std::string::npos)
      << prepared->description;
  auto applied = injector_.apply("skew-1", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "libfaketime");
  EXPECT_EQ(applied->observed["spec"], "-7200");
  EXPECT_EQ(content(), "-7200\n");
  auto left = injector_.audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1U);
  EXPECT_NE(left->front().find("still skewed"), std::string::npos);

  auto reverted = injector_.revert("skew-1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["was"], "-7200");
  EXPECT_EQ(content(), "+0\n");
  EXPECT_TRUE(injector_.revert("skew-1", prepared->undo).ok());
  EXPECT_EQ(content(), "+0\n");
  EXPECT_TRUE(injector_.audit(prepared->undo)->empty());
}

TEST_F(TimeSkewInjectorTest, RevertFromTheRecordAloneInAnotherInjector) {
  auto prepared = injector_.prepare(request({{"offset", "+30s"}}));
  ASSERT_TRUE(injector_.apply("skew-1", prepared->undo).ok());
  // The guardian: no started processes known, only the record.
  TimeSkewInjector guardian(std::make_shared<FakeTimeTargets>(), clock_);
  ASSERT_TRUE(guardian.revert("skew-1", prepared->undo).ok());
  EXPECT_EQ(content(), "+0\n");
  // The process stopped and its file removed: nothing to do, still a success.
  fs::remove(file_);
  auto again = guardian.revert("skew-1", prepared->undo);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->contains("note"));
  EXPECT_TRUE(guardian.audit(prepared->undo)->empty());
}

TEST_F(TimeSkewInjectorTest, OneFaultAtATimePerClock) {
  auto first = injector_.prepare(request({{"offset", "+1m"}}, "a"));
  auto second = injector_.prepare(request({{"offset", "-1m"}}, "b"));
  ASSERT_TRUE(injector_.apply("a", first->undo).ok());
  auto refused = injector_.apply("b", second->undo);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(content(), "+60\n");
  ASSERT_TRUE(injector_.revert("a", first->undo).ok());
  ASSERT_TRUE(injector_.apply("b", second->undo).ok());  // one after the other is fine
  EXPECT_EQ(content(), "-60\n");
  ASSERT_TRUE(injector_.revert("b", second->undo).ok());
  EXPECT_EQ(content(), "+0\n");
}

TEST_F(TimeSkewInjectorTest, RefusesWhatItDidNotSetUp) {
  TargetSpec other = target_;
  other.process.pid = 99;
  auto r = request({{"offset", "+1s"}});
  r.target = &other;
  auto refused = injector_.prepare(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(refused.error().message().find("not started with libfaketime"), std::string::npos);
  // A record of another fault is not acted on.
  auto prepared = injector_.prepare(request({{"offset", "+1s"}}));
  EXPECT_FALSE(injector_.apply("someone-else", prepared->undo).ok());
  // A control file that holds something else is left alone.
  std::ofstream(file_) << "not a spec\n";
  auto reverted = injector_.revert("skew-1", prepared->undo);
  ASSERT_FALSE(reverted.ok());
  EXPECT_EQ(content(), "not a spec\n");
}

TEST_F(TimeSkewInjectorTest, ApplyFailsCleanlyWhenTheControlFileIsGone) {
  auto prepared = injector_.prepare(request({{"offset", "+1s"}}));
  fs::remove(file_);
  auto applied = injector_.apply("skew-1", prepared->undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(file_));  // never created by a write
  // The claim was given back: another fault may take the clock.
  std::ofstream(file_) << "+0\n";
  auto next = injector_.prepare(request({{"offset", "+2s"}}, "skew-2"));
  EXPECT_TRUE(injector_.apply("skew-2", next->undo).ok());
}

TEST(FakeTimeLibraryTest, FoundWhereDebianPutsIt) {
  auto lib = findFakeTimeLibrary();
  if (!lib) GTEST_SKIP() << lib.error().describe();
  EXPECT_TRUE(lib->ends_with("/faketime/libfaketimeMT.so.1")) << *lib;
  EXPECT_EQ(::access(lib->c_str(), R_OK), 0);
}

}  // namespace
}  // namespace chaosd
