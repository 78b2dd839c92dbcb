// network.delay through NFQUEUE with a fake kernel (tests/support/FakeNfqueueKernel.h): the
// queue is bound and the fault's own table added as the root tests check (tests/integration/
// NfqueueDelayTest.cpp), revert removes both and accepts every packet held, and the failure
// paths (a bind refused, the batch refused, a revert interrupted, the table or namespace gone)
// leave no table, no bound queue and no consumer behind.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueDelay.h"
#include "tests/support/FakeNfqueueKernel.h"
#include "tests/support/FakeNftKernel.h"

namespace chaosd {
namespace {

using nlohmann::json;
using testing::FakeNetfilter;
using testing::FakeNfqueueKernel;
using testing::FakeNftKernel;
using Strings = std::vector<std::string>;

const std::string kNs = "/run/netns/app";
const std::string kTable = "chaosd_nq_1";

class NfqueueSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth-a";
    target_.interface.netns.name = "app";
    // Someone else's table, in the same model the nft fake writes.
    FakeNftKernel nft(state_);
    ASSERT_TRUE(nft.run(kNs,
                        "add table inet keepme\n"
                        "add chain inet keepme c { type filter hook postrouting priority 0; "
                        "policy accept; }\n"
                        "add rule inet keepme c meta l4proto udp th dport { 7 } counter accept\n")
                    .ok());
  }

  FaultRequest request(json args, const std::string& faultId = "nq-1") {
    FaultRequest r;
    r.runId = "t";
    r.faultId = faultId;
    r.stepName = "slow";
    r.faultType = "network.delay";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }
  PreparedFault prepare(const FaultRequest& r) {
    auto prepared = injector_.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    return prepared.ok() ? *prepared : PreparedFault{};
  }
  Strings audit(const PreparedFault& p) {
    auto a = injector_.audit(p.undo);
    EXPECT_TRUE(a.ok()) << a.error().describe();
    return a.ok() ? *a : Strings{"audit failed"};
  }
  Strings tables() const { return state_->tableNames(kNs); }
  std::set<uint16_t> bound() { return state_->netns(kNs).boundQueues; }
  static uint16_t queueOf(const PreparedFault& p) { return p.undo["queue"].get<uint16_t>(); }
  std::string bind(uint16_t q) const { return "bind " + std::to_string(q) + " " + kNs; }
  std::string unbind(uint16_t q) const { return "unbind " + std::to_string(q) + " " + kNs; }

  std::shared_ptr<FakeNetfilter> state_ = std::make_shared<FakeNetfilter>();
  std::shared_ptr<FakeNfqueueKernel> kernel_ = std::make_shared<FakeNfqueueKernel>(state_);
  std::shared_ptr<NfqueueDelayContext> context_ = std::make_shared<NfqueueDelayContext>();
  NfqueueDelayInjector injector_{context_, kernel_};
  TargetSpec target_;
};

