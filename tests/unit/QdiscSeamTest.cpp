// QdiscInjector's tree logic against FakeTc (tests/support/FakeTc.h), without root: the tree
// apply builds for each leaf, egress and ingress, what revert puts back (the kernel's default
// root or the user's, exactly), two faults sharing a device, and the records revert is given.
// QdiscSeamFailureTest.cpp has the failures; tests/integration/QdiscFaultTest.cpp the real kernel.
#include "tests/unit/QdiscSeamFixture.h"

namespace chaosd {
namespace {

using namespace qdiscseam;

struct LeafCase {
  const char* type;
  nlohmann::json args;
  const char* kind;
};

std::vector<LeafCase> leafCases() {
  return {{"network.delay", {{"delay", 100'000'000}, {"jitter", 10'000'000}}, "netem"},
          {"network.loss", {{"loss", 0.25}}, "netem"},
          {"network.duplicate", {{"duplicate", 0.1}}, "netem"},
          {"network.corrupt", {{"corrupt", 0.1}}, "netem"},
          {"network.reorder", {{"delay", 1'000'000}, {"reorder", 0.3}, {"gap", 4}}, "netem"},
          {"network.rate", {{"rate", 8'000'000}}, "netem"},
          {"network.bandwidth", {{"rate", 16'000'000}}, "tbf"}};
}

class QdiscSeamLeafTest : public QdiscSeamTest, public ::testing::WithParamInterface<LeafCase> {};

TEST_P(QdiscSeamLeafTest, EgressBuildsTheTreeAndRevertPutsTheDefaultRootBack) {
  const LeafCase& c = GetParam();
  const FakeLink before = dev();
  auto p = prepareOk(request(c.type, "f1", c.args));
  EXPECT_EQ(p.undo["prior"], (nlohmann::json{{"kind", "default"}}));
  EXPECT_EQ(p.undo["leaf"]["kind"], c.kind);
  EXPECT_EQ(tc_->calls().size(), 0u) << "prepare changes nothing";
  auto a = injector_.apply("f1", p.undo);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->backend, c.kind);
  EXPECT_EQ(a->observed["class"], qdisc::className(qdiscSlot("f1")));
  expectTree(dev(), "f1", c.kind, qdisc::kDefaultMinor);
  EXPECT_EQ(leafOf(dev(), "f1")->leaf, *QdiscLeaf::fromJson(p.undo["leaf"]));
  setLeafCounters(dev(), "f1", {120, 9000, 7, 3});
  auto audit = injector_.audit(p.undo);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->size(), 2u) << "the class and its filters";
  auto r = injector_.revert("f1", p.undo);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["packets"], 120);
  EXPECT_EQ((*r)["drops"], 7);
  EXPECT_EQ(dev(), before);
  expectRevertedFully("f1", p.undo);
}

TEST_P(QdiscSeamLeafTest, IngressGoesThroughTheFaultsIfbAndRevertRemovesIt) {
  const LeafCase& c = GetParam();
  nlohmann::json args = c.args;
  args["direction"] = "ingress";
  const FakeLink before = dev();
  auto p = prepareOk(request(c.type, "in1", args));
  const std::string ifb = qdiscIfbName("in1");
  EXPECT_EQ(p.undo["ifb"], ifb);
  auto a = injector_.apply("in1", p.undo);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->observed["ifb"], ifb);
  FakeLink* ifbLink = tc_->link(kNs, ifb);
  ASSERT_NE(ifbLink, nullptr);
  EXPECT_EQ(ifbLink->type, "ifb");
  EXPECT_TRUE(ifbLink->up);
  expectTree(*ifbLink, "in1", c.kind, qdisc::kDefaultMinor);
  // On the interface: the ingress qdisc, and one redirect per filter to the ifb.
  ASSERT_NE(dev().at(TC_H_INGRESS), nullptr);
  EXPECT_EQ(dev().at(TC_H_INGRESS)->kind, "ingress");
  ASSERT_EQ(dev().filters.size(), 1u);
  EXPECT_EQ(dev().filters[0].redirectTo, ifbLink->ifindex);
  EXPECT_EQ(dev().filters[0].prio, qdisc::prioFor(qdiscSlot("in1"), 0));
  EXPECT_EQ(dev().at(TC_H_ROOT), nullptr) << "egress untouched";
  setLeafCounters(*ifbLink, "in1", {5, 500, 1, 0});
  auto r = injector_.revert("in1", p.undo);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["bytes"], 500);
  EXPECT_EQ(tc_->link(kNs, ifb), nullptr);
  EXPECT_EQ(dev(), before);
  expectRevertedFully("in1", p.undo);
}

