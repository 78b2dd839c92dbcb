// BackendSwitch with QdiscInjector over FakeTc as its netem backend (composed the way
// NetworkFaults.cpp composes them, the netem check asked of the same TcKernel) and a stand-in
// for nftables; and the switch's error paths with injectors that fail.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "injectors/network/BackendSwitch.h"
#include "tests/unit/QdiscSeamFixture.h"

namespace chaosd {
namespace {

using namespace qdiscseam;

// An injector whose every step fails, or succeeds counting calls, as the test says.
class StandIn final : public Injector {
 public:
  explicit StandIn(bool fail) : fail_(fail) {}
  Result<PreparedFault> prepare(const FaultRequest&) override {
    if (fail_) return Error(ErrorCode::kNotFound, "no such chain");
    PreparedFault p;
    p.undo = {{"standIn", true}};
    return p;
  }
  Result<AppliedFault> apply(const std::string&, const nlohmann::json&) override {
    if (fail_) return Error(ErrorCode::kKernel, "apply refused");
    ++applied;
    return AppliedFault{"nftables", {}};
  }
  Result<nlohmann::json> revert(const std::string&, const nlohmann::json&) override {
    if (fail_) return Error(ErrorCode::kKernel, "revert refused");
    return nlohmann::json::object();
  }
  Result<std::vector<std::string>> audit(const nlohmann::json&) override {
    if (fail_) return Error(ErrorCode::kKernel, "audit refused");
    return std::vector<std::string>{};
  }
  int applied = 0;

 private:
  bool fail_;
};

class BackendSwitchSeamTest : public QdiscSeamTest {
 protected:
  BackendSwitch make(bool nftablesFails = false) {
    auto tc = tc_;
    auto context = context_;
    return BackendSwitch(
        {{"netem", [tc, context] { return std::make_unique<QdiscInjector>(context, tc); },
          [tc] { return tc->hasNetem(); }},
         {"nftables", [nftablesFails] { return std::make_unique<StandIn>(nftablesFails); }, {}}});
  }
};

TEST_F(BackendSwitchSeamTest, AutoBuildsTheQdiscTreeWhereTheKernelHasNetem) {
  auto sw = make();
  const FakeLink before = dev();
  auto p = sw.prepare(request("network.delay", "sw1", {{"delay", 2'000'000}}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["backend"], "netem");
  auto a = sw.apply("sw1", p->undo);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->backend, "netem");
  expectTree(dev(), "sw1", "netem", qdisc::kDefaultMinor);
  EXPECT_FALSE(sw.audit(p->undo)->empty());
  ASSERT_TRUE(sw.revert("sw1", p->undo).ok());
  EXPECT_EQ(dev(), before);
  EXPECT_TRUE(sw.audit(p->undo)->empty());
  EXPECT_TRUE(sw.revert("sw1", p->undo).ok());
}

TEST_F(BackendSwitchSeamTest, AutoTakesNftablesWithoutNetemAndLeavesTheQdiscsAlone) {
  tc_->setNetem(false);
  auto sw = make();
  auto p = sw.prepare(request("network.loss", "sw2", {{"loss", 0.3}}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["backend"], "nftables");
  auto a = sw.apply("sw2", p->undo);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->backend, "nftables");
  ASSERT_TRUE(sw.revert("sw2", p->undo).ok());
  EXPECT_TRUE(tc_->calls().empty());
  // Asked for by name, netem is tried and its injector says why it cannot be.
  auto named = sw.prepare(request("network.loss", "sw3", {{"loss", 0.3}, {"backend", "netem"}}));
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.error().code(), ErrorCode::kUnsupported);
}

TEST_F(BackendSwitchSeamTest, AProbeThatCannotTellIsAnErrorNotAFallback) {
  auto sw = BackendSwitch(
      {{"netem", [] { return std::make_unique<StandIn>(false); },
        []() -> Result<bool> { return Error(ErrorCode::kPermission, "unshare refused"); }},
       {"nftables", [] { return std::make_unique<StandIn>(false); }, {}}});
  auto p = sw.prepare(request("network.loss", "sw4", {{"loss", 0.3}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kPermission);
  EXPECT_NE(p.error().describe().find("checking whether netem works here"), std::string::npos);
}

TEST_F(BackendSwitchSeamTest, TheBackendsErrorsComeBackAsTheyAre) {
  auto sw = make(true);
  auto undo = BackendUndo{"nftables", {{"standIn", true}}}.toJson();
  auto p = sw.prepare(request("network.loss", "sw5", {{"loss", 0.3}, {"backend", "nftables"}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(sw.apply("sw5", undo).error().message(), "apply refused");
  EXPECT_EQ(sw.revert("sw5", undo).error().message(), "revert refused");
  EXPECT_EQ(sw.audit(undo).error().message(), "audit refused");
  EXPECT_EQ(sw.audit({{"inner", {}}}).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(sw.apply("sw5", {{"backend", "ebpf"}, {"inner", {}}}).error().code(),
            ErrorCode::kUnsupported);
}

TEST(BackendSwitchRecords, TheBackendArgAndTheUndoRoundTrip) {
  EXPECT_EQ(BackendArgs::fromJson(nlohmann::json()).value().backend, "auto");
  EXPECT_EQ(BackendArgs::fromJson({{"delay", 1}}).value().backend, "auto");
  EXPECT_EQ(BackendArgs::fromJson({{"backend", "nftables"}}).value().backend, "nftables");
  auto bad = BackendArgs::fromJson({{"backend", 7}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(BackendArgs{"netem"}.toJson(), (nlohmann::json{{"backend", "netem"}}));
  const BackendUndo undo{"netem", {{"slot", 3}}};
  auto back = BackendUndo::fromJson(undo.toJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->backend, "netem");
  EXPECT_EQ(back->inner, undo.inner);
  EXPECT_FALSE(BackendUndo::fromJson({{"backend", "netem"}}).ok()) << "no inner record";
  EXPECT_FALSE(BackendUndo::fromJson("netem").ok());
}

}  // namespace
}  // namespace chaosd
