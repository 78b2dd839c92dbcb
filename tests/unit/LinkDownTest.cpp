// network.down without root: its undo record (the journal's format) and the injector against an
// in-memory kernel that drops what the real one drops when a link goes down (IPv6 addresses and
// every route through it), so prepare's refusals, apply, revert, the crash case (a fresh injector
// with only the record) and audit are tested here; tests/integration/LinkDownTest.cpp proves the
// real kernel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/network/LinkDownInjector.h"
#include "injectors/network/LinkDownRecords.h"

namespace chaosd {
namespace {

using nlohmann::json;

// A record as this release journals it: it must keep parsing, and write back unchanged.
const json kUndo = json::parse(R"json({
  "version": 1,
  "faultId": "run-1-down",
  "netns": "/run/netns/app",
  "iface": "veth-a",
  "ifindex": 3,
  "addresses": [
    {"family": "inet", "local": "10.9.0.1/24", "peer": "", "broadcast": "10.9.0.255", "scope": 0,
     "flags": 128, "label": "veth-a"},
    {"family": "inet6", "local": "fd00:9::1/64", "peer": "", "broadcast": "", "scope": 0,
     "flags": 130, "label": ""}
  ],
  "routes": [
    {"family": "inet", "table": 100, "dst": "10.77.0.0/16", "gateway": "10.9.0.2",
     "priority": 50, "scope": 0, "protocol": 3, "type": 1, "src": "", "tos": 0, "onlink": false,
     "metrics": [{"id": 2, "value": 1400}]},
    {"family": "inet", "table": 254, "dst": "10.9.0.0/24", "gateway": "", "priority": 0,
     "scope": 253, "protocol": 2, "type": 1, "src": "10.9.0.1", "tos": 0, "onlink": false,
     "metrics": []}
  ]
})json");

TEST(LinkDownRecordTest, RoundTripsTheJournalledForm) {
  auto u = LinkDownUndo::fromJson(kUndo);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->iface, "veth-a");
  EXPECT_EQ(u->ifindex, 3);
  ASSERT_EQ(u->addresses.size(), 2u);
  EXPECT_EQ(u->addresses[1].family, AF_INET6);
  EXPECT_EQ(u->addresses[1].flags, 130u);
  ASSERT_EQ(u->routes.size(), 2u);
  EXPECT_EQ(u->routes[0].table, 100u);
  EXPECT_EQ(u->routes[0].priority, 50u);
  EXPECT_EQ(u->routes[0].metrics.size(), 1u);
  EXPECT_FALSE(u->routes[0].kernelMade());
  EXPECT_TRUE(u->routes[1].kernelMade());
  EXPECT_EQ(u->routes[0].describe(), "10.77.0.0/16 via 10.9.0.2 table 100 metric 50");
  EXPECT_EQ(u->toJson(), kUndo);
}

TEST(LinkDownRecordTest, BelongsToItsFaultOnly) {
  auto u = LinkDownUndo::fromJson(kUndo);
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->belongsTo("run-1-down").ok());
  EXPECT_TRUE(u->belongsTo("").ok()) << "audit asks for any fault";
  EXPECT_EQ(u->belongsTo("run-1-other").error().code(), ErrorCode::kInvalid);
}

TEST(LinkDownRecordTest, RefusesRecordsItCouldNotActOnSafely) {
  auto broken = [](const std::string& pointer, json value) {
    json j = kUndo;
    j[json::json_pointer(pointer)] = std::move(value);
    return LinkDownUndo::fromJson(j);
  };
  const std::vector<std::pair<std::string, json>> cases = {
      {"/iface", "../../etc"},
      {"/iface", "a-name-longer-than-15"},
      {"/iface", 7},
      {"/netns", "relative/path"},
      {"/ifindex", 0},
      {"/version", 2},
      {"/addresses/0/local", "10.9.0.1"},
      {"/addresses/0/local", "10.9.0.1/33"},
      {"/addresses/1/local", "fd00::1/129"},
      {"/addresses/0/family", "inet7"},
      {"/routes/0/dst", "not-an-address/8"},
      {"/routes/0/gateway", "fd00::1"},
      {"/routes/0/table", 0},
      {"/routes/0/protocol", 300},
      {"/routes/0/metrics/0/id", 99},
      {"/routes", "none"},
  };
  for (const auto& [pointer, value] : cases) {
    auto u = broken(pointer, value);
    ASSERT_FALSE(u.ok()) << pointer << " = " << value.dump();
    EXPECT_EQ(u.error().code(), ErrorCode::kInvalid) << pointer;
  }
  json missing = kUndo;
  missing.erase("ifindex");
  EXPECT_FALSE(LinkDownUndo::fromJson(missing).ok());
  EXPECT_FALSE(LinkDownUndo::fromJson(json::array()).ok());
}

