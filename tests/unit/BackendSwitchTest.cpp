#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "injectors/network/BackendSwitch.h"

namespace chaosd {
namespace {

// Records what it is asked, under its own name, in a log the test keeps.
class RecordingInjector final : public Injector {
 public:
  RecordingInjector(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  Result<PreparedFault> prepare(const FaultRequest& r) override {
    log_->push_back(name_ + ":prepare");
    PreparedFault p;
    p.undo = {{"by", name_}, {"fault", r.faultId}};
    p.description = name_ + " fault";
    return p;
  }
  Result<AppliedFault> apply(const std::string&, const nlohmann::json& undo) override {
    log_->push_back(name_ + ":apply:" + undo.value("by", ""));
    return AppliedFault{name_, {}};
  }
  Result<nlohmann::json> revert(const std::string&, const nlohmann::json& undo) override {
    log_->push_back(name_ + ":revert:" + undo.value("by", ""));
    return nlohmann::json::object();
  }
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override {
    log_->push_back(name_ + ":audit:" + undo.value("by", ""));
    return std::vector<std::string>{};
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

struct Fixture {
  std::vector<std::string> log;
  bool netemHere = false;
  int netemChecks = 0;
  int created = 0;

  BackendSwitch make() {
    auto factory = [this](std::string name) {
      return [this, name] {
        ++created;
        return std::make_unique<RecordingInjector>(name, &log);
      };
    };
    return BackendSwitch({{"netem", factory("netem"),
                           [this]() -> Result<bool> {
                             ++netemChecks;
                             return netemHere;
                           }},
                          {"nftables", factory("nftables"), {}}});
  }
};

FaultRequest request(const std::string& backend) {
  FaultRequest r;
  r.faultId = "f1";
  r.faultType = "network.delay";
  r.args = {{"delay", 100}, {"backend", backend}};
  return r;
}

TEST(BackendSwitchTest, AutoTakesNetemWhereTheKernelHasIt) {
  Fixture f;
  f.netemHere = true;
  auto sw = f.make();
  auto p = sw.prepare(request("auto"));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["backend"], "netem");
  EXPECT_EQ(p->undo["inner"]["by"], "netem");
  EXPECT_EQ(p->description, "netem fault");
  EXPECT_EQ(f.netemChecks, 1);
}

TEST(BackendSwitchTest, AutoFallsBackWhenNetemIsMissing) {
  Fixture f;
  auto sw = f.make();
  auto p = sw.prepare(request("auto"));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["backend"], "nftables");
  auto a = sw.apply("f1", p->undo);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->backend, "nftables");
  EXPECT_EQ(f.log, (std::vector<std::string>{"nftables:prepare", "nftables:apply:nftables"}));
}

TEST(BackendSwitchTest, AnExplicitBackendIsNeverSecondGuessed) {
  Fixture f;  // no netem here, but the experiment asked for it: its injector says why it fails
  auto sw = f.make();
  auto p = sw.prepare(request("netem"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->undo["backend"], "netem");
  EXPECT_EQ(f.netemChecks, 0);
}

TEST(BackendSwitchTest, RevertFromTheUndoAloneGoesToTheSameBackend) {
  Fixture f;
  nlohmann::json undo;
  {
    auto owner = f.make();
    undo = owner.prepare(request("auto"))->undo;
  }
  f.log.clear();
  // Another process (the guardian) with a fresh switch, and netem now "available": the undo
  // decides, not the machine.
  f.netemHere = true;
  auto guardian = f.make();
  ASSERT_TRUE(guardian.revert("f1", undo).ok());
  ASSERT_TRUE(guardian.audit(undo).ok());
  EXPECT_EQ(f.log,
            (std::vector<std::string>{"nftables:revert:nftables", "nftables:audit:nftables"}));
}

TEST(BackendSwitchTest, OneInjectorPerBackendLivesFromApplyToRevert) {
  Fixture f;
  auto sw = f.make();
  auto p = sw.prepare(request("nftables"));
  ASSERT_TRUE(sw.apply("f1", p->undo).ok());
  ASSERT_TRUE(sw.revert("f1", p->undo).ok());
  EXPECT_EQ(f.created, 1);
}

TEST(BackendSwitchTest, AnUndoWithoutABackendIsRefused) {
  Fixture f;
  auto sw = f.make();
  auto r = sw.revert("f1", {{"by", "netem"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  auto unknown = sw.revert("f1", {{"backend", "ebpf"}, {"inner", {}}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("ebpf"), std::string::npos);
}

TEST(BackendSwitchTest, AutoWithNothingAvailableSaysWhatWasTried) {
  Fixture f;
  auto sw = BackendSwitch({{"netem", [] { return std::unique_ptr<Injector>(); },
                            []() -> Result<bool> { return false; }}});
  auto p = sw.prepare(request("auto"));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("tried netem"), std::string::npos);
}

TEST(BackendSwitchTest, ABackendNotInThisBuildIsSkippedByAutoAndRefusedByName) {
  std::vector<std::string> log;
  auto sw = BackendSwitch(
      {{"netem", InjectorFactory{}, []() -> Result<bool> { return true; }},
       {"nftables", [&] { return std::make_unique<RecordingInjector>("nftables", &log); }, {}}});
  auto automatic = sw.prepare(request("auto"));
  ASSERT_TRUE(automatic.ok()) << automatic.error().describe();
  EXPECT_EQ(automatic->undo["backend"], "nftables") << "netem is here, but not in this build";
  auto named = sw.prepare(request("netem"));
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.error().message().find("not implemented in this build"), std::string::npos);
}

}  // namespace
}  // namespace chaosd