INSTANTIATE_TEST_SUITE_P(QdiscLeaves, QdiscSeamLeafTest, ::testing::ValuesIn(leafCases()),
                         [](const ::testing::TestParamInfo<LeafCase>& leaf) {
                           return std::string(leaf.param.type).substr(8);
                         });

TEST_F(QdiscSeamTest, AUsersRootIsReplacedThenRestoredExactly) {
  for (const char* kind : {"fq_codel", "tbf", "pfifo"}) {
    addUserRoot(kind, tcHandle(8, 0), std::string(kind) + " options");
    const FakeLink before = dev();
    auto p = prepareOk(request("network.delay", "u1", {{"delay", 5'000'000}}));
    EXPECT_EQ(p.undo["prior"]["kind"], kind);
    EXPECT_EQ(p.undo["prior"]["handle"], "8:0");
    ASSERT_TRUE(injector_.apply("u1", p.undo).ok());
    expectTree(dev(), "u1", "netem", qdisc::kDefaultMinorUserRoot);
    EXPECT_EQ(dev().qdisc(tcHandle(8, 0)), nullptr) << "ours replaced it";
    ASSERT_TRUE(injector_.revert("u1", p.undo).ok());
    EXPECT_EQ(dev(), before) << kind;
    expectRevertedFully("u1", p.undo);
    dev().qdiscs.clear();
  }
}

