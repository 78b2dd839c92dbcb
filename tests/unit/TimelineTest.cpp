// computeTimeline: when each step starts and ends, before anything runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "experiments/model/Timeline.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

StepSpec pause(std::string name, Duration d) {
  StepSpec s;
  s.name = std::move(name);
  s.kind = StepKind::kPause;
  s.duration = d;
  return s;
}

StepSpec fault(std::string name, Duration d) {
  StepSpec s;
  s.name = std::move(name);
  s.kind = StepKind::kFault;
  s.fault = "network.delay";
  s.target = "db-net";
  s.duration = d;
  return s;
}

StepSpec group(std::string name, std::vector<StepSpec> members) {
  StepSpec s;
  s.name = std::move(name);
  s.kind = StepKind::kParallel;
  s.parallel = std::move(members);
  return s;
}

StepSpec after(StepSpec s, std::string other) {
  s.after = std::move(other);
  return s;
}

StepSpec at(StepSpec s, Duration offset) {
  s.at = offset;
  return s;
}

const TimelineEntry& entry(const Timeline& t, const std::string& step) {
  for (const auto& e : t.entries) {
    if (e.step == step) return e;
  }
  static const TimelineEntry kMissing = [] {
    TimelineEntry e;
    e.step = "<missing>";
    return e;
  }();
  ADD_FAILURE() << "no timeline entry for " << step;
  return kMissing;
}

std::vector<std::string> order(const Timeline& t) {
  std::vector<std::string> out;
  for (const auto& e : t.entries) out.push_back(e.step);
  return out;
}

TEST(TimelineTest, EmptyMethod) {
  Timeline t = computeTimeline({});
  EXPECT_TRUE(t.ok());
  EXPECT_TRUE(t.entries.empty());
  EXPECT_EQ(t.total, 0s);
}

TEST(TimelineTest, StepsRunOneAfterAnother) {
  Timeline t = computeTimeline({pause("warmup", 10s), fault("latency", 30s), pause("cool", 5s)});
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(order(t), ElementsAre("warmup", "latency", "cool"));
  EXPECT_EQ(entry(t, "warmup").start, 0s);
  EXPECT_EQ(entry(t, "warmup").end, 10s);
  EXPECT_EQ(entry(t, "latency").start, 10s);
  EXPECT_EQ(entry(t, "latency").end, 40s);
  EXPECT_EQ(entry(t, "cool").start, 40s);
  EXPECT_EQ(entry(t, "cool").end, 45s);
  EXPECT_EQ(t.total, 45s);
}

TEST(TimelineTest, EntriesCarryKindFaultAndTarget) {
  Timeline t = computeTimeline({fault("latency", 30s)});
  ASSERT_EQ(t.entries.size(), 1u);
  EXPECT_EQ(t.entries[0].kind, StepKind::kFault);
  EXPECT_EQ(t.entries[0].fault, "network.delay");
  EXPECT_EQ(t.entries[0].target, "db-net");
  EXPECT_EQ(t.entries[0].group, "");
}

TEST(TimelineTest, InstantaneousStepTakesNoTime) {
  StepSpec kill;
  kill.name = "kill";
  kill.fault = "process.kill";
  Timeline t = computeTimeline({pause("warmup", 10s), kill, pause("cool", 5s)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "kill").start, 10s);
  EXPECT_EQ(entry(t, "kill").end, 10s);
  EXPECT_EQ(entry(t, "cool").start, 10s);
}

TEST(TimelineTest, AtPinsTheStartAndTheNextStepFollowsIt) {
  Timeline t = computeTimeline(
      {fault("latency", 60s), at(fault("loss", 30s), 20s), pause("after-loss", 5s)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "loss").start, 20s);
  EXPECT_EQ(entry(t, "loss").end, 50s);
  EXPECT_EQ(entry(t, "after-loss").start, 50s);
  EXPECT_EQ(t.total, 60s);
  // Sorted by start.
  EXPECT_THAT(order(t), ElementsAre("latency", "loss", "after-loss"));
}