TEST_F(NfqueueSeamTest, ApplyBindsTheQueueAndAddsTheTableRevertRemovesBoth) {
  const PreparedFault p = prepare(request({{"delay", 50'000'000}, {"direction", "egress"}}));
  const uint16_t q = queueOf(p);
  EXPECT_GE(q, kNfqueueFirst);
  EXPECT_LT(q, kNfqueueFirst + kNfqueueCount);
  EXPECT_EQ(p.resources,
            (Strings{"nft:" + kNs + ":" + kTable, "nfqueue:" + kNs + ":" + std::to_string(q)}));
  EXPECT_NE(p.description.find("delay 50ms on veth-a (egress)"), std::string::npos)
      << p.description;
  EXPECT_TRUE(tables() == Strings{"inet keepme"}) << "prepare reads only";

  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->backend, "nfqueue");
  EXPECT_EQ(applied->observed["verdict"], "nft queue");
  EXPECT_EQ(applied->observed["queue"], q);
  EXPECT_EQ(state_->events, Strings{bind(q)});
  EXPECT_EQ(kernel_->lastMaxlen, 1000u) << "the limit is the kernel queue's maxlen";
  EXPECT_EQ(bound(), std::set<uint16_t>{q});
  EXPECT_EQ(tables(), (Strings{"inet keepme", "inet " + kTable}));
  const auto* table = state_->table(kNs, kTable);
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->chains.size(), 1u);
  EXPECT_EQ(table->chains[0].hook, "postrouting");
  EXPECT_EQ(
      state_->rules(kNs, kTable),
      Strings{"egress: oifname \"veth-a\" counter queue flags bypass to " + std::to_string(q)});
  EXPECT_EQ(audit(p),
            (Strings{"nftables table inet " + kTable + " still exists",
                     "the NFQUEUE consumer of queue " + std::to_string(q) + " still runs"}));

  kernel_->passPackets(kNs, kTable, 5);
  kernel_->releaseHeld(kNs, q);
  kernel_->passPackets(kNs, kTable, 3);  // still held at the revert
  auto reverted = injector_.revert("nq-1", p.undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["matched"], 8u);
  EXPECT_EQ((*reverted)["queued"], 8u);
  EXPECT_EQ((*reverted)["released"], 5u);
  EXPECT_EQ((*reverted)["releasedAtStop"], 3u) << "every packet held is accepted at the stop";
  EXPECT_EQ((*reverted)["failOpen"], 0u);
  EXPECT_EQ((*reverted)["queue"], q);
  EXPECT_EQ(state_->events, (Strings{bind(q), unbind(q)}));
  EXPECT_TRUE(bound().empty()) << "the queue is unbound";
  EXPECT_EQ(tables(), Strings{"inet keepme"});
  EXPECT_EQ(state_->rules(kNs, "keepme").size(), 1u);
  EXPECT_TRUE(audit(p).empty());

  auto again = injector_.revert("nq-1", p.undo);
  ASSERT_TRUE(again.ok()) << "a second revert is a success";
  EXPECT_EQ(*again, json::object()) << "no table to count, no consumer to stop";
  EXPECT_EQ(state_->events.size(), 2u) << "nothing unbound twice";
  EXPECT_TRUE(audit(p).empty());
}

// Packets the rules matched but the kernel accepted itself (its queue full) are fail-open.
TEST_F(NfqueueSeamTest, RevertCountsPacketsTheKernelLetThroughUndelayed) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000},
                                           {"direction", "ingress"},
                                           {"from", {{"cidr", {"10.0.0.2/32"}}}},
                                           {"protocol", "udp"}}));
  ASSERT_TRUE(injector_.apply("nq-1", p.undo).ok());
  const auto* table = state_->table(kNs, kTable);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->chains.at(0).hook, "prerouting");
  EXPECT_EQ(state_->rules(kNs, kTable).at(0),
            "ingress: iifname \"veth-a\" ip saddr 10.0.0.2/32 meta l4proto udp counter queue "
            "flags bypass to " +
                std::to_string(queueOf(p)));
  kernel_->passPackets(kNs, kTable, 4);
  kernel_->passPackets(kNs, kTable, 2, false);
  auto reverted = injector_.revert("nq-1", p.undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ((*reverted)["matched"], 6u);
  EXPECT_EQ((*reverted)["queued"], 4u);
  EXPECT_EQ((*reverted)["failOpen"], 2u);
  EXPECT_TRUE(audit(p).empty());
}

// The queue number comes from the fault id; one bound in the namespace is skipped, and a
// second apply of the same fault is refused, not merged.
TEST_F(NfqueueSeamTest, QueueNumberSkipsOneBoundAndASecondApplyIsRefused) {
  const PreparedFault first = prepare(request({{"delay", 1'000'000}}, "nq-q"));
  const uint16_t q = queueOf(first);
  EXPECT_EQ(queueOf(prepare(request({{"delay", 1'000'000}}, "nq-q"))), q) << "the same choice";
  kernel_->bindElsewhere(kNs, q);
  const PreparedFault second = prepare(request({{"delay", 1'000'000}}, "nq-q"));
  EXPECT_EQ(queueOf(second), q + 1 == kNfqueueFirst + kNfqueueCount ? kNfqueueFirst : q + 1);
  ASSERT_TRUE(injector_.apply("nq-q", second.undo).ok());
  auto twice = injector_.apply("nq-q", second.undo);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(state_->events.size(), 1u) << "the refused apply bound nothing";
  ASSERT_TRUE(injector_.revert("nq-q", second.undo).ok());
  EXPECT_EQ(bound(), std::set<uint16_t>{q}) << "someone else's queue stays bound";
  EXPECT_EQ(tables(), Strings{"inet keepme"});
}