// ---- the injector against an in-memory kernel ------------------------------------------------

struct FakeLink {
  LinkState state;
  int downs = 0;
  int ups = 0;
};

struct FakeKernelState {
  std::map<std::string, std::map<std::string, FakeLink>> namespaces;  // path -> name -> link
  std::string ours = "";                                              // our namespace's path
  std::vector<std::string> sshPeers;
  std::map<std::string, int> routeOut;  // peer -> ifindex
};

class FakeLinkNetns final : public LinkNetns {
 public:
  FakeLinkNetns(FakeKernelState& k, std::string path) : k_(k), path_(std::move(path)) {}

  Result<LinkState> link(const std::string& name) override {
    auto& links = k_.namespaces[path_];
    auto it = links.find(name);
    if (it == links.end()) return Error(ErrorCode::kNotFound, "interface " + name);
    return it->second.state;
  }
  Result<void> setUp(int ifindex, bool up) override {
    FakeLink* l = byIndex(ifindex);
    if (l == nullptr) return Error(ErrorCode::kNotFound, "no such link");
    if (!up && l->state.up) {
      ++l->downs;
      // What the kernel does: IPv6 addresses and every route through the link go.
      std::erase_if(l->state.addresses, [](const LinkAddress& a) { return a.family == AF_INET6; });
      l->state.routes.clear();
    }
    if (up && !l->state.up) {
      ++l->ups;
      // The connected routes of the addresses left come back by themselves.
      for (const auto& a : l->state.addresses) l->state.routes.push_back(connected(a));
    }
    l->state.up = up;
    return success();
  }
  Result<void> addAddress(int ifindex, const LinkAddress& a) override {
    FakeLink* l = byIndex(ifindex);
    for (const auto& x : l->state.addresses) {
      if (x.sameAddress(a)) return Error(ErrorCode::kConflict, "exists");
    }
    l->state.addresses.push_back(a);
    l->state.routes.push_back(connected(a));
    return success();
  }
  Result<void> addRoute(int ifindex, const LinkRoute& r) override {
    FakeLink* l = byIndex(ifindex);
    for (const auto& x : l->state.routes) {
      if (x.sameRoute(r)) return Error(ErrorCode::kConflict, "exists");
    }
    l->state.routes.push_back(r);
    return success();
  }
  Result<bool> isOurs() override { return path_ == k_.ours; }
  Result<std::vector<std::string>> sshPeers() override { return k_.sshPeers; }
  Result<int> routeOut(const std::string& address) override {
    auto it = k_.routeOut.find(address);
    return it == k_.routeOut.end() ? 0 : it->second;
  }

 private:
  static LinkRoute connected(const LinkAddress& a) {
    LinkRoute r;
    r.family = a.family;
    r.table = RT_TABLE_MAIN;
    r.dst = a.local;  // close enough for the fake: keyed like the real one
    r.protocol = RTPROT_KERNEL;
    r.type = RTN_UNICAST;
    return r;
  }
  FakeLink* byIndex(int ifindex) {
    for (auto& [name, l] : k_.namespaces[path_]) {
      if (l.state.ifindex == ifindex) return &l;
    }
    return nullptr;
  }
  FakeKernelState& k_;
  std::string path_;
};

class FakeLinkKernel final : public LinkKernel {
 public:
  explicit FakeLinkKernel(std::shared_ptr<FakeKernelState> k) : k_(std::move(k)) {}
  Result<std::unique_ptr<LinkNetns>> enter(const std::string& netnsPath) override {
    if (k_->namespaces.count(netnsPath) == 0) return Error(ErrorCode::kNotFound, "no namespace");
    return std::unique_ptr<LinkNetns>(std::make_unique<FakeLinkNetns>(*k_, netnsPath));
  }

 private:
  std::shared_ptr<FakeKernelState> k_;
};

LinkAddress address(int family, const std::string& local) {
  LinkAddress a;
  a.family = family;
  a.local = local;
  return a;
}

