#pragma once

// What the QdiscSeam*Test files share: a QdiscInjector over a FakeTc with one namespace and one
// interface in it, and checks of the tree QdiscTree.h describes.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "experiments/model/Experiment.h"
#include "injectors/network/QdiscInjector.h"
#include "injectors/network/QdiscRoot.h"
#include "injectors/network/QdiscTree.h"
#include "tests/support/FakeTc.h"

namespace chaosd::qdiscseam {

using testing::FakeFilter;
using testing::FakeLink;
using testing::FakeQdisc;
using testing::FakeTc;

inline const std::string kNs = "/run/netns/app";
inline const std::string kDev = "veth-db";

class QdiscSeamTest : public ::testing::Test {
 protected:
  QdiscSeamTest() {
    tc_->addNetns(kNs);
    tc_->addLink(kNs, kDev);
    target_.name = "link";
    target_.kind = TargetKind::kInterface;
    target_.interface.name = kDev;
    target_.interface.netns.name = "app";
  }

  FaultRequest request(const std::string& type, const std::string& id, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.stepName = "step";
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }

  FakeLink& dev() { return *tc_->link(kNs, kDev); }

  PreparedFault prepareOk(const FaultRequest& r) {
    auto p = injector_.prepare(r);
    EXPECT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(tc_->entered(), 0) << "prepare left the namespace";
    return p.valueOr(PreparedFault{});
  }

  void addUserRoot(const std::string& kind, uint32_t handle, const std::string& options) {
    FakeQdisc q;
    q.handle = handle;
    q.kind = kind;
    q.options = options;
    tc_->addUserQdisc(kNs, kDev, q);
  }

  // After a revert: the audit finds nothing, and a second revert succeeds and changes nothing.
  void expectRevertedFully(const std::string& id, const nlohmann::json& undo) {
    auto audit = injector_.audit(undo);
    ASSERT_TRUE(audit.ok()) << audit.error().describe();
    EXPECT_TRUE(audit->empty()) << (*audit)[0];
    const auto links = tc_->netns(kNs)->links;
    auto again = injector_.revert(id, undo);
    EXPECT_TRUE(again.ok()) << again.error().describe();
    EXPECT_EQ(tc_->netns(kNs)->links, links) << "a second revert changes nothing";
    EXPECT_EQ(tc_->entered(), 0);
  }

  static uint32_t leafHandle(const std::string& id) {
    return tcHandle(qdisc::leafMajor(qdiscSlot(id)), 0);
  }
  static uint32_t classOf(const std::string& id) {
    return tcHandle(kQdiscRootMajor, qdisc::classMinor(qdiscSlot(id)));
  }
  static FakeQdisc* leafOf(FakeLink& l, const std::string& id) { return l.qdisc(leafHandle(id)); }
  static void setLeafCounters(FakeLink& l, const std::string& id, TcCounters c) {
    ASSERT_NE(leafOf(l, id), nullptr);
    leafOf(l, id)->counters = c;
  }

  // The tree of QdiscTree.h for fault `id` on l: our HTB root with its default class, the
  // fault's class with its leaf of `kind`, and its steering filters.
  static void expectTree(FakeLink& l, const std::string& id, const std::string& kind,
                         uint32_t defaultMinor) {
    const FakeQdisc* root = l.at(TC_H_ROOT);
    ASSERT_NE(root, nullptr);
    EXPECT_EQ(root->handle, qdisc::ourRootHandle());
    EXPECT_EQ(root->kind, "htb");
    EXPECT_EQ(root->htbDefault, defaultMinor);
    EXPECT_TRUE(l.hasClass(tcHandle(kQdiscRootMajor, defaultMinor)));
    EXPECT_TRUE(l.hasClass(classOf(id)));
    const FakeQdisc* leaf = leafOf(l, id);
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(leaf->parent, classOf(id));
    EXPECT_EQ(leaf->kind, kind);
    int steering = 0;
    for (const auto& f : l.filters) {
      if (f.classid != classOf(id)) continue;
      ++steering;
      EXPECT_EQ(f.parent, qdisc::ourRootHandle());
      EXPECT_EQ(f.prio, qdisc::prioFor(qdiscSlot(id), f.match.family));
    }
    EXPECT_GT(steering, 0);
  }

  std::shared_ptr<FakeTc> tc_ = std::make_shared<FakeTc>();
  std::shared_ptr<QdiscContext> context_ = std::make_shared<QdiscContext>();
  QdiscInjector injector_{context_, tc_};
  TargetSpec target_;
};

}  // namespace chaosd::qdiscseam
