// Container targets without root or a runtime: the cgroup layouts of every runtime and driver,
// the finder against a fake API and a fixture /proc tree, the views each fault family gets, the
// deterministic choice among matches, and the parser's reading of `container:`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/container/CgroupLayout.h"
#include "injectors/container/ContainerFinder.h"
#include "injectors/container/ContainerView.h"
#include "tests/support/BuiltinFaults.h"

namespace chaosd {
namespace {

using ::testing::HasSubstr;

const std::string kId = "c3bc2dc512e9cc7e480332cdc434c93418881cd8afddf0383b742247695efbc1";
const std::string kId2 = "05998cfb518e03382cf2796c821adae2eccce9f7f1d5066afcd9e1153de64a33";

// ---- cgroup layouts ---------------------------------------------------------------------

struct LayoutCase {
  std::string path;
  ContainerRuntime runtime;
  std::string driver;
};

TEST(CgroupLayoutTest, EveryRuntimeAndDriver) {
  const std::vector<LayoutCase> cases = {
      {"/libpod_parent/libpod-" + kId, ContainerRuntime::kPodman, "cgroupfs"},
      {"/machine.slice/libpod-" + kId + ".scope", ContainerRuntime::kPodman, "systemd"},
      {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope",
       ContainerRuntime::kPodman, "systemd"},
      {"/docker/" + kId, ContainerRuntime::kDocker, "cgroupfs"},
      {"/system.slice/docker-" + kId + ".scope", ContainerRuntime::kDocker, "systemd"},
      {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b.slice/"
       "cri-containerd-" +
           kId + ".scope",
       ContainerRuntime::kContainerd, "systemd"},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/crio-" + kId +
           ".scope",
       ContainerRuntime::kCrio, "systemd"},
      {"/kubepods/besteffort/pod1a2b-3c4d/" + kId, ContainerRuntime::kAuto, "cgroupfs"},
  };
  for (const auto& c : cases) {
    auto found = containerOfCgroup(c.path);
    ASSERT_TRUE(found.has_value()) << c.path;
    EXPECT_EQ(found->id, kId) << c.path;
    EXPECT_EQ(found->runtime, c.runtime) << c.path;
    EXPECT_EQ(found->driver, c.driver) << c.path;
  }
}

TEST(CgroupLayoutTest, MonitorsSubgroupsAndOthers) {
  // The runtimes' monitors are not the container.
  EXPECT_FALSE(containerOfCgroup("/libpod_parent/conmon").has_value());
  EXPECT_FALSE(containerOfCgroup("/machine.slice/libpod-conmon-" + kId + ".scope").has_value());
  EXPECT_FALSE(containerOfCgroup("/system.slice/crio-conmon-" + kId + ".scope").has_value());
  // A container's own sub-cgroup (systemd inside it) stays the container's.
  auto sub = containerOfCgroup("/docker/" + kId + "/init.scope");
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ(sub->id, kId);
  // A nested container: the innermost one.
  auto nested = containerOfCgroup("/docker/" + kId + "/docker/" + kId2);
  ASSERT_TRUE(nested.has_value());
  EXPECT_EQ(nested->id, kId2);
  // Not containers: services, short ids, a bare hex name outside docker/ and kubepods/.
  EXPECT_FALSE(containerOfCgroup("/system.slice/ssh.service").has_value());
  EXPECT_FALSE(containerOfCgroup("/docker/c3bc2dc512e9").has_value());
  EXPECT_FALSE(containerOfCgroup("/" + kId).has_value());
  EXPECT_FALSE(containerOfCgroup("/").has_value());
}

TEST(CgroupLayoutTest, HybridFileFindsTheContainerOnAV1Line) {
  // v1 lines name the container while the v2 line is the caller's group (hybrid, v1 runtime).
  const std::string file = "9:name=systemd:/libpod_parent/libpod-" + kId +
                           "\n8:pids:/libpod_parent/libpod-" + kId + "\n0::/user.slice\n";
  auto found = containerOfCgroupFile(file);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, kId);
  EXPECT_FALSE(containerOfCgroupFile("0::/system.slice/cron.service\n").has_value());
}