TEST(TimelineTest, AtZeroRunsAlongsideTheFirstStep) {
  Timeline t = computeTimeline({pause("warmup", 10s), at(fault("early", 5s), 0s)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "early").start, 0s);
  EXPECT_THAT(order(t), ElementsAre("warmup", "early"));  // stable for equal starts
}

TEST(TimelineTest, AfterWaitsForTheNamedStep) {
  Timeline t = computeTimeline(
      {fault("long", 60s), at(pause("short", 10s), 0s), after(fault("then", 5s), "short")});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "then").start, 10s);
  EXPECT_EQ(entry(t, "then").end, 15s);
  EXPECT_EQ(t.total, 60s);
}

TEST(TimelineTest, AfterALaterStep) {
  Timeline t = computeTimeline({after(pause("second", 5s), "first"), at(pause("first", 10s), 0s)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "first").start, 0s);
  EXPECT_EQ(entry(t, "second").start, 10s);
  EXPECT_EQ(t.total, 15s);
}

TEST(TimelineTest, ParallelGroupMembersStartTogether) {
  Timeline t = computeTimeline({pause("warmup", 5s),
                                group("together", {fault("latency", 30s), fault("loss", 10s)}),
                                pause("cool", 5s)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "together").start, 5s);
  EXPECT_EQ(entry(t, "together").end, 35s);  // the group ends with its last member
  EXPECT_EQ(entry(t, "latency").start, 5s);
  EXPECT_EQ(entry(t, "latency").end, 35s);
  EXPECT_EQ(entry(t, "loss").start, 5s);
  EXPECT_EQ(entry(t, "loss").end, 15s);
  EXPECT_EQ(entry(t, "latency").group, "together");
  EXPECT_EQ(entry(t, "together").group, "");
  EXPECT_EQ(entry(t, "cool").start, 35s);
  EXPECT_EQ(t.total, 40s);
  EXPECT_THAT(order(t), ElementsAre("warmup", "together", "latency", "loss", "cool"));
}

TEST(TimelineTest, ParallelGroupWithAtAndAStepAfterAMember) {
  Timeline t = computeTimeline({fault("base", 2min),
                                at(group("burst", {fault("a", 30s), pause("b", 10s)}), 1min),
                                after(pause("after-b", 1s), "b")});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(entry(t, "a").start, 1min);
  EXPECT_EQ(entry(t, "b").end, 70s);
  EXPECT_EQ(entry(t, "after-b").start, 70s);
  EXPECT_EQ(t.total, 2min);
}

TEST(TimelineTest, TwoStepCycleIsReportedWithItsChain) {
  Timeline t = computeTimeline({after(pause("a", 1s), "b"), after(pause("b", 1s), "a")});
  EXPECT_FALSE(t.ok());
  EXPECT_TRUE(t.entries.empty());
  // a waits for b, which waits for a; the first step is repeated last.
  EXPECT_THAT(t.cycle, ElementsAre("a", "b", "a"));
}

TEST(TimelineTest, ThreeStepCycleIsReportedWithItsChain) {
  Timeline t =
      computeTimeline({after(pause("first", 1s), "third"), after(pause("second", 1s), "first"),
                       after(fault("third", 1s), "second")});
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(t.cycle, ElementsAre("first", "third", "second", "first"));
}

TEST(TimelineTest, StepWaitingForItselfIsACycle) {
  Timeline t = computeTimeline({after(pause("a", 1s), "a")});
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(t.cycle, ElementsAre("a", "a"));
}

TEST(TimelineTest, GroupWaitingForItsOwnMemberIsACycle) {
  Timeline t = computeTimeline({after(group("g", {pause("m", 1s)}), "m")});
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(t.cycle, ElementsAre("g", "m", "g"));
}

TEST(TimelineTest, CycleAfterGoodStepsStillFails) {
  Timeline t =
      computeTimeline({pause("ok", 1s), after(pause("x", 1s), "y"), after(pause("y", 1s), "x")});
  EXPECT_FALSE(t.ok());
  EXPECT_TRUE(t.entries.empty());
  EXPECT_THAT(t.cycle, ElementsAre("x", "y", "x"));
}

}  // namespace
}  // namespace chaosd
