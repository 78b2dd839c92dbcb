// QdiscInjector's failure paths against FakeTc: a netlink error at each call of an apply (and
// the revert that must still clean up), a revert failing half-way and retried, devices and
// namespaces gone, damaged records, a root changed behind our back, a kernel without netem.
#include <cerrno>

#include "tests/unit/QdiscSeamFixture.h"

namespace chaosd {
namespace {

using namespace qdiscseam;

struct Scenario {
  const char* name;
  nlohmann::json args;
  bool userRoot;
};

class QdiscSeamHalfWayTest : public QdiscSeamTest,
                             public ::testing::WithParamInterface<Scenario> {};

// Every mutating call of the apply fails in turn (the 3rd one is the leaf: root, default
// class, fault class, leaf, filters); the revert that follows leaves the device as it was.
TEST_P(QdiscSeamHalfWayTest, ANetlinkErrorAtAnyCallOfApplyThenRevertLeavesTheDeviceAsItWas) {
  const Scenario& s = GetParam();
  if (s.userRoot) addUserRoot("fq_codel", tcHandle(3, 0), "limit 10240");
  const auto before = tc_->netns(kNs)->links;
  auto p = prepareOk(request("network.delay", "hw", s.args));
  const size_t start = tc_->calls().size();
  ASSERT_TRUE(injector_.apply("hw", p.undo).ok());
  const int calls = static_cast<int>(tc_->calls().size() - start);
  ASSERT_GE(calls, 5) << "root, default class, class, leaf, filter at least";
  ASSERT_TRUE(injector_.revert("hw", p.undo).ok());
  ASSERT_EQ(tc_->netns(kNs)->links, before);
  for (int n = 1; n <= calls; ++n) {
    p = prepareOk(request("network.delay", "hw", s.args));
    tc_->failCall(n, EIO);
    auto a = injector_.apply("hw", p.undo);
    ASSERT_FALSE(a.ok()) << "call " << n;
    EXPECT_EQ(a.error().code(), ErrorCode::kIo) << a.error().describe();
    auto r = injector_.revert("hw", p.undo);
    ASSERT_TRUE(r.ok()) << "call " << n << ": " << r.error().describe();
    EXPECT_EQ(tc_->netns(kNs)->links, before) << "apply failing at call " << n;
    expectRevertedFully("hw", p.undo);
  }
}

INSTANTIATE_TEST_SUITE_P(
    QdiscTrees, QdiscSeamHalfWayTest,
    ::testing::Values(Scenario{"Egress", {{"delay", 1'000'000}}, false},
                      Scenario{"OverAUsersRoot", {{"delay", 1'000'000}}, true},
                      Scenario{"Ingress", {{"delay", 1'000'000}, {"direction", "ingress"}}, false},
                      Scenario{"IngressBothFamilies",
                               {{"delay", 1'000'000},
                                {"direction", "ingress"},
                                {"from", {{"cidr", {"10.1.0.0/16", "fd00::/64"}}}}},
                               true}),
    [](const ::testing::TestParamInfo<Scenario>& scenario) {
      return std::string(scenario.param.name);
    });

// A revert that fails half-way (the kernel refused one delete) fails as a value, and the next
// one finishes the job.
TEST_F(QdiscSeamTest, ARevertFailingHalfWayIsFinishedByTheNext) {
  const FakeLink before = dev();
  auto p1 = prepareOk(request("network.loss", "r1", {{"loss", 0.1}}));
  auto p2 = prepareOk(request("network.loss", "r2", {{"loss", 0.2}}));
  ASSERT_TRUE(injector_.apply("r1", p1.undo).ok());
  ASSERT_TRUE(injector_.apply("r2", p2.undo).ok());
  tc_->failCall(2, EBUSY);  // the filters go, the class does not
  auto r = injector_.revert("r1", p1.undo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kConflict);
  EXPECT_FALSE(injector_.audit(p1.undo)->empty()) << "its class is still there";
  ASSERT_TRUE(injector_.revert("r1", p1.undo).ok());
  EXPECT_TRUE(injector_.audit(p1.undo)->empty());
  tc_->failCall(1, ENOMEM);  // the root's delete
  ASSERT_FALSE(injector_.revert("r2", p2.undo).ok());
  ASSERT_TRUE(injector_.revert("r2", p2.undo).ok());
  EXPECT_EQ(dev(), before);
  expectRevertedFully("r2", p2.undo);
}

// The last revert deletes our root, then the user's root cannot be added back: the retry finds
// the kernel's default root and restores the user's, and a third revert changes nothing.
TEST_F(QdiscSeamTest, AUsersRootARevertFailedToRestoreIsRestoredByTheNext) {
  addUserRoot("tbf", tcHandle(8, 0), "rate 100mbit");
  const FakeLink before = dev();
  auto p = prepareOk(request("network.delay", "rr", {{"delay", 5'000'000}}));
  ASSERT_TRUE(injector_.apply("rr", p.undo).ok());
  tc_->failCall(2, ENOMEM);  // the root's delete passes, the user's root is refused
  auto failed = injector_.revert("rr", p.undo);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(dev().qdisc(tcHandle(8, 0)), nullptr) << "the user's root is missing now";
  auto retried = injector_.revert("rr", p.undo);
  ASSERT_TRUE(retried.ok()) << retried.error().describe();
  EXPECT_NE((*retried)["note"].get<std::string>().find("restored the root qdisc 8:0"),
            std::string::npos);
  EXPECT_EQ(dev(), before);
  const auto calls = tc_->calls().size();
  ASSERT_TRUE(injector_.revert("rr", p.undo).ok());
  EXPECT_EQ(tc_->calls().size(), calls) << "nothing left to do";
  expectRevertedFully("rr", p.undo);
}

TEST_F(QdiscSeamTest, AnInterfaceGoneAtRevertIsANoteNotAnError) {
  auto p = prepareOk(request("network.bandwidth", "g1", {{"rate", 8'000'000}}));
  ASSERT_TRUE(injector_.apply("g1", p.undo).ok());
  tc_->removeLink(kNs, kDev);
  auto r = injector_.revert("g1", p.undo);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["note"], "interface " + kDev + " is gone");
  EXPECT_TRUE(injector_.audit(p.undo)->empty());
  EXPECT_TRUE(injector_.revert("g1", p.undo).ok());
}

TEST_F(QdiscSeamTest, AnInterfaceGoneAtAnIngressRevertStillTakesTheIfbAway) {
  auto p = prepareOk(
      request("network.bandwidth", "g2", {{"rate", 8'000'000}, {"direction", "ingress"}}));
  ASSERT_TRUE(injector_.apply("g2", p.undo).ok());
  tc_->removeLink(kNs, kDev);
  ASSERT_TRUE(injector_.revert("g2", p.undo).ok());
  EXPECT_EQ(tc_->link(kNs, qdiscIfbName("g2")), nullptr);
  EXPECT_TRUE(injector_.audit(p.undo)->empty());
}

TEST_F(QdiscSeamTest, ANamespaceGoneAtRevertIsANote) {
  auto p = prepareOk(request("network.loss", "g3", {{"loss", 0.5}}));
  ASSERT_TRUE(injector_.apply("g3", p.undo).ok());
  tc_->removeNetns(kNs);
  auto r = injector_.revert("g3", p.undo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["note"], "the network namespace is gone");
  auto audit = injector_.audit(p.undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->empty());
}

// Revert needs the device, the slot, the filters and the prior root, not the leaf.
TEST_F(QdiscSeamTest, ADamagedLeafInTheRecordDoesNotBlockRevert) {
  addUserRoot("tbf", tcHandle(8, 0), "rate 50mbit");
  const FakeLink before = dev();
  for (const nlohmann::json& damaged :
       {nlohmann::json("garbage"), nlohmann::json{{"kind", "cake"}}, nlohmann::json()}) {
    for (const char* direction : {"egress", "ingress"}) {
      auto p = prepareOk(
          request("network.delay", "dl", {{"delay", 1'000'000}, {"direction", direction}}));
      ASSERT_TRUE(injector_.apply("dl", p.undo).ok());
      nlohmann::json undo = p.undo;
      if (damaged.is_null()) {
        undo.erase("leaf");
      } else {
        undo["leaf"] = damaged;
      }
      auto applied = injector_.apply("dl", undo);
      ASSERT_FALSE(applied.ok()) << "apply needs the leaf";
      EXPECT_EQ(applied.error().code(), ErrorCode::kInvalid);
      auto r = injector_.revert("dl", undo);
      ASSERT_TRUE(r.ok()) << damaged.dump() << ": " << r.error().describe();
      EXPECT_EQ(dev(), before) << damaged.dump() << " " << direction;
      expectRevertedFully("dl", undo);
    }
  }
}

TEST_F(QdiscSeamTest, ALeafTheKernelRefusesLeavesAPartialTreeThatRevertRemoves) {
  const FakeLink before = dev();
  auto p = prepareOk(request("network.bandwidth", "bad", {{"rate", 8'000'000}}));
  nlohmann::json undo = p.undo;
  undo["leaf"]["rate"] = 0;  // tbf without a rate: the kernel refuses it
  auto a = injector_.apply("bad", undo);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kInvalid);
  EXPECT_FALSE(injector_.audit(undo)->empty()) << "the root and class went in";
  ASSERT_TRUE(injector_.revert("bad", undo).ok());
  EXPECT_EQ(dev(), before);
  expectRevertedFully("bad", undo);
}