// ---- the finder ---------------------------------------------------------------------------

class FakeApi final : public ContainerApi {
 public:
  std::map<std::string, ApiResponse> routes;  // "socket path" -> response
  std::vector<std::string> asked;
  Result<ApiResponse> get(const std::string& socket, const std::string& path) override {
    asked.push_back(socket + " " + path);
    auto it = routes.find(socket + " " + path);
    if (it != routes.end()) return it->second;
    if (routes.find(socket) == routes.end() && !socketsUp.contains(socket)) {
      return Error(ErrorCode::kNotFound, "no API socket at " + socket);
    }
    return ApiResponse{404, "not found"};
  }
  std::set<std::string> socketsUp;
};

// A /proc tree with stat (pid, ppid, start time) and cgroup files.
class ProcFixture {
 public:
  ProcFixture() {
    char tmpl[] = "/tmp/chaosd-ctr-proc-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~ProcFixture() { std::filesystem::remove_all(root_); }
  void add(int pid, int ppid, const std::string& cgroupFile, uint64_t start = 0) {
    const std::string dir = root_ + "/" + std::to_string(pid);
    std::filesystem::create_directory(dir);
    std::ofstream(dir + "/stat") << pid << " (sh) S " << ppid << " " << pid << " " << pid
                                 << " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 "
                                 << (start ? start : 100000 + pid)
                                 << " 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0\n";
    std::ofstream(dir + "/cgroup") << cgroupFile;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

const char* kLibpodList = R"([
  {"Id": "c3bc2dc512e9cc7e480332cdc434c93418881cd8afddf0383b742247695efbc1", "Names": ["web"],
   "Labels": {"app": "web", "tier": "front"}, "Pid": 300, "PodName": "shop", "State": "running"},
  {"Id": "05998cfb518e03382cf2796c821adae2eccce9f7f1d5066afcd9e1153de64a33", "Names": ["db"],
   "Labels": {"app": "db"}, "Pid": 200, "PodName": "", "State": "running"},
  {"Id": "aaaa98cfb518e03382cf2796c821adae2eccce9f7f1d5066afcd9e1153de64a3", "Names": ["old"],
   "Labels": {"app": "web"}, "Pid": 0, "PodName": "", "State": "exited"}
])";

TEST(ContainerFinderTest, PodmanApiByNameLabelPodAndIdPrefix) {
  ProcFixture proc;
  proc.add(300, 290, "0::/libpod_parent/libpod-" + kId + "\n", 4242);
  proc.add(200, 190, "0::/libpod_parent/libpod-" + kId2 + "\n");
  FakeApi api;
  api.routes["/s.sock /v4.0.0/libpod/containers/json"] = {200, kLibpodList};
  ContainerSources sources{&api, proc.root()};
  ContainerSpec spec;
  spec.socket = "/s.sock";
  spec.name = "web";
  auto byName = findContainers(spec, sources);
  ASSERT_TRUE(byName.ok()) << byName.error().describe();
  ASSERT_EQ(byName->size(), 1u);
  const ContainerMatch& web = byName->front();
  EXPECT_EQ(web.id, kId);
  EXPECT_EQ(web.pid, 300);
  EXPECT_EQ(web.startTime, 4242u);
  EXPECT_EQ(web.pod, "shop");
  EXPECT_EQ(web.runtime, ContainerRuntime::kPodman);
  EXPECT_EQ(web.cgroup, "/libpod_parent/libpod-" + kId);
  EXPECT_EQ(web.foundBy, "podman API on /s.sock");

  spec.name.clear();
  spec.labels = {{"app", "web"}};  // the exited one also has it: not running, not matched
  auto byLabel = findContainers(spec, sources);
  ASSERT_TRUE(byLabel.ok());
  ASSERT_EQ(byLabel->size(), 1u);
  EXPECT_EQ(byLabel->front().name, "web");

  spec.labels.clear();
  spec.pod = "shop";
  EXPECT_EQ(findContainers(spec, sources)->size(), 1u);

  spec.pod.clear();
  spec.id = kId2.substr(0, 6);
  auto byId = findContainers(spec, sources);
  ASSERT_EQ(byId->size(), 1u);
  EXPECT_EQ(byId->front().name, "db");

  spec.id.clear();
  spec.labels = {{"app", "nothing"}};
  EXPECT_TRUE(findContainers(spec, sources)->empty());
}

TEST(ContainerFinderTest, DockerApiListsThenInspectsForThePid) {
  ProcFixture proc;
  proc.add(300, 290, "0::/system.slice/docker-" + kId + ".scope\n");
  FakeApi api;
  // A Docker daemon: no libpod routes (404), the compat list and an inspect per candidate.
  api.socketsUp.insert("/d.sock");
  api.routes["/d.sock /containers/json"] = {
      200, R"([{"Id": ")" + kId + R"(", "Names": ["/web"], "Labels": {"app": "web"}}])"};
  api.routes["/d.sock /containers/" + kId + "/json"] = {
      200, R"({"State": {"Running": true, "Pid": 300}})"};
  ContainerSpec spec;
  spec.socket = "/d.sock";
  spec.name = "web";
  auto found = findContainers(spec, ContainerSources{&api, proc.root()});
  ASSERT_TRUE(found.ok()) << found.error().describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().pid, 300);
  EXPECT_EQ(found->front().runtime, ContainerRuntime::kDocker);
  EXPECT_EQ(found->front().cgroup, "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(found->front().foundBy, "docker API on /d.sock");
}

TEST(ContainerFinderTest, WithoutASocketIdsComeFromCgroupsAndNamesAreRefused) {
  ProcFixture proc;
  // The container: init 300 (parent: conmon 290, outside), a child 310; conmon itself.
  proc.add(290, 1, "0::/libpod_parent/conmon\n");
  proc.add(300, 290, "0::/libpod_parent/libpod-" + kId + "\n");
  proc.add(310, 300, "0::/libpod_parent/libpod-" + kId + "\n");
  proc.add(400, 1, "0::/system.slice/cron.service\n");
  FakeApi api;  // no socket answers
  ContainerSpec spec;
  spec.id = kId.substr(0, 8);
  auto found = findContainers(spec, ContainerSources{&api, proc.root()});
  ASSERT_TRUE(found.ok()) << found.error().describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().pid, 300) << "the init: its parent is outside the container";
  EXPECT_EQ(found->front().id, kId);
  EXPECT_EQ(found->front().foundBy, "cgroup libpod-" + kId + " (cgroupfs driver)");
  EXPECT_EQ(api.asked.size(), 3u) << "podman's and docker's usual sockets were tried first";