LinkRoute route(const std::string& dst, const std::string& gw, uint32_t table, uint32_t metric) {
  LinkRoute r;
  r.family = dst.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  r.table = table;
  r.dst = dst;
  r.gateway = gw;
  r.priority = metric;
  r.protocol = RTPROT_BOOT;
  r.type = RTN_UNICAST;
  return r;
}

class LinkDownSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("SSH_CONNECTION");
    FakeLink veth;
    veth.state.ifindex = 3;
    veth.state.up = true;
    veth.state.addresses = {address(AF_INET, "10.9.0.1/24"), address(AF_INET6, "fd00:9::1/64")};
    veth.state.routes = {route("10.77.0.0/16", "10.9.0.2", 100, 50),
                         route("fd00:77::/64", "fd00:9::2", RT_TABLE_MAIN, 7)};
    FakeLink lo;
    lo.state.ifindex = 1;
    lo.state.up = true;
    lo.state.loopback = true;
    k_->namespaces["/run/netns/app"] = {{"veth-a", veth}, {"lo", lo}};
    k_->namespaces[""] = {{"lo", lo}};
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth-a";
    target_.interface.netns.path = "/run/netns/app";
  }

  FaultRequest request(const std::string& faultId = "run-1-down") {
    FaultRequest r;
    r.runId = "run-1";
    r.faultId = faultId;
    r.faultType = "network.down";
    r.target = &target_;
    r.guardrails = &guardrails_;
    return r;
  }
  FakeLink& veth() { return k_->namespaces["/run/netns/app"]["veth-a"]; }
  std::unique_ptr<LinkDownInjector> injector() {
    return std::make_unique<LinkDownInjector>(std::make_shared<FakeLinkKernel>(k_));
  }

  std::shared_ptr<FakeKernelState> k_ = std::make_shared<FakeKernelState>();
  TargetSpec target_;
  Guardrails guardrails_;
};

TEST_F(LinkDownSeamTest, DownThenRevertRestoresAddressesAndRoutes) {
  auto inj = injector();
  auto prepared = inj->prepare(request());
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(prepared->resources, std::vector<std::string>{"link:/run/netns/app:veth-a"});
  const LinkState before = veth().state;
  auto applied = inj->apply("run-1-down", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_FALSE(veth().state.up);
  EXPECT_EQ(applied->observed["addressesDroppedByKernel"], json::array({"fd00:9::1/64"}));
  EXPECT_EQ(applied->observed["routesDroppedByKernel"].size(), 2u);
  auto left = inj->audit(prepared->undo);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 4u) << "down, one address and two routes missing";

  auto reverted = inj->revert("run-1-down", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_TRUE(veth().state.up);
  EXPECT_EQ((*reverted)["addressesRestored"], json::array({"fd00:9::1/64"}));
  EXPECT_EQ((*reverted)["routesRestored"].size(), 2u);
  EXPECT_TRUE(reverted->contains("downMs"));
  for (const auto& a : before.addresses) {
    EXPECT_TRUE(std::any_of(veth().state.addresses.begin(), veth().state.addresses.end(),
                            [&](const LinkAddress& x) { return x.sameAddress(a); }))
        << a.local;
  }
  for (const auto& r : before.routes) {
    EXPECT_TRUE(std::any_of(veth().state.routes.begin(), veth().state.routes.end(),
                            [&](const LinkRoute& x) { return x.sameRoute(r); }))
        << r.describe();
  }
  EXPECT_TRUE(inj->audit(prepared->undo)->empty());

  // Idempotent: a second revert changes nothing.
  const int ups = veth().ups;
  auto again = inj->revert("run-1-down", prepared->undo);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)["raised"].get<bool>());
  EXPECT_EQ(veth().ups, ups);
}