TEST_F(QdiscSeamTest, ARootChangedSincePrepareIsAConflictAndLeftAlone) {
  auto p = prepareOk(request("network.loss", "ch", {{"loss", 0.1}}));
  addUserRoot("pfifo", tcHandle(7, 0), "limit 77");
  const FakeLink before = dev();
  auto a = injector_.apply("ch", p.undo);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kConflict);
  EXPECT_NE(a.error().message().find("default then, 7:0 now"), std::string::npos);
  ASSERT_TRUE(injector_.revert("ch", p.undo).ok());
  EXPECT_EQ(dev(), before) << "the user's root is not ours to remove";
}

TEST_F(QdiscSeamTest, ASlotHeldByAnotherFaultIsAConflict) {
  auto p1 = prepareOk(request("network.loss", "s1", {{"loss", 0.1}}));
  ASSERT_TRUE(injector_.apply("s1", p1.undo).ok());
  auto p2 = prepareOk(request("network.loss", "s2", {{"loss", 0.2}}));
  nlohmann::json clash = p2.undo;
  clash["slot"] = p1.undo["slot"];
  auto a = injector_.apply("s2", clash);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kConflict);
  EXPECT_NE(a.error().message().find("another fault holds this slot"), std::string::npos);
  EXPECT_EQ(leafOf(dev(), "s1")->leaf, *QdiscLeaf::fromJson(p1.undo["leaf"]));
  ASSERT_TRUE(injector_.revert("s1", p1.undo).ok());
  EXPECT_TRUE(dev().qdiscs.empty());
}