  spec.runtime = ContainerRuntime::kDocker;  // the cgroups say podman
  EXPECT_TRUE(findContainers(spec, ContainerSources{&api, proc.root()})->empty());

  spec = {};
  spec.name = "web";
  auto byName = findContainers(spec, ContainerSources{&api, proc.root()});
  ASSERT_FALSE(byName.ok());
  EXPECT_EQ(byName.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(byName.error().message(), HasSubstr("no API socket answered"));
  EXPECT_THAT(byName.error().message(), HasSubstr("/run/podman/podman.sock"));
}

TEST(ContainerFinderTest, FoundAgainAfterARestartOrReportedGone) {
  ProcFixture proc;
  proc.add(300, 290, "0::/libpod_parent/libpod-" + kId + "\n");
  FakeApi api;
  api.routes["/s.sock /v4.0.0/libpod/containers/json"] = {200, kLibpodList};
  ContainerSpec spec;
  spec.socket = "/s.sock";
  spec.name = "web";
  ContainerSources sources{&api, proc.root()};
  auto first = findContainers(spec, sources);
  ASSERT_EQ(first->size(), 1u);
  // Restarted: same id, a new init.
  std::string restarted = kLibpodList;
  restarted.replace(restarted.find("\"Pid\": 300"), 10, "\"Pid\": 333");
  proc.add(333, 290, "0::/libpod_parent/libpod-" + kId + "\n");
  api.routes["/s.sock /v4.0.0/libpod/containers/json"] = {200, restarted};
  auto again = findContainerAgain(spec, first->front(), sources);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->pid, 333);
  // Mid-restart the API still names the init that exited (podman's state lags by milliseconds;
  // an ASan run once saw a "restart" to the same pid): not running, so not found.
  std::filesystem::remove_all(proc.root() + "/333");
  auto stale = findContainerAgain(spec, first->front(), sources);
  ASSERT_FALSE(stale.ok()) << "pid " << stale->pid;
  EXPECT_EQ(stale.error().code(), ErrorCode::kNotFound);
  // Gone.
  api.routes["/s.sock /v4.0.0/libpod/containers/json"] = {200, "[]"};
  auto gone = findContainerAgain(spec, first->front(), sources);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(gone.error().message(), HasSubstr("no longer runs"));
}