TEST_F(LinkDownSeamTest, AFreshInjectorRevertsFromTheRecordAlone) {
  json undo;
  {
    auto owner = injector();
    auto prepared = owner->prepare(request());
    ASSERT_TRUE(prepared.ok());
    undo = prepared->undo;
    ASSERT_TRUE(owner->apply("run-1-down", undo).ok());
  }  // the owner is gone (kill -9)
  auto guardian = injector();
  auto reverted = guardian->revert("run-1-down", undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_TRUE(veth().state.up);
  EXPECT_TRUE(guardian->audit(undo)->empty());
  EXPECT_FALSE(reverted->contains("downMs"));
}

TEST_F(LinkDownSeamTest, RefusesALinkDownAlready) {
  veth().state.up = false;
  auto prepared = injector()->prepare(request());
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(prepared.error().describe().find("down already"), std::string::npos);
}

TEST_F(LinkDownSeamTest, ALinkThatWentDownBeforeApplyIsLeftDown) {
  auto inj = injector();
  auto prepared = inj->prepare(request());
  ASSERT_TRUE(prepared.ok());
  veth().state.up = false;  // someone else took it down in between
  EXPECT_FALSE(inj->apply("run-1-down", prepared->undo).ok());
  ASSERT_TRUE(inj->revert("run-1-down", prepared->undo).ok());
  EXPECT_FALSE(veth().state.up) << "not ours to bring up";
  EXPECT_TRUE(inj->audit(prepared->undo)->empty());
}

TEST_F(LinkDownSeamTest, RefusesTheDefaultRouteUnlessAllowed) {
  veth().state.routes.push_back(route("0.0.0.0/0", "10.9.0.254", RT_TABLE_MAIN, 0));
  auto refused = injector()->prepare(request());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(refused.error().describe().find("allowDefaultRouteDown"), std::string::npos)
      << refused.error().describe();
  guardrails_.allowDefaultRouteDown = true;
  EXPECT_TRUE(injector()->prepare(request()).ok());
}

TEST_F(LinkDownSeamTest, RefusesTheSshSessionsLinkUnlessAllowed) {
  k_->sshPeers = {"10.9.0.2", "192.0.2.7"};
  k_->routeOut = {{"10.9.0.2", 3}, {"192.0.2.7", 0}};
  auto refused = injector()->prepare(request());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().describe().find("SSH session of 10.9.0.2"), std::string::npos)
      << refused.error().describe();
  EXPECT_NE(refused.error().describe().find("allowSsh"), std::string::npos);
  k_->routeOut["10.9.0.2"] = 9;  // another link
  EXPECT_TRUE(injector()->prepare(request()).ok());
  k_->routeOut["10.9.0.2"] = 3;
  guardrails_.allowSsh = true;
  EXPECT_TRUE(injector()->prepare(request()).ok());
}

TEST_F(LinkDownSeamTest, SshConnectionCountsOnlyInOurOwnNamespace) {
  ::setenv("SSH_CONNECTION", "10.9.0.2 51000 10.9.0.1 22", 1);
  k_->routeOut = {{"10.9.0.2", 3}};
  EXPECT_TRUE(injector()->prepare(request()).ok()) << "the session is in another namespace";
  k_->ours = "/run/netns/app";
  auto refused = injector()->prepare(request());
  ::unsetenv("SSH_CONNECTION");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().describe().find("SSH"), std::string::npos);
}

TEST_F(LinkDownSeamTest, LoopbackOnlyInsideAnotherNamespace) {
  target_.interface.name = "lo";
  EXPECT_TRUE(injector()->prepare(request()).ok()) << "lo of a test namespace";
  target_.interface.netns = {};
  auto refused = injector()->prepare(request());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().describe().find("loopback"), std::string::npos);
}

TEST_F(LinkDownSeamTest, ALinkRecreatedUnderTheSameNameIsLeftAlone) {
  auto inj = injector();
  auto prepared = inj->prepare(request());
  ASSERT_TRUE(prepared.ok());
  ASSERT_TRUE(inj->apply("run-1-down", prepared->undo).ok());
  veth().state.ifindex = 42;
  auto reverted = inj->revert("run-1-down", prepared->undo);
  ASSERT_TRUE(reverted.ok());
  EXPECT_TRUE(reverted->contains("note"));
  EXPECT_FALSE(veth().state.up);
  k_->namespaces.erase("/run/netns/app");
  auto gone = inj->revert("run-1-down", prepared->undo);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ((*gone)["note"], "the network namespace is gone");
  EXPECT_TRUE(inj->audit(prepared->undo)->empty());
}

TEST_F(LinkDownSeamTest, ARecordOfAnotherFaultIsRefused) {
  auto inj = injector();
  auto prepared = inj->prepare(request());
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(inj->apply("run-1-other", prepared->undo).error().code(), ErrorCode::kInvalid);
  EXPECT_TRUE(veth().state.up);
}

}  // namespace
}  // namespace chaosd
