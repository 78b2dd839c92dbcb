// The daemon's policy (chaosd/app/daemon/Policy.h): the file's format and errors, and the
// matcher that decides who may inject what where. docs/security.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "chaosd/app/daemon/Policy.h"
#include "experiments/parser/ExperimentParser.h"
#include "tests/support/BuiltinFaults.h"

namespace chaosd::daemon {
namespace {

using ::testing::HasSubstr;

// A caller that is not root: uid 4242, primary group 4242, also in group 5000.
Credentials alice() { return Credentials{4242, 4242, {4242, 5000}, "alice"}; }

constexpr const char* kPolicy = R"yaml(apiVersion: chaosd/v1
grants:
  - name: payments-oncall
    users: ["4242"]
    faults: [process.kill]
    targets:
      cgroups: [/system.slice/a.service]
    maxDuration: 5m
    maxTargets: 2
  - name: net-lab
    groups: ["5000"]
    faults: ["network.*"]
    targets:
      interfaces: [lab/*]
)yaml";

Policy policy() {
  auto p = parsePolicy(kPolicy, "/etc/chaosd/policy.yaml");
  EXPECT_TRUE(p) << p.error().describe();
  return *p;
}

Experiment experiment(const std::string& targets, const std::string& method) {
  const std::string text =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: t}\n"
      "steadyState:\n  probes: [{name: up, command: {argv: [/bin/true]}}]\n"
      "targets:\n" +
      targets + "method:\n" + method;
  ParseOptions options;
  options.registry = &testing::builtinFaults();
  ParseResult parsed = parseExperimentText(text, "exp.yaml", options);
  std::string diags;
  for (const auto& d : parsed.diagnostics) diags += d.str() + "\n";
  EXPECT_TRUE(parsed.ok()) << diags;
  return parsed.ok() ? *parsed.experiment : Experiment{};
}

const std::string kKillInService =
    "  svc: {process: {cgroup: /system.slice/a.service/worker, name: sleep}}\n";
const std::string kKillStep =
    "  - {name: kill, fault: process.kill, target: svc, args: {signal: KILL}}\n";

TEST(PolicyTest, GrantedKillInsideItsCgroupIsAllowedWithTheGrantsLimits) {
  auto d = checkExperiment(policy(), alice(), experiment(kKillInService, kKillStep));
  EXPECT_TRUE(d.allowed) << d.reason;
  ASSERT_TRUE(d.maxTargets);
  EXPECT_EQ(*d.maxTargets, 2u);
  EXPECT_THAT(d.grantsUsed.at(0), HasSubstr("grant 'payments-oncall' (/etc/chaosd/policy.yaml:3)"));
}

TEST(PolicyTest, KillOutsideTheGrantedCgroupIsRefusedNamingTheRuleAndLine) {
  const std::string elsewhere =
      "  svc: {process: {cgroup: /system.slice/b.service, name: sleep}}\n";
  auto d = checkExperiment(policy(), alice(), experiment(elsewhere, kKillStep));
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("step 'kill' (exp.yaml:"));
  EXPECT_THAT(d.reason, HasSubstr("grant 'payments-oncall' (/etc/chaosd/policy.yaml:3)"));
  EXPECT_THAT(d.reason, HasSubstr("not confined to a granted cgroup [/system.slice/a.service]"));
  // A sibling whose name starts the same is outside too.
  const std::string sibling = "  svc: {process: {cgroup: /system.slice/a.service2, name: x}}\n";
  EXPECT_FALSE(checkExperiment(policy(), alice(), experiment(sibling, kKillStep)).allowed);
  // A selector with no cgroup (a name alone matches anywhere) is outside.
  const std::string anywhere = "  svc: {process: {name: sleep}}\n";
  EXPECT_FALSE(checkExperiment(policy(), alice(), experiment(anywhere, kKillStep)).allowed);
}

TEST(PolicyTest, AFaultTypeNoGrantNamesIsRefused) {
  const std::string disk = "  data: {path: /var/lib/app}\n";
  const std::string fill =
      "  - {name: fill, fault: disk.fill, target: data, args: {size: 1MiB}, "
      "duration: 10s}\n";
  auto d = checkExperiment(policy(), alice(), experiment(disk, fill));
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("allows fault types [process.kill] only"));
}

TEST(PolicyTest, HostInterfacesNeedAGrantNamingThem) {
  const std::string host = "  nic: {interface: {name: eth0}}\n";
  const std::string lab = "  nic: {interface: {name: veth0, netns: lab}}\n";
  const std::string down = "  - {name: down, fault: network.down, target: nic, duration: 5s}\n";
  auto refused = checkExperiment(policy(), alice(), experiment(host, down));
  EXPECT_FALSE(refused.allowed);
  EXPECT_THAT(refused.reason, HasSubstr("(host/eth0) is not among the granted interfaces [lab/*]"));
  // Through the group 5000 grant: any interface of netns lab.
  auto ok = checkExperiment(policy(), alice(), experiment(lab, down));
  EXPECT_TRUE(ok.allowed) << ok.reason;
}

// Containers are granted by name (globs) and Kubernetes pods by NAMESPACE/POD globs; a
// container selected only by id or labels is not confined.
TEST(PolicyTest, ContainersAreGrantedByNameAndKubernetesPodsByNamespace) {
  auto p = parsePolicy(R"yaml(grants:
  - name: shop-team
    users: ["4242"]
    faults: [process.kill]
    targets:
      containers: ["web-*"]
      kubernetes: ["shop/*", "staging/web-0"]
)yaml",
                       "/etc/chaosd/policy.yaml");
  ASSERT_TRUE(p) << p.error().describe();
  auto check = [&](const std::string& container) {
    return checkExperiment(*p, alice(),
                           experiment("  c: {container: " + container + "}\n",
                                      "  - {name: kill, fault: process.kill, target: c}\n"));
  };
  EXPECT_TRUE(check("{name: web-1}").allowed);
  auto other = check("{name: db}");
  EXPECT_FALSE(other.allowed);
  EXPECT_THAT(other.reason, HasSubstr("(name db) is not among the granted containers [web-*]"));
  auto byLabel = check("{label: {app: web}}");
  EXPECT_FALSE(byLabel.allowed);
  EXPECT_THAT(byLabel.reason, HasSubstr("is not selected by name or kubernetes pod"));
  EXPECT_TRUE(check("{kubernetes: {namespace: shop, pod: \"web-*\"}}").allowed);
  EXPECT_TRUE(check("{kubernetes: {namespace: staging, pod: web-0}}").allowed);
  auto wider = check("{kubernetes: {namespace: staging, pod: \"web-*\"}}");
  EXPECT_FALSE(wider.allowed) << "a glob wider than the grant's pod";
  EXPECT_THAT(wider.reason,
              HasSubstr("(kubernetes pod staging/web-*) is not among the granted pods"));
  EXPECT_FALSE(check("{kubernetes: {pod: web-0}}").allowed) << "namespace default";
  // A lookup of the caller's own could name any process as the granted container.
  auto socket = check("{name: web-1, socket: /tmp/mine.sock}");
  EXPECT_FALSE(socket.allowed);
  EXPECT_THAT(socket.reason, HasSubstr("names its API socket (/tmp/mine.sock)"));
  auto logs = check("{kubernetes: {namespace: shop, pod: web-0, logDir: /tmp/links}}");
  EXPECT_FALSE(logs.allowed);
  EXPECT_THAT(logs.reason, HasSubstr("names its kubelet log folder (/tmp/links)"));
  auto bad = parsePolicy(
      "grants:\n  - users: [\"1\"]\n    faults: [\"*\"]\n"
      "    targets: {kubernetes: [shop]}\n",
      "p.yaml");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("'shop' is not NAMESPACE/POD"));
}

TEST(PolicyTest, TheGrantsMaxDurationBoundsEachStep) {
  const std::string pause = "  - {name: p, fault: process.pause, target: svc, duration: 10m}\n";
  Policy p = policy();
  p.grants[0].faults.push_back("process.pause");
  auto d = checkExperiment(p, alice(), experiment(kKillInService, pause));
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("allows at most 5m per fault, the step holds it 10m"));
}

TEST(PolicyTest, NonRootWithoutAGrantIsReadOnlyAndRootIsNotChecked) {
  Credentials bob{4343, 4343, {4343}, "bob"};
  auto d = checkExperiment(policy(), bob, experiment(kKillInService, kKillStep));
  EXPECT_FALSE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("uid=4343(bob) gid=4343 groups=4343 has no grant"));
  EXPECT_FALSE(hasGrant(policy(), bob));
  // No policy file at all: the same default.
  Policy none;
  none.path = "/etc/chaosd/policy.yaml";
  EXPECT_THAT(checkExperiment(none, alice(), experiment(kKillInService, kKillStep)).reason,
              HasSubstr("(there is no such file)"));
  EXPECT_TRUE(checkExperiment(none, Credentials{}, experiment(kKillInService, kKillStep)).allowed);
}

TEST(PolicyTest, ExecTargetsNeedNoTargetGrantButHostWideFaultsDo) {
  const std::string exec = "  app: {exec: {argv: [/bin/sleep, '60']}}\n";
  auto d = checkExperiment(policy(), alice(),
                           experiment(exec,
                                      "  - {name: k, fault: process.kill, "
                                      "target: app, args: {signal: KILL}}\n"));
  EXPECT_TRUE(d.allowed) << d.reason;
  Policy p = policy();
  p.grants[0].faults.push_back("cpu.stress");
  const std::string stress =
      "  - {name: s, fault: cpu.stress, args: {workers: 1, load: 10%}, duration: 1s}\n";
  auto host = checkExperiment(p, alice(), experiment(exec, stress));
  EXPECT_FALSE(host.allowed);
  EXPECT_THAT(host.reason, HasSubstr("no target (host-wide)"));
  p.grants[0].host = true;
  EXPECT_TRUE(checkExperiment(p, alice(), experiment(exec, stress)).allowed);
}

TEST(PolicyTest, PathTargetsAreComparedCanonicallyByWholeComponents) {
  Policy p = policy();
  p.grants[0].faults = {"disk.fill"};
  p.grants[0].paths = {"/srv/app"};
  const std::string fill =
      "  - {name: f, fault: disk.fill, target: d, args: {size: 1MiB}, "
      "duration: 10s}\n";
  EXPECT_TRUE(
      checkExperiment(p, alice(), experiment("  d: {path: /srv/app/data}\n", fill)).allowed);
  EXPECT_FALSE(
      checkExperiment(p, alice(), experiment("  d: {path: /srv/app/../etc}\n", fill)).allowed);
  EXPECT_FALSE(
      checkExperiment(p, alice(), experiment("  d: {path: /srv/application}\n", fill)).allowed);
}

TEST(PolicyTest, BadPolicyFilesNameTheLineAndField) {
  auto unknown = parsePolicy("grants:\n  - users: [\"1\"]\n    faultz: [x]\n", "p.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(), HasSubstr("p.yaml:3: grants[0]: unknown field 'faultz'"));
  auto nobody = parsePolicy("grants:\n  - faults: [process.kill]\n", "p.yaml");
  ASSERT_FALSE(nobody);
  EXPECT_THAT(nobody.error().message(),
              HasSubstr("p.yaml:2: grants[0]: names no users and no groups"));
  auto dur = parsePolicy("grants:\n  - users: [\"1\"]\n    maxDuration: soon\n", "p.yaml");
  ASSERT_FALSE(dur);
  EXPECT_THAT(dur.error().message(), HasSubstr("p.yaml:3: grants[0].maxDuration"));
  auto iface =
      parsePolicy("grants:\n  - users: [\"1\"]\n    targets: {interfaces: [eth0]}\n", "p.yaml");
  ASSERT_FALSE(iface);
  EXPECT_THAT(iface.error().message(), HasSubstr("is not NETNS/IFNAME"));
  auto empty = parsePolicy("", "p.yaml");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->grants.empty());
}

TEST(PolicyTest, AMissingFileIsAnEmptyPolicyAndAReloadThatFailsKeepsTheOld) {
  auto missing = loadPolicy("/nonexistent/chaosd-policy.yaml");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->loaded);
  const std::string path = ::testing::TempDir() + "/chaosd-policy-test.yaml";
  { std::ofstream(path) << kPolicy; }
  PolicyStore store(path);
  ASSERT_TRUE(store.reload());
  EXPECT_EQ(store.current()->grants.size(), 2u);
  { std::ofstream(path) << "grants: [{faults: [x]}]\n"; }
  EXPECT_FALSE(store.reload());
  EXPECT_EQ(store.current()->grants.size(), 2u);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace chaosd::daemon