// ---- views and choice -------------------------------------------------------------------

ContainerMatch webMatch() {
  ContainerMatch m;
  m.id = kId;
  m.name = "web";
  m.pid = 300;
  m.cgroup = "/libpod_parent/libpod-" + kId;
  return m;
}

TEST(ContainerViewTest, EachFamilySeesItsKind) {
  TargetSpec t;
  t.name = "web";
  t.kind = TargetKind::kContainer;
  t.container.interface = "eth1";
  t.container.path = "/var/lib/app";
  EXPECT_EQ(containerViewKind({TargetKind::kInterface, TargetKind::kContainer}),
            TargetKind::kInterface);
  EXPECT_EQ(containerViewKind({TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer}),
            TargetKind::kProcess);
  EXPECT_EQ(containerViewKind({TargetKind::kPath, TargetKind::kContainer}), TargetKind::kPath);
  EXPECT_FALSE(containerViewKind({TargetKind::kExec}).has_value());

  auto iface = containerView(t, webMatch(), TargetKind::kInterface);
  ASSERT_TRUE(iface.ok());
  EXPECT_EQ(iface->kind, TargetKind::kInterface);
  EXPECT_EQ(iface->interface.name, "eth1");
  EXPECT_EQ(iface->interface.netns.nsPath(), "/proc/300/ns/net");
  EXPECT_FALSE(iface->interface.netns.isHost());

  auto path = containerView(t, webMatch(), TargetKind::kPath);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->path, "/proc/300/root/var/lib/app");

  auto procs = containerView(t, webMatch(), TargetKind::kProcess);
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(procs->process.cgroup, "/libpod_parent/libpod-" + kId);
  EXPECT_EQ(procs->process.exceptPids, std::vector<int>{300}) << "init protected by default";

  // Resource faults join the cgroup through every process: the init is not spared.
  EXPECT_TRUE(
      containerView(t, webMatch(), TargetKind::kProcess, false)->process.exceptPids.empty());
  t.container.init = ContainerInit::kInclude;
  EXPECT_TRUE(containerView(t, webMatch(), TargetKind::kProcess)->process.exceptPids.empty());
  t.container.init = ContainerInit::kOnly;
  EXPECT_EQ(containerView(t, webMatch(), TargetKind::kProcess)->process.pid, 300);

  // No cgroup of its own: only its init can be told apart.
  ContainerMatch noCgroup = webMatch();
  noCgroup.cgroup.clear();
  t.container.init = ContainerInit::kProtect;
  auto refused = containerView(t, noCgroup, TargetKind::kProcess);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
  t.container.path.clear();
  EXPECT_EQ(containerView(t, webMatch(), TargetKind::kPath).error().code(), ErrorCode::kInvalid);
}