// Another program took the queue between prepare and apply: the bind is refused (busy) and
// nothing is added.
TEST_F(NfqueueSeamTest, QueueBusyAtApplyAddsNothing) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  kernel_->bindElsewhere(kNs, queueOf(p));
  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(tables(), Strings{"inet keepme"});
  EXPECT_TRUE(state_->events.empty());
  EXPECT_TRUE(audit(p).empty());
  ASSERT_TRUE(injector_.revert("nq-1", p.undo).ok());
}

// The table's batch (the apply's second kernel change, after the bind) is refused: the
// consumer is stopped and its queue unbound, so nothing of the fault is left.
TEST_F(NfqueueSeamTest, TableRefusedAfterTheBindLeavesNothing) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  kernel_->failCall("addQueueTable", 1, Error(ErrorCode::kKernel, "nftables refused the batch"));
  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kKernel);
  const uint16_t q = queueOf(p);
  EXPECT_EQ(state_->events, (Strings{bind(q), unbind(q)}));
  EXPECT_TRUE(bound().empty());
  EXPECT_EQ(tables(), Strings{"inet keepme"});
  EXPECT_TRUE(audit(p).empty());
  ASSERT_TRUE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_TRUE(injector_.apply("nq-1", p.undo).ok()) << "and the fault can be applied again";
  ASSERT_TRUE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_TRUE(audit(p).empty());
}

// A leftover table of the same name (a crashed run's) is never merged into.
TEST_F(NfqueueSeamTest, TableAlreadyThereIsRefusedNotMerged) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  FakeNftKernel nft(state_);
  ASSERT_TRUE(nft.run(kNs, "add table inet " + kTable).ok());
  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().sysErrno(), EEXIST);
  EXPECT_TRUE(bound().empty());
  EXPECT_TRUE(state_->rules(kNs, kTable).empty());
}

// A kernel without nft's queue expression: the xtables target, learnt once for the registry.
TEST_F(NfqueueSeamTest, FallsBackToTheXtablesTargetAndRemembersIt) {
  kernel_->nftQueueExpression = false;
  const PreparedFault p1 = prepare(request({{"delay", 1'000'000}}));
  auto applied = injector_.apply("nq-1", p1.undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(applied->observed["verdict"], "xt NFQUEUE v3 (nft_compat)");
  EXPECT_EQ(context_->knownVerdict(), nfq::QueueVerdict::kXtTarget);
  EXPECT_EQ(kernel_->calls("addQueueTable"), 2);
  EXPECT_NE(state_->rules(kNs, kTable).at(0).find("xt target \"NFQUEUE\""), std::string::npos);
  const PreparedFault p2 = prepare(request({{"delay", 1'000'000}}, "nq-2"));
  NfqueueDelayInjector other(context_, kernel_);
  ASSERT_TRUE(other.apply("nq-2", p2.undo).ok());
  EXPECT_EQ(kernel_->calls("addQueueTable"), 3) << "straight to the target that worked";
  ASSERT_TRUE(other.revert("nq-1", p1.undo).ok()) << "any injector of the registry reverts";
  ASSERT_TRUE(injector_.revert("nq-2", p2.undo).ok());
  EXPECT_TRUE(bound().empty());
  EXPECT_EQ(tables(), Strings{"inet keepme"});
}

TEST_F(NfqueueSeamTest, NeitherVerdictAvailableIsUnsupportedAndLeavesNothing) {
  kernel_->nftQueueExpression = false;
  kernel_->failCall("addQueueTable", 2, Error(ErrorCode::kUnsupported, "no nft_compat", ENOENT));
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(applied.error().message().find("CONFIG_NFT_QUEUE"), std::string::npos);
  EXPECT_TRUE(bound().empty());
  EXPECT_EQ(tables(), Strings{"inet keepme"});
  EXPECT_EQ(context_->knownVerdict(), std::nullopt);
}

// The revert's flush is refused: an error before anything changed (the consumer still runs,
// the table is still there); the next revert removes both.
TEST_F(NfqueueSeamTest, FlushRefusedKeepsEverythingAndARetryRemovesIt) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  ASSERT_TRUE(injector_.apply("nq-1", p.undo).ok());
  kernel_->failCall("flushTable", 1, Error(ErrorCode::kKernel, "flushing: Device busy"));
  ASSERT_FALSE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_EQ(audit(p).size(), 2u);
  EXPECT_EQ(bound().size(), 1u);
  ASSERT_TRUE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_TRUE(audit(p).empty());
  EXPECT_TRUE(bound().empty());
}

