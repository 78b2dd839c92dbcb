// `refresh` of host names in packet filters, without root: the names' addresses kept apart
// (HostFilters.h), a name that stops resolving keeping its last addresses, and the injectors'
// reprepare and update through the fakes: the nftables faults' host sets refilled in one
// transaction (rules untouched), the NFQUEUE delay's rules replaced in one batch, and a revert
// from either record (before or after the change) removing every object of the fault.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/network/HostFilters.h"
#include "injectors/network/NfqueueDelay.h"
#include "injectors/network/NftablesInjector.h"
#include "tests/support/FakeNfqueueKernel.h"
#include "tests/support/FakeNftKernel.h"

namespace chaosd {
namespace {

using nlohmann::json;
using testing::FakeNetfilter;
using testing::FakeNfqueueKernel;
using testing::FakeNftKernel;
using testing::FakeNftScript;
using Strings = std::vector<std::string>;

const std::string kNs = "/run/netns/app";
const std::string kTable = "chaosd_run_t";

HostResolver table(std::map<std::string, std::vector<std::string>> names) {
  return [names = std::move(names)](const std::string& n) -> Result<std::vector<std::string>> {
    auto it = names.find(n);
    if (it == names.end()) {
      return Error(ErrorCode::kNotFound, "host name '" + n + "' does not resolve: unknown");
    }
    return it->second;
  };
}

TEST(HostRefreshFiltersTest, WithRefreshTheNamesAddressesStayApartFromTheCidrs) {
  auto r = resolveHostFilters(
      json{{"cidr", {"10.9.0.0/16"}}, {"hosts", {"db.internal"}}, {"refresh", 1'000'000'000}},
      table({{"db.internal", {"fd00::5", "10.0.0.5"}}}));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->args["cidr"], json({"10.9.0.0/16"}));
  EXPECT_EQ(r->args["hostAddresses"], json({"10.0.0.5", "fd00::5"}));
  EXPECT_FALSE(r->args.contains("hosts"));
  EXPECT_EQ(r->observed["hosts"]["db.internal"], json({"fd00::5", "10.0.0.5"}));
}

TEST(HostRefreshFiltersTest, ANameThatStopsResolvingKeepsItsLastAddressesAndSaysWhy) {
  const json args{{"to", {{"hosts", {"a.internal", "b.internal"}}}}, {"refresh", 1}};
  const json last{{"a.internal", {"10.0.0.1"}}, {"b.internal", {"10.0.0.2"}}};
  auto r = refreshHostFilters(args, last, table({{"a.internal", {"10.0.0.7"}}}));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->resolved.args["to"]["hostAddresses"], json({"10.0.0.2", "10.0.0.7"}));
  EXPECT_EQ(r->resolved.observed["hosts"],
            json({{"a.internal", {"10.0.0.7"}}, {"b.internal", {"10.0.0.2"}}}));
  ASSERT_EQ(r->kept.size(), 1u);
  EXPECT_NE(r->kept.at("b.internal").find("does not resolve"), std::string::npos);
  // A name with nothing to keep is still an error: never a silently empty filter.
  auto none = refreshHostFilters(args, json::object(), table({{"a.internal", {"10.0.0.7"}}}));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("to.hosts: host name 'b.internal'"), std::string::npos);
}

class NftHostSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth-a";
    target_.interface.netns.name = "app";
    ASSERT_TRUE(kernel_
                    ->run(kNs,
                          "add table inet keepme\n"
                          "add chain inet keepme c { type filter hook input priority 0; policy "
                          "accept; }\n"
                          "add rule inet keepme c iifname \"lo\" counter accept\n")
                    .ok());
  }

  // prepare, the run's table held, apply: the fault as the engine leaves it after apply.
  PreparedFault applied(const json& args, const std::string& type = "network.partition") {
    FaultRequest r;
    r.runId = "t";
    r.faultId = "np-1";
    r.stepName = "cut";
    r.faultType = type;
    r.target = &target_;
    r.args = args;
    auto prepared = injector_.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    if (!prepared) return {};
    EXPECT_TRUE(table_.apply("np-table", prepared->shared.at(0).undo).ok());
    auto done = injector_.apply("np-1", prepared->undo);
    EXPECT_TRUE(done.ok()) << done.error().describe();
    return *prepared;
  }
  Strings rules() const { return state_->rules(kNs, kTable); }
  std::set<std::string> elements(const std::string& set) const {
    const auto* t = state_->table(kNs, kTable);
    if (t == nullptr) return {};
    const auto* s = const_cast<testing::FakeNftTable*>(t)->set(set);
    return s == nullptr ? std::set<std::string>{} : s->elements;
  }
  size_t sets() const {
    const auto* t = state_->table(kNs, kTable);
    return t == nullptr ? 0 : t->sets.size();
  }
  json next(const PreparedFault& p, const json& args) {
    auto n = injector_.reprepare("np-1", p.undo, args);
    EXPECT_TRUE(n.ok()) << n.error().describe();
    return n.ok() ? *n : json();
  }

  std::shared_ptr<FakeNetfilter> state_ = std::make_shared<FakeNetfilter>();
  std::shared_ptr<FakeNftKernel> kernel_ = std::make_shared<FakeNftKernel>(state_);
  NftablesInjector injector_{kernel_};
  NftablesTableInjector table_{kernel_};
  TargetSpec target_;
};