TEST(ContainerViewTest, ModeAndSeedChooseAmongContainersAsForProcesses) {
  std::vector<ContainerMatch> matched;
  for (int i = 0; i < 6; ++i) {
    ContainerMatch m = webMatch();
    m.pid = 500 - i * 10;
    m.name = "web-" + std::to_string(i);
    matched.push_back(m);
  }
  TargetSpec t;
  t.kind = TargetKind::kContainer;
  t.selection.mode = SelectionMode::kOne;
  t.selection.seed = 7;
  auto a = chooseContainers(t, matched, 99);
  auto b = chooseContainers(t, matched, 12345);
  ASSERT_EQ(a.selected.size(), 1u);
  EXPECT_EQ(a.selected.front().pid, b.selected.front().pid) << "the target's seed wins";
  EXPECT_EQ(a.seed, 7u);
  EXPECT_EQ(a.matched.front().pid, 450) << "sorted by init pid";
  // Different seeds reach different containers.
  std::set<pid_t> hit;
  for (uint64_t s = 0; s < 40; ++s) {
    t.selection.seed = s;
    hit.insert(chooseContainers(t, matched, 0).selected.front().pid);
  }
  EXPECT_GT(hit.size(), 3u);
  ASSERT_TRUE(oneContainer(t, a).ok());
  // `all` over several: a fault acts on one container.
  t.selection = {};
  auto all = chooseContainers(t, matched, 0);
  EXPECT_EQ(all.selected.size(), 6u);
  auto many = oneContainer(t, all);
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(many.error().message(), HasSubstr("selects 6 containers"));
  EXPECT_EQ(oneContainer(t, chooseContainers(t, {}, 0)).error().code(), ErrorCode::kNotFound);
}

// Several containers (`mode: all` over a pod): faults that signal take their processes; a
// network, disk or resource fault, or `init: only`, acts on one and is refused, naming them.
TEST(ContainerViewTest, SeveralContainersAreTakenOnlyByFaultsThatSignal) {
  TargetSpec t;
  t.name = "shop";
  t.kind = TargetKind::kContainer;
  t.container.pod = "shop";
  t.container.path = "/data";
  ContainerMatch web = webMatch(), db = webMatch();
  db.name = "db";
  db.pid = 400;
  db.cgroup = "/libpod_parent/libpod-db";
  const std::vector<ContainerMatch> both{web, db};

  auto procs = containersView(t, both, TargetKind::kProcess);
  ASSERT_TRUE(procs.ok()) << procs.error().describe();
  EXPECT_EQ(procs->kind, TargetKind::kProcess);
  EXPECT_EQ(procs->process.cgroup, web.cgroup);
  EXPECT_EQ(procs->process.moreCgroups, std::vector<std::string>{db.cgroup});
  EXPECT_EQ(procs->process.exceptPids, (std::vector<int>{300, 400})) << "each init protected";
  t.container.init = ContainerInit::kInclude;
  EXPECT_TRUE(containersView(t, both, TargetKind::kProcess)->process.exceptPids.empty());

  for (auto [kind, signals, why] :
       {std::tuple{TargetKind::kPath, true, "a disk fault acts on one container's path"},
        std::tuple{TargetKind::kProcess, false, "a resource fault joins one container's cgroup"}}) {
    auto refused = containersView(t, both, kind, signals);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalid);
    EXPECT_THAT(refused.error().message(), HasSubstr("selects 2 containers (web, db)"));
    EXPECT_THAT(refused.error().message(), HasSubstr(why));
  }
  t.container.init = ContainerInit::kOnly;
  EXPECT_THAT(containersView(t, both, TargetKind::kProcess).error().message(),
              HasSubstr("init: only hits one container's init"));
  t.container.init = ContainerInit::kProtect;
  ContainerMatch noGroup = db;
  noGroup.cgroup.clear();
  EXPECT_EQ(containersView(t, {web, noGroup}, TargetKind::kProcess).error().code(),
            ErrorCode::kUnsupported);
  // One: the single view; none: not found.
  EXPECT_EQ(containersView(t, {db}, TargetKind::kInterface)->interface.netns.nsPath(),
            "/proc/400/ns/net");
  EXPECT_EQ(containersView(t, {}, TargetKind::kProcess).error().code(), ErrorCode::kNotFound);
}

