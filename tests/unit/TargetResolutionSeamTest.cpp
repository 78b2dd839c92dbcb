// What `chaosctl plan` shows for a process target (resolveTarget), over a process table in
// memory: the same eligibility rules as the faults' prepare, the seeded choice, guardrails.
#include <gtest/gtest.h>

#include "chaosd/base/GuardianName.h"
#include "injectors/process/TargetResolution.h"
#include "tests/support/FakeProcesses.h"

namespace chaosd {
namespace {

class TargetResolutionSeamTest : public ::testing::Test {
 protected:
  ResolvedTarget resolve(const TargetSpec& target, Guardrails guardrails = {}) {
    auto table = fake_.scan(kScanAll, nullptr);
    EXPECT_TRUE(table.ok());
    table_.emplace(std::move(*table));
    ResolveContext context;
    context.processes = &*table_;
    return resolveTarget(target, guardrails, context);
  }
  static TargetSpec byName(const std::string& name) {
    TargetSpec t;
    t.name = name;
    t.kind = TargetKind::kProcess;
    t.process.name = name;
    return t;
  }

  FakeProcesses fake_;
  std::optional<ProcessTable> table_;
};

TEST_F(TargetResolutionSeamTest, ASeededSelectionShowsWhoWouldBeHit) {
  for (int i = 0; i < 4; ++i) fake_.spawn("api");
  TargetSpec t = byName("api");
  t.selection.mode = SelectionMode::kCount;
  t.selection.count = 2;
  t.selection.seed = 7;
  ResolvedTarget r = resolve(t);
  EXPECT_TRUE(r.usable);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.matched.size(), 4u);
  EXPECT_EQ(r.selected.size(), 2u);
  EXPECT_EQ(r.seed, 7u);
  ASSERT_EQ(r.details.size(), 5u);
  EXPECT_EQ(r.details[0], "4 eligible process(es) match; mode count(2) would hit 2");
  nlohmann::json j = r.toJson();
  EXPECT_EQ(j["selected"].size(), 2u);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["selector"], "process name=api");

  t.selection.seed.reset();  // chosen at run time, with a seed the report records
  ResolvedTarget later = resolve(t);
  EXPECT_TRUE(later.selected.empty());
  EXPECT_NE(later.details[0].find("chosen at run time"), std::string::npos);
}

TEST_F(TargetResolutionSeamTest, GuardiansZombiesAndGuardrailsAreShownAsProblems) {
  fake_.spawn({.comm = "api", .uid = 1000});
  fake_.spawn({.comm = std::string(kGuardianComm), .uid = 1000});
  const pid_t zombie = fake_.spawn({.comm = "api", .uid = 1000, .leavesZombie = true});
  fake_.killBySomeoneElse(zombie);
  TargetSpec t;
  t.name = "mine";
  t.kind = TargetKind::kProcess;
  t.process.user = "1000";
  ResolvedTarget r = resolve(t, Guardrails{.maxTargets = 0});
  EXPECT_EQ(r.matched.size(), 3u);
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_NE(r.problems[0].find("refused: "), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[1].find("over guardrails.maxTargets 0"), std::string::npos) << r.problems[1];
  EXPECT_FALSE(r.usable);
  EXPECT_EQ(r.selected.size(), 1u) << "all: the one eligible";
}

TEST_F(TargetResolutionSeamTest, NothingMatchingIsAProblemUnlessSkipped) {
  fake_.spawn("db");
  TargetSpec t = byName("api");
  ResolvedTarget missing = resolve(t);
  EXPECT_FALSE(missing.usable);
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_EQ(missing.problems[0], "no process matches process name=api");
  t.emptySkip = true;
  ResolvedTarget skipped = resolve(t);
  EXPECT_TRUE(skipped.usable);
  EXPECT_TRUE(skipped.problems.empty());

  ResolveContext none;  // the table could not be read
  ResolvedTarget blind = resolveTarget(t, Guardrails{}, none);
  EXPECT_FALSE(blind.usable);
  EXPECT_EQ(blind.problems, std::vector<std::string>{"the process table could not be read"});
}

}  // namespace
}  // namespace chaosd