const json kPeers = {{"cidr", {"10.9.0.0/16"}},  {"hostAddresses", {"10.0.0.5", "fd00::5"}},
                     {"refresh", 1'000'000'000}, {"protocol", "all"},
                     {"direction", "to"},        {"reject", false}};

TEST_F(NftHostSetTest, ThePeersNamesGoIntoTwoSetsTheRulesMatch) {
  const PreparedFault p = applied(kPeers);
  EXPECT_EQ(p.undo["hostSet"], "hosts_np_1");
  EXPECT_EQ(p.undo["hostAddresses"], json({"10.0.0.5", "fd00::5"}));
  EXPECT_EQ(
      rules(),
      (Strings{"out: oifname \"veth-a\" ip daddr @hosts_np_1_v4 drop comment \"chaosd:np-1\"",
               "out: oifname \"veth-a\" ip6 daddr @hosts_np_1_v6 drop comment \"chaosd:np-1\"",
               "out: oifname \"veth-a\" ip daddr { 10.9.0.0/16 } drop comment \"chaosd:np-1\""}));
  EXPECT_EQ(elements("hosts_np_1_v4"), std::set<std::string>{"10.0.0.5"});
  EXPECT_EQ(elements("hosts_np_1_v6"), std::set<std::string>{"fd00::5"});
}

TEST_F(NftHostSetTest, AnUpdateRefillsTheSetsInOneTransactionAndLeavesTheRules) {
  const PreparedFault p = applied(kPeers);
  const Strings before = rules();
  json args = kPeers;
  args["hostAddresses"] = {"10.0.0.6"};
  const json n = next(p, args);
  EXPECT_EQ(n["hostAddresses"], json({"10.0.0.6"}));
  EXPECT_EQ(n["hostSet"], p.undo["hostSet"]) << "the same sets: a revert of either finds them";
  EXPECT_NE(n["script"].get<std::string>().find("add element inet chaosd_run_t hosts_np_1_v4 { "
                                                "10.0.0.6 }"),
            std::string::npos)
      << "the record re-applies the new state";
  const size_t runs = kernel_->scripts().size();
  auto updated = injector_.update("np-1", p.undo, n);
  ASSERT_TRUE(updated.ok()) << updated.error().describe();
  ASSERT_EQ(kernel_->scripts().size(), runs + 1) << "one transaction";
  EXPECT_EQ(kernel_->scripts().back(),
            "flush set inet chaosd_run_t hosts_np_1_v4\n"
            "flush set inet chaosd_run_t hosts_np_1_v6\n"
            "add element inet chaosd_run_t hosts_np_1_v4 { 10.0.0.6 }\n");
  EXPECT_EQ(elements("hosts_np_1_v4"), std::set<std::string>{"10.0.0.6"});
  EXPECT_TRUE(elements("hosts_np_1_v6").empty()) << "the name lost its IPv6 address";
  EXPECT_EQ(rules(), before);
  // Revert from the new record: rules, then sets, gone; someone else's table untouched.
  auto reverted = injector_.revert("np-1", n);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_TRUE(rules().empty());
  EXPECT_EQ(sets(), 0u);
  EXPECT_EQ(state_->rules(kNs, "keepme").size(), 1u);
  auto audit = injector_.audit(n);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->empty());
}

// The engine journals the new record, then updates: if the update fails (or the owner dies in
// between), the kernel still holds the old elements, and a revert from the journalled (new)
// record removes them all the same.
TEST_F(NftHostSetTest, ARevertFromTheNewRecordRemovesTheOldStateToo) {
  const PreparedFault p = applied(kPeers);
  json args = kPeers;
  args["hostAddresses"] = {"10.0.0.6", "10.0.0.7"};
  const json n = next(p, args);
  kernel_->failRun(1, "Error: Could not process rule: No buffer space available");
  EXPECT_FALSE(injector_.update("np-1", p.undo, n).ok());
  EXPECT_EQ(elements("hosts_np_1_v4"), std::set<std::string>{"10.0.0.5"}) << "all or nothing";
  auto left = injector_.audit(n);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 5u) << "3 rules and 2 sets, found from the new record";
  ASSERT_TRUE(injector_.revert("np-1", n).ok());
  EXPECT_TRUE(rules().empty());
  EXPECT_EQ(sets(), 0u);
  // A second revert (the guardian after the owner) finds nothing and succeeds.
  auto again = injector_.revert("np-1", p.undo);
  ASSERT_TRUE(again.ok()) << again.error().describe();
}