// The namespace's pin (a file under /run/netns with the namespace's device and inode) is the
// path a network fault keeps, since it outlives the init; here a hard link stands for the bind
// mount (the same st_dev and st_ino, as nsfs gives both).
TEST(ContainerViewTest, ANetworkFaultKeepsThePathThatPinsTheNamespace) {
  const std::string root = ::testing::TempDir() + "/chaosd-pin-" + std::to_string(::getpid());
  std::filesystem::create_directories(root + "/proc/300/ns");
  std::filesystem::create_directories(root + "/proc/400/ns");
  std::filesystem::create_directories(root + "/netns");
  std::ofstream(root + "/proc/300/ns/net") << "";
  std::ofstream(root + "/proc/400/ns/net") << "";
  std::ofstream(root + "/netns/other") << "";
  std::filesystem::create_hard_link(root + "/proc/300/ns/net", root + "/netns/pod-web");
  const std::vector<std::string> dirs{root + "/missing", root + "/netns"};
  EXPECT_EQ(durableNetnsPath(300, root + "/proc", dirs), root + "/netns/pod-web");
  EXPECT_EQ(durableNetnsPath(400, root + "/proc", dirs), root + "/proc/400/ns/net")
      << "nothing pins it: the init's own";
  EXPECT_EQ(durableNetnsPath(500, root + "/proc", dirs), root + "/proc/500/ns/net")
      << "no such process: its path, which the fault's prepare reports";

  // Several containers: one network fault when they share one pinned namespace (a pod's).
  TargetSpec t;
  t.name = "shop";
  t.kind = TargetKind::kContainer;
  ContainerMatch web = webMatch(), sidecar = webMatch(), db = webMatch();
  sidecar.name = "sidecar";
  sidecar.pid = 310;
  db.name = "db";
  db.pid = 400;
  std::filesystem::create_directories(root + "/proc/310/ns");
  std::filesystem::create_hard_link(root + "/proc/300/ns/net", root + "/proc/310/ns/net");
  const NetnsLookup lookup{root + "/proc", dirs};
  auto pod = containersView(t, {web, sidecar}, TargetKind::kInterface, true, lookup);
  ASSERT_TRUE(pod.ok()) << pod.error().describe();
  EXPECT_EQ(pod->kind, TargetKind::kInterface);
  EXPECT_EQ(pod->interface.name, "eth0");
  EXPECT_EQ(pod->interface.netns.nsPath(), root + "/netns/pod-web");
  auto apart = containersView(t, {web, db}, TargetKind::kInterface, true, lookup);
  ASSERT_FALSE(apart.ok());
  EXPECT_EQ(apart.error().code(), ErrorCode::kInvalid);
  EXPECT_THAT(apart.error().message(), HasSubstr("selects 2 containers (web, db)"));
  EXPECT_THAT(apart.error().message(), HasSubstr("more than one network namespace"));
  std::filesystem::remove(root + "/netns/pod-web");
  auto unpinned = containersView(t, {web, sidecar}, TargetKind::kInterface, true, lookup);
  ASSERT_FALSE(unpinned.ok());
  EXPECT_THAT(unpinned.error().message(), HasSubstr("no file under /run/netns pins it"));
  std::filesystem::remove_all(root);
}

// ---- the parser ---------------------------------------------------------------------------