TEST_F(QdiscSeamTest, AUsersRootChaosdCannotRecreateIsRefusedAtPrepare) {
  addUserRoot("htb", tcHandle(1, 0), "");
  auto p = injector_.prepare(request("network.loss", "x", {{"loss", 0.1}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ErrorCode::kUnsupported);
  dev().qdiscs.clear();
  addUserRoot("prio", tcHandle(1, 0), "");
  FakeQdisc child;
  child.handle = tcHandle(10, 0);
  child.parent = tcHandle(1, 1);
  child.kind = "pfifo";
  tc_->addUserQdisc(kNs, kDev, child);
  p = injector_.prepare(request("network.loss", "x", {{"loss", 0.1}}));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("child qdiscs"), std::string::npos);
  EXPECT_TRUE(tc_->calls().empty());
}

// Two faults share the root and the default class; each revert takes its own part, the last
// the root, and the user's root comes back whichever goes first.
TEST_F(QdiscSeamTest, TwoFaultsShareTheTreeAndTheLastRevertRemovesIt) {
  addUserRoot("tbf", tcHandle(5, 0), "rate 200mbit");
  const FakeLink before = dev();
  for (bool firstFirst : {true, false}) {
    auto p1 = prepareOk(request("network.bandwidth", "two-1",
                                {{"rate", 8'000'000}, {"to", {{"cidr", {"10.0.0.2"}}}}}));
    ASSERT_TRUE(injector_.apply("two-1", p1.undo).ok());
    auto p2 = prepareOk(
        request("network.delay", "two-2", {{"delay", 1'000'000}, {"to", {{"cidr", {"fd00::3"}}}}}));
    ASSERT_TRUE(injector_.apply("two-2", p2.undo).ok());
    EXPECT_EQ(p1.undo["prior"], p2.undo["prior"]) << "both carry the user's root";
    EXPECT_EQ(dev().classes.size(), 3u);
    const auto& [goneId, gone] = firstFirst ? std::pair{"two-1", p1} : std::pair{"two-2", p2};
    const auto& [keptId, kept] = firstFirst ? std::pair{"two-2", p2} : std::pair{"two-1", p1};
    ASSERT_TRUE(injector_.revert(goneId, gone.undo).ok());
    EXPECT_TRUE(injector_.audit(gone.undo)->empty());
    EXPECT_FALSE(injector_.audit(kept.undo)->empty()) << "the other fault is still there";
    EXPECT_EQ(leafOf(dev(), goneId), nullptr);
    EXPECT_NE(leafOf(dev(), keptId), nullptr);
    EXPECT_EQ(dev().filters.size(), 1u);
    // The last one from its undo alone, with a context of its own (as the guardian would).
    QdiscInjector guardian(std::make_shared<QdiscContext>(), tc_);
    ASSERT_TRUE(guardian.revert(keptId, kept.undo).ok());
    EXPECT_EQ(dev(), before);
    expectRevertedFully(keptId, kept.undo);
  }
}

TEST_F(QdiscSeamTest, TwoIngressFaultsShareTheIngressQdisc) {
  const FakeLink before = dev();
  auto in = [](int port) {
    return nlohmann::json{{"rate", 8'000'000},
                          {"direction", "ingress"},
                          {"protocol", "udp"},
                          {"to", {{"ports", {{{"first", port}, {"last", port}}}}}}};
  };
  auto p1 = prepareOk(request("network.bandwidth", "in-1", in(5701)));
  ASSERT_TRUE(injector_.apply("in-1", p1.undo).ok());
  auto p2 = prepareOk(request("network.bandwidth", "in-2", in(5702)));
  ASSERT_TRUE(injector_.apply("in-2", p2.undo).ok());
  EXPECT_NE(p1.undo["ifb"], p2.undo["ifb"]);
  EXPECT_EQ(dev().filters.size(), 4u) << "udp to a port: an IPv4 and an IPv6 filter each";
  ASSERT_TRUE(injector_.revert("in-1", p1.undo).ok());
  EXPECT_EQ(dev().filters.size(), 2u);
  EXPECT_NE(dev().at(TC_H_INGRESS), nullptr) << "still shared";
  EXPECT_NE(tc_->link(kNs, p2.undo["ifb"].get<std::string>()), nullptr);
  ASSERT_TRUE(injector_.revert("in-2", p2.undo).ok());
  EXPECT_EQ(dev(), before);
  expectRevertedFully("in-1", p1.undo);
  expectRevertedFully("in-2", p2.undo);
}

// A fault prepared in another process over the tree of this one (the kernel's default root
// under it) joins the tree; over a user's root only the process holding its snapshot may.
TEST_F(QdiscSeamTest, AnotherProcessJoinsOurTreeOnlyOverTheDefaultRoot) {
  auto p1 = prepareOk(request("network.loss", "mine", {{"loss", 0.1}}));
  ASSERT_TRUE(injector_.apply("mine", p1.undo).ok());
  QdiscInjector other(std::make_shared<QdiscContext>(), tc_);
  auto p2 = other.prepare(request("network.loss", "theirs", {{"loss", 0.2}}));
  ASSERT_TRUE(p2.ok()) << p2.error().describe();
  EXPECT_EQ((*p2).undo["prior"]["kind"], "default");
  ASSERT_TRUE(other.apply("theirs", p2->undo).ok());
  ASSERT_TRUE(injector_.revert("mine", p1.undo).ok());
  ASSERT_TRUE(other.revert("theirs", p2->undo).ok());
  EXPECT_TRUE(dev().qdiscs.empty());

  addUserRoot("fq_codel", tcHandle(2, 0), "");
  auto p3 = prepareOk(request("network.loss", "mine2", {{"loss", 0.1}}));
  ASSERT_TRUE(injector_.apply("mine2", p3.undo).ok());
  auto refused = other.prepare(request("network.loss", "theirs2", {{"loss", 0.2}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(injector_.revert("mine2", p3.undo).ok());
  EXPECT_EQ(dev().at(TC_H_ROOT)->kind, "fq_codel");
}

// Between prepare and apply another process put our root (over the kernel's default) there:
// the exclusive add fails with "exists" and the fault joins that tree.
TEST_F(QdiscSeamTest, ARootAddedByAnotherProcessMeanwhileIsJoined) {
  auto p = prepareOk(request("network.delay", "race", {{"delay", 1'000'000}}));
  tc_->beforeCall = [&](const std::string& what) {
    if (what.rfind("addHtbRoot", 0) != 0) return;
    FakeQdisc root;
    root.handle = qdisc::ourRootHandle();
    root.kind = "htb";
    root.htbDefault = qdisc::kDefaultMinor;
    tc_->addUserQdisc(kNs, kDev, root);
  };
  auto a = injector_.apply("race", p.undo);
  tc_->beforeCall = nullptr;
  ASSERT_TRUE(a.ok()) << a.error().describe();
  expectTree(dev(), "race", "netem", qdisc::kDefaultMinor);
  ASSERT_TRUE(injector_.revert("race", p.undo).ok());
  EXPECT_TRUE(dev().qdiscs.empty());
}

TEST_F(QdiscSeamTest, FiltersOfBothFamiliesGetTheirOwnPriorities) {
  auto p = prepareOk(request("network.bandwidth", "fam",
                             {{"rate", 8'000'000}, {"to", {{"cidr", {"10.0.0.2", "fd00::2"}}}}}));
  ASSERT_TRUE(injector_.apply("fam", p.undo).ok());
  const uint32_t slot = qdiscSlot("fam");
  ASSERT_EQ(dev().filters.size(), 2u);
  EXPECT_EQ(dev().filters[0].prio, qdisc::prioFor(slot, 4));
  EXPECT_EQ(dev().filters[1].prio, qdisc::prioFor(slot, 6));
  EXPECT_EQ(dev().filters[1].match.family, 6);
  auto audit = injector_.audit(p.undo);
  EXPECT_EQ(audit->size(), 3u) << "the class and the filters of each family";
  ASSERT_TRUE(injector_.revert("fam", p.undo).ok());
  expectRevertedFully("fam", p.undo);
}

}  // namespace
}  // namespace chaosd