// The revert's delete is refused after the rules were flushed and the consumer stopped: the
// empty table is what is left (audited), and the next revert deletes it.
TEST_F(NfqueueSeamTest, DeleteRefusedLeavesOnlyTheEmptyTableForTheRetry) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  ASSERT_TRUE(injector_.apply("nq-1", p.undo).ok());
  kernel_->failCall("deleteTable", 1, Error(ErrorCode::kKernel, "deleting: Device busy"));
  ASSERT_FALSE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_EQ(audit(p), Strings{"nftables table inet " + kTable + " still exists"});
  EXPECT_TRUE(bound().empty()) << "the consumer was stopped before the delete";
  EXPECT_TRUE(state_->rules(kNs, kTable).empty()) << "flushed: nothing new is queued";
  ASSERT_TRUE(injector_.revert("nq-1", p.undo).ok());
  EXPECT_TRUE(audit(p).empty());
  EXPECT_EQ(tables(), Strings{"inet keepme"});
}

TEST_F(NfqueueSeamTest, TableAlreadyGoneAtRevertIsASuccess) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  ASSERT_TRUE(injector_.apply("nq-1", p.undo).ok());
  ASSERT_TRUE(state_->netns(kNs).eraseTable("inet", kTable));
  auto reverted = injector_.revert("nq-1", p.undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_FALSE(reverted->contains("matched")) << "no table, no count";
  EXPECT_EQ((*reverted)["queue"], queueOf(p)) << "the consumer is still stopped";
  EXPECT_FALSE(reverted->contains("failOpen"));
  EXPECT_TRUE(bound().empty());
  EXPECT_TRUE(audit(p).empty());
}

TEST_F(NfqueueSeamTest, NamespaceGoneIsANoteAndTheConsumerStops) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  ASSERT_TRUE(injector_.apply("nq-1", p.undo).ok());
  state_->removeNamespace(kNs);
  auto reverted = injector_.revert("nq-1", p.undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["note"], "the network namespace is gone");
  EXPECT_EQ(state_->events.back(), unbind(queueOf(p)));
  EXPECT_FALSE(context_->runs("nq-1"));
  EXPECT_TRUE(audit(p).empty());
  auto applied = injector_.apply("nq-1", p.undo);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(injector_.prepare(request({{"delay", 1'000'000}})).error().code(),
            ErrorCode::kNotFound);
}

TEST_F(NfqueueSeamTest, AuditReportsAKernelThatCannotAnswer) {
  const PreparedFault p = prepare(request({{"delay", 1'000'000}}));
  kernel_->failCall("tableExists", 1, Error(ErrorCode::kKernel, "asking: No buffer space"));
  EXPECT_FALSE(injector_.audit(p.undo).ok());
  kernel_->failCall("boundQueues", 1, Error(ErrorCode::kIo, "reading nfnetlink_queue"));
  EXPECT_EQ(injector_.prepare(request({{"delay", 1'000'000}})).error().code(), ErrorCode::kIo);
}

TEST_F(NfqueueSeamTest, PrepareAndApplyRefuseBadArgsAndForeignRecords) {
  EXPECT_EQ(injector_.prepare(request({})).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.prepare(request({{"delay", 1}, {"loss", 0.1}})).error().code(),
            ErrorCode::kUnsupported);
  const PreparedFault p = prepare(request({{"delay", 1'000'000}, {"jitter", 100'000}}));
  EXPECT_NE(p.description.find("delay 1ms +/- 0.1ms"), std::string::npos) << p.description;
  EXPECT_EQ(injector_.apply("nq-2", p.undo).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.revert("nq-2", p.undo).error().code(), ErrorCode::kInvalid);
  json foreign = p.undo;
  foreign["table"] = "keepme";
  EXPECT_EQ(injector_.revert("nq-1", foreign).error().code(), ErrorCode::kInvalid);
  json badShape = p.undo;
  badShape["distribution"] = "paretonormal";
  EXPECT_FALSE(injector_.apply("nq-1", badShape).ok());
  target_.kind = TargetKind::kProcess;
  EXPECT_EQ(injector_.prepare(request({{"delay", 1'000'000}})).error().code(), ErrorCode::kInvalid);
  EXPECT_TRUE(state_->events.empty());
  EXPECT_EQ(tables(), Strings{"inet keepme"});
}

}  // namespace
}  // namespace chaosd