TEST(ContainerParserTest, AContainerTargetForEveryFamily) {
  const std::string text = R"(apiVersion: chaosd/v1
kind: Experiment
metadata: {name: ctr}
targets:
  web:
    container:
      name: web
      label: {app: web}
      runtime: podman
      socket: /run/podman/podman.sock
      interface: eth1
      path: /var/lib/app
      init: include
      onRestart: report
    mode: one
    seed: 42
steadyState: {probes: []}
method:
  - {name: slow, fault: network.delay, target: web, args: {delay: 100ms}, duration: 10s}
  - {name: kill, fault: process.kill, target: web}
  - {name: fill, fault: disk.fill, target: web, args: {size: 1MiB}, duration: 10s}
  - {name: cpu, fault: cpu.stress, target: web, args: {workers: 1, load: 10%}, duration: 10s}
)";
  ParseOptions options;
  options.registry = &testing::builtinFaults();
  ParseResult r = parseExperimentText(text, "exp.yaml", options);
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : r.diagnostics.front().str());
  const TargetSpec* t = r.experiment->findTarget("web");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind, TargetKind::kContainer);
  EXPECT_EQ(t->container.name, "web");
  EXPECT_EQ(t->container.labels.at("app"), "web");
  EXPECT_EQ(t->container.runtime, ContainerRuntime::kPodman);
  EXPECT_EQ(t->container.socket, "/run/podman/podman.sock");
  EXPECT_EQ(t->container.interface, "eth1");
  EXPECT_EQ(t->container.path, "/var/lib/app");
  EXPECT_EQ(t->container.init, ContainerInit::kInclude);
  EXPECT_FALSE(t->container.followRestart);
  EXPECT_EQ(t->selection.mode, SelectionMode::kOne);
  EXPECT_EQ(t->selection.seed, 42u);
  EXPECT_EQ(describeContainerSpec(t->container), "container name=web AND label app=web (podman)");
}

// ---- Kubernetes pods --------------------------------------------------------------------

// A node's state as the kubelet and containerd leave it: log links in a folder, the containers'
// processes in kubepods cgroups (systemd driver), the pod's sandbox (pause) in one of its own.
class KubeletFixture {
 public:
  KubeletFixture() {
    char tmpl[] = "/tmp/chaosd-kubelet-XXXXXX";
    logs_ = ::mkdtemp(tmpl);
  }
  ~KubeletFixture() { std::filesystem::remove_all(logs_); }
  void link(const std::string& pod, const std::string& ns, const std::string& container,
            const std::string& id) {
    std::ofstream(logs_ + "/" + pod + "_" + ns + "_" + container + "-" + id + ".log") << "";
  }
  static std::string cgroup(const std::string& podUid, const std::string& id) {
    return "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUid +
           ".slice/cri-containerd-" + id + ".scope\n";
  }
  const std::string& logs() const { return logs_; }

 private:
  std::string logs_;
};

std::string hexId(char c) { return std::string(64, c); }

TEST(KubernetesPodTest, FoundByNamespacePodAndContainerThroughLogLinksAndCgroups) {
  ProcFixture proc;
  KubeletFixture node;
  // web-0 (app + a sidecar) and web-1 in shop; web-0 in another namespace; a stale link of
  // web-1's app before its restart (no process); the sandboxes (pause), which have no link.
  node.link("web-0", "shop", "app", hexId('a'));
  node.link("web-0", "shop", "proxy", hexId('b'));
  node.link("web-1", "shop", "app", hexId('c'));
  node.link("web-1", "shop", "app", hexId('9'));
  node.link("web-0", "staging", "app", hexId('d'));
  node.link("db-0", "shop", "postgres", hexId('e'));
  proc.add(500, 1, KubeletFixture::cgroup("u0", hexId('a')));
  proc.add(501, 500, KubeletFixture::cgroup("u0", hexId('a')));  // a child: not the init
  proc.add(510, 1, KubeletFixture::cgroup("u0", hexId('b')));
  proc.add(520, 1, KubeletFixture::cgroup("u1", hexId('c')));
  proc.add(530, 1, KubeletFixture::cgroup("u2", hexId('d')));
  proc.add(540, 1, KubeletFixture::cgroup("u3", hexId('e')));
  proc.add(490, 1, KubeletFixture::cgroup("u0", hexId('f')));  // web-0's sandbox
  ContainerSpec spec;
  spec.kubernetes =
      KubernetesPodSpec{.ns = "shop", .pod = "web-*", .container = "app", .logDir = node.logs()};
  ContainerSources sources{nullptr, proc.root()};
  auto found = findContainers(spec, sources);
  ASSERT_TRUE(found.ok()) << found.error().describe();
  ASSERT_EQ(found->size(), 2u) << "web-0's and web-1's app; not staging's, not the stale link";
  EXPECT_EQ((*found)[0].id, hexId('a'));
  EXPECT_EQ((*found)[0].pid, 500);
  EXPECT_EQ((*found)[0].name, "app");
  EXPECT_EQ((*found)[0].pod, "shop/web-0");
  EXPECT_EQ((*found)[0].runtime, ContainerRuntime::kContainerd);
  EXPECT_THAT((*found)[0].foundBy, HasSubstr("kubelet log link web-0_shop_app-aaaaaaaaaaaa"));
  EXPECT_THAT((*found)[0].foundBy, HasSubstr("cri-containerd-"));
  EXPECT_EQ((*found)[1].pod, "shop/web-1");

  // Every container of one pod.
  spec.kubernetes->pod = "web-0";
  spec.kubernetes->container.clear();
  found = findContainers(spec, sources);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[1].name, "proxy");

  // A restart: a new id under the same pod and container is the container now.
  spec.kubernetes->container = "app";
  const ContainerMatch before = findContainers(spec, sources)->front();
  std::filesystem::remove_all(proc.root() + "/500");
  std::filesystem::remove_all(proc.root() + "/501");
  node.link("web-0", "shop", "app", hexId('7'));
  proc.add(600, 1, KubeletFixture::cgroup("u0", hexId('7')));
  auto again = findContainerAgain(spec, before, sources);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->id, hexId('7'));
  EXPECT_EQ(again->pid, 600);
  std::filesystem::remove_all(proc.root() + "/600");
  auto gone = findContainerAgain(spec, before, sources);
  ASSERT_FALSE(gone.ok());
  EXPECT_THAT(gone.error().message(), HasSubstr("of pod shop/web-0"));

  // Not a Kubernetes node.
  spec.kubernetes->logDir = node.logs() + "/none";
  auto none = findContainers(spec, sources);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message(), HasSubstr("is this a Kubernetes node?"));
}