TEST_F(QdiscSeamTest, AKernelWithoutNetemRefusesNetemLeavesButNotTbf) {
  tc_->setNetem(false);
  auto p = injector_.prepare(request("network.delay", "nn", {{"delay", 1'000'000}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(p.error().describe().find("sch_netem"), std::string::npos);
  auto t = prepareOk(request("network.bandwidth", "nn", {{"rate", 8'000'000}}));
  nlohmann::json undo = t.undo;
  undo["leaf"] = {{"kind", "netem"}, {"delayUs", 1000}, {"limit", 1000}};
  auto a = injector_.apply("nn", undo);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(tc_->calls().empty()) << "refused before touching the device";
  ASSERT_TRUE(injector_.revert("nn", undo).ok());
  EXPECT_TRUE(injector_.apply("nn", t.undo).ok()) << "tbf needs no netem";
  ASSERT_TRUE(injector_.revert("nn", t.undo).ok());
  expectRevertedFully("nn", t.undo);
}

TEST_F(QdiscSeamTest, PrepareRefusesWhatItCannotFaultBeforeTouchingAnything) {
  auto wrongKind = request("network.loss", "p", {{"loss", 0.1}});
  TargetSpec process;
  wrongKind.target = &process;
  EXPECT_EQ(injector_.prepare(wrongKind).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.prepare(request("network.loss", "p", {{"loss", "x"}})).error().code(),
            ErrorCode::kInvalid);
  target_.interface.name = "eth9";
  EXPECT_EQ(injector_.prepare(request("network.loss", "p", {{"loss", 0.1}})).error().code(),
            ErrorCode::kNotFound);
  target_.interface.name = kDev;
  target_.interface.netns.name = "elsewhere";
  EXPECT_EQ(injector_.prepare(request("network.loss", "p", {{"loss", 0.1}})).error().code(),
            ErrorCode::kNotFound);
  EXPECT_TRUE(tc_->calls().empty());
  EXPECT_EQ(tc_->entered(), 0);
}

// The user's own ingress qdisc (with a filter of theirs at tc's first priority) is not ours to
// add to; one of ours (another ingress fault's) is.
TEST_F(QdiscSeamTest, AnIngressFaultAddsOnlyToAnIngressQdiscOfOurs) {
  auto p1 = prepareOk(request("network.loss", "i1", {{"loss", 0.1}, {"direction", "ingress"}}));
  ASSERT_TRUE(injector_.apply("i1", p1.undo).ok());
  prepareOk(request("network.loss", "i2", {{"loss", 0.1}, {"direction", "ingress"}}));
  ASSERT_TRUE(injector_.revert("i1", p1.undo).ok());
  tc_->addUserQdisc(kNs, kDev, testing::ingressQdisc());
  FakeFilter theirs;
  theirs.parent = tcHandle(0xffff, 0);
  theirs.prio = 49152;
  tc_->addUserFilter(kNs, kDev, theirs);
  const FakeLink before = dev();
  auto refused =
      injector_.prepare(request("network.loss", "i3", {{"loss", 0.1}, {"direction", "ingress"}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(dev(), before);
}

TEST_F(QdiscSeamTest, RecordsOfOtherFaultsAreRefused) {
  auto p = prepareOk(request("network.loss", "mine", {{"loss", 0.1}}));
  EXPECT_EQ(injector_.apply("other", p.undo).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.revert("other", p.undo).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(injector_.audit(nlohmann::json{{"faultId", 3}}).error().code(), ErrorCode::kInvalid);
  EXPECT_TRUE(tc_->calls().empty());
}

}  // namespace
}  // namespace chaosd