TEST_F(NftHostSetTest, ResetAndLossFollowTheirNamesToo) {
  const PreparedFault p = applied(
      {{"hostAddresses", {"10.0.0.5"}}, {"direction", "from"}, {"refresh", 1}}, "network.reset");
  EXPECT_EQ(rules(),
            (Strings{"in: iifname \"veth-a\" ip saddr @hosts_np_1_v4 meta l4proto tcp counter "
                     "reject with tcp reset comment \"chaosd:np-1\"",
                     "in: iifname \"veth-a\" ip6 saddr @hosts_np_1_v6 meta l4proto tcp counter "
                     "reject with tcp reset comment \"chaosd:np-1\""}));
  ASSERT_TRUE(injector_.revert("np-1", p.undo).ok());
  EXPECT_EQ(sets(), 0u);
  const PreparedFault loss = applied(
      {{"loss", 0.5}, {"to", {{"hostAddresses", {"fd00::9"}}}}, {"refresh", 1}}, "network.loss");
  EXPECT_EQ(elements("hosts_np_1_v6"), std::set<std::string>{"fd00::9"});
  json args = {{"loss", 0.5}, {"to", {{"hostAddresses", {"fd00::a", "10.1.1.1"}}}}};
  ASSERT_TRUE(injector_.update("np-1", loss.undo, next(loss, args)).ok());
  EXPECT_EQ(elements("hosts_np_1_v6"), std::set<std::string>{"fd00::a"});
  EXPECT_EQ(elements("hosts_np_1_v4"), std::set<std::string>{"10.1.1.1"});
}

TEST_F(NftHostSetTest, AFaultWithoutRefreshHasNoSetAndCannotBeRefreshed) {
  const PreparedFault p = applied({{"cidr", {"10.0.0.5/32"}}, {"direction", "to"}});
  EXPECT_FALSE(p.undo.contains("hostSet")) << "the record keeps its earlier format";
  EXPECT_EQ(sets(), 0u);
  auto n = injector_.reprepare("np-1", p.undo, {{"cidr", {"10.0.0.6/32"}}});
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), ErrorCode::kUnsupported);
}

TEST_F(NftHostSetTest, ARecordWithAForeignSetNameIsRefused) {
  const PreparedFault p = applied(kPeers);
  json bad = p.undo;
  bad["hostSet"] = "x; flush ruleset";
  auto r = injector_.revert("np-1", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
}

class NfqueueRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth-a";
    target_.interface.netns.name = "app";
  }
  std::shared_ptr<FakeNetfilter> state_ = std::make_shared<FakeNetfilter>();
  std::shared_ptr<FakeNfqueueKernel> kernel_ = std::make_shared<FakeNfqueueKernel>(state_);
  std::shared_ptr<NfqueueDelayContext> context_ = std::make_shared<NfqueueDelayContext>();
  NfqueueDelayInjector injector_{context_, kernel_};
  TargetSpec target_;
};

TEST_F(NfqueueRefreshTest, AnUpdateReplacesTheRulesOfTheFaultsTableInOneBatch) {
  FaultRequest r;
  r.runId = "t";
  r.faultId = "nq-1";
  r.stepName = "slow";
  r.faultType = "network.delay";
  r.target = &target_;
  r.args = {{"delay", 50'000'000},
            {"direction", "egress"},
            {"refresh", 1},
            {"to", {{"hostAddresses", {"10.0.0.5"}}, {"ports", {{{"first", 80}}}}}}};
  auto p = injector_.prepare(r);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->undo["rules"], json({"ip daddr 10.0.0.5/32 meta l4proto tcp th dport 80",
                                    "ip daddr 10.0.0.5/32 meta l4proto udp th dport 80"}));
  ASSERT_TRUE(injector_.apply("nq-1", p->undo).ok());
  json args = r.args;
  args["to"]["hostAddresses"] = {"10.0.0.6", "fd00::6"};
  auto n = injector_.reprepare("nq-1", p->undo, args);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ((*n)["queue"], p->undo["queue"]);
  EXPECT_EQ((*n)["seed"], p->undo["seed"]);
  EXPECT_EQ((*n)["rules"].size(), 4u);
  ASSERT_TRUE(injector_.update("nq-1", p->undo, *n).ok());
  Strings rules = state_->rules(kNs, "chaosd_nq_1");
  ASSERT_EQ(rules.size(), 4u);
  for (const auto& rule : rules) {
    EXPECT_EQ(rule.find("10.0.0.5"), std::string::npos) << rule;
  }
  EXPECT_NE(rules[0].find("ip daddr 10.0.0.6/32"), std::string::npos) << rules[0];
  EXPECT_NE(rules[2].find("ip6 daddr fd00::6/128"), std::string::npos) << rules[2];
  // The revert deletes the table whole, from either record.
  ASSERT_TRUE(injector_.revert("nq-1", p->undo).ok());
  EXPECT_EQ(state_->table(kNs, "chaosd_nq_1"), nullptr);
  // An update in a process that does not hold the fault is refused (it has no consumer).
  auto late = injector_.update("nq-1", p->undo, *n);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), ErrorCode::kConflict);
}

}  // namespace
}  // namespace chaosd