TEST(KubernetesPodTest, TheParserReadsThePodAndRefusesMixedSelectors) {
  auto parse = [](const std::string& container) {
    ParseOptions options;
    options.registry = &testing::builtinFaults();
    return parseExperimentText(
        "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: k}\ntargets:\n  web:\n"
        "    container: " +
            container +
            "\n    mode: one\nsteadyState: {probes: []}\n"
            "method:\n  - {name: kill, fault: process.kill, target: web}\n",
        "exp.yaml", options);
  };
  auto ok = parse(
      "{kubernetes: {namespace: shop, pod: \"web-*\", container: app}, "
      "runtime: containerd}");
  ASSERT_TRUE(ok.ok()) << ok.diagnostics.front().str();
  const auto& k = ok.experiment->findTarget("web")->container.kubernetes;
  ASSERT_TRUE(k);
  EXPECT_EQ(k->ns, "shop");
  EXPECT_EQ(k->pod, "web-*");
  EXPECT_EQ(k->logDir, "/var/log/containers");
  EXPECT_EQ(describeContainerSpec(ok.experiment->findTarget("web")->container),
            "container kubernetes pod shop/web-* container app (containerd)");
  auto mixed = parse("{kubernetes: {pod: web-0}, name: web, label: {app: web}}");
  ASSERT_FALSE(mixed.ok());
  std::string all;
  for (const auto& d : mixed.diagnostics) all += d.str() + "\n";
  EXPECT_THAT(all, HasSubstr("targets.web.container.name: name beside kubernetes"));
  EXPECT_THAT(all, HasSubstr("targets.web.container.label: label beside kubernetes"));
  auto bad = parse("{kubernetes: {namespace: Shop_1, container: app, logDir: logs}}");
  ASSERT_FALSE(bad.ok());
  all.clear();
  for (const auto& d : bad.diagnostics) all += d.str() + "\n";
  EXPECT_THAT(all, HasSubstr("'Shop_1' is not a Kubernetes namespace"));
  EXPECT_THAT(all, HasSubstr("kubernetes: no pod"));
  EXPECT_THAT(all, HasSubstr("kubernetes.logDir: 'logs' is not an absolute path"));
}

}  // namespace
}  // namespace chaosd
