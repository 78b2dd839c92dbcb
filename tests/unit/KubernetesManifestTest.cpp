// The Kubernetes manifests (deploy/kubernetes/*.yaml) checked offline, since no cluster is
// here: every document parses and has apiVersion, kind and metadata; selectors and
// anti-affinity match their pod templates' labels; every mount names a volume and every
// ConfigMap, claim and ServiceAccount a pod uses is defined; the socket's hostPath is the
// daemon's default socket's folder; the commands are programs the package installs, and every
// chaosctl subcommand and --option they use exists (asked of the real chaosctl); the shipped
// experiments validate and the topology parses; RBAC names only what exists and grants no
// wildcard, no Secret, no exec.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "chaosd/app/cli/DaemonClient.h"
#include "reports/FleetTopology.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

struct Doc {
  std::string file;
  YAML::Node node;
  std::string kind() const { return node["kind"].as<std::string>(""); }
  std::string name() const { return node["metadata"]["name"].as<std::string>(""); }
  std::string where() const { return file + ": " + kind() + " " + name(); }
};

std::vector<Doc> manifests() {
  std::vector<Doc> docs;
  std::vector<fs::path> files;
  for (const auto& e :
       fs::directory_iterator(std::string(CHAOSD_SOURCE_DIR) + "/deploy/kubernetes")) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    for (const auto& n : YAML::LoadAllFromFile(f.string())) {
      if (n.IsNull()) continue;
      docs.push_back({f.filename().string(), n});
    }
  }
  return docs;
}

// The pod template of a workload (DaemonSet, Job, CronJob); a null node for other kinds.
YAML::Node podTemplate(const Doc& d) {
  if (d.kind() == "DaemonSet" || d.kind() == "Job") return d.node["spec"]["template"];
  if (d.kind() == "CronJob") return d.node["spec"]["jobTemplate"]["spec"]["template"];
  return YAML::Node();
}

std::map<std::string, std::string> labels(const YAML::Node& n) {
  std::map<std::string, std::string> out;
  if (!n || !n.IsMap()) return out;
  for (const auto& kv : n) out[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return out;
}

// Every key=value of `selector` is among `labels`.
bool selects(const std::map<std::string, std::string>& selector,
             const std::map<std::string, std::string>& podLabels) {
  for (const auto& [k, v] : selector) {
    auto it = podLabels.find(k);
    if (it == podLabels.end() || it->second != v) return false;
  }
  return !selector.empty();
}

std::set<std::string> namesOf(const std::vector<Doc>& docs, const std::string& kind) {
  std::set<std::string> out;
  for (const auto& d : docs) {
    if (d.kind() == kind) out.insert(d.name());
  }
  return out;
}

// Every chaosctl invocation in a command (argv) or a shell script: its subcommand and options.
struct Invocation {
  std::string sub;
  std::vector<std::string> options;
};

std::vector<Invocation> chaosctlCalls(const std::string& text) {
  std::vector<Invocation> out;
  // Join continued lines, then take each line that calls chaosctl.
  std::string joined = std::regex_replace(text, std::regex("\\\\\n"), " ");
  std::istringstream lines(joined);
  std::string line;
  const std::regex call("/usr/bin/chaosctl\\s+([a-z-]+)(.*)");
  const std::regex option("(^|\\s)(--[a-z-]+)");
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, call)) continue;
    Invocation inv{m[1].str(), {}};
    const std::string rest = m[2].str();
    for (std::sregex_iterator it(rest.begin(), rest.end(), option), end; it != end; ++it) {
      inv.options.push_back((*it)[2].str());
    }
    out.push_back(inv);
  }
  return out;
}

// The node at `path` below n, or a null node when any step is missing (a const yaml-cpp node
// throws when indexed past a missing key).
YAML::Node at(const YAML::Node& n, std::initializer_list<const char*> path) {
  YAML::Node cur;
  cur.reset(n);
  for (const char* key : path) {
    if (!cur.IsDefined() || !cur.IsMap() || !cur[key]) return YAML::Node();
    cur.reset(cur[key]);  // not operator=, which would overwrite the node it refers to
  }
  return cur;
}

std::string argvText(const YAML::Node& seq) {
  std::string out;
  if (!seq || !seq.IsSequence()) return out;
  for (const auto& a : seq) out += (out.empty() ? "" : " ") + a.as<std::string>();
  return out;
}

class KubernetesManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = manifests();
    ASSERT_GE(docs_.size(), 10u);
  }
  std::vector<Doc> docs_;
};

TEST_F(KubernetesManifestTest, EveryDocumentHasApiVersionKindAndMetadata) {
  const std::map<std::string, std::string> apiOf = {
      {"Namespace", "v1"},
      {"ServiceAccount", "v1"},
      {"ConfigMap", "v1"},
      {"PersistentVolumeClaim", "v1"},
      {"DaemonSet", "apps/v1"},
      {"Job", "batch/v1"},
      {"CronJob", "batch/v1"},
      {"Role", "rbac.authorization.k8s.io/v1"},
      {"RoleBinding", "rbac.authorization.k8s.io/v1"}};
  std::set<std::string> seen;
  for (const auto& d : docs_) {
    ASSERT_TRUE(d.node.IsMap()) << d.file;
    ASSERT_TRUE(apiOf.count(d.kind())) << d.where() << ": a kind this test does not know";
    EXPECT_EQ(d.node["apiVersion"].as<std::string>(""), apiOf.at(d.kind())) << d.where();
    EXPECT_FALSE(d.name().empty()) << d.where();
    if (d.kind() != "Namespace") {
      EXPECT_EQ(d.node["metadata"]["namespace"].as<std::string>(""), "chaosd") << d.where();
    }
    EXPECT_TRUE(seen.insert(d.kind() + "/" + d.name()).second) << d.where() << " defined twice";
  }
  for (const char* kind : {"DaemonSet", "Job", "CronJob", "Role", "RoleBinding"}) {
    EXPECT_FALSE(namesOf(docs_, kind).empty()) << "no " << kind;
  }
}

TEST_F(KubernetesManifestTest, SelectorsMatchTheirTemplatesAndEveryReferenceExists) {
  const auto configMaps = namesOf(docs_, "ConfigMap");
  const auto claims = namesOf(docs_, "PersistentVolumeClaim");
  const auto accounts = namesOf(docs_, "ServiceAccount");
  for (const auto& d : docs_) {
    const YAML::Node tmpl = podTemplate(d);
    if (!tmpl.IsDefined() || !tmpl.IsMap()) continue;
    const auto podLabels = labels(tmpl["metadata"]["labels"]);
    if (d.node["spec"]["selector"]) {
      EXPECT_TRUE(selects(labels(d.node["spec"]["selector"]["matchLabels"]), podLabels))
          << d.where();
    }
    const YAML::Node spec = tmpl["spec"];
    const YAML::Node antiAffinity =
        at(spec, {"affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"});
    for (const auto& term : antiAffinity) {
      EXPECT_TRUE(selects(labels(term["labelSelector"]["matchLabels"]), podLabels))
          << d.where() << ": the anti-affinity must select the pods themselves";
    }
    if (d.kind() != "DaemonSet") {
      const std::string policy = spec["restartPolicy"].as<std::string>("");
      EXPECT_TRUE(policy == "Never" || policy == "OnFailure") << d.where();
      const YAML::Node job =
          d.kind() == "CronJob" ? d.node["spec"]["jobTemplate"]["spec"] : d.node["spec"];
      if (job["completionMode"].as<std::string>("") == "Indexed") {
        EXPECT_EQ(job["completions"].as<int>(0), job["parallelism"].as<int>(-1))
            << d.where() << ": every selected node's pod at once";
      }
      EXPECT_TRUE(spec["serviceAccountName"]) << d.where();
      // The game day's pods ask the daemon; they hold no privilege themselves.
      for (const auto& c : spec["containers"]) {
        const YAML::Node sc = at(c, {"securityContext"});
        EXPECT_FALSE(sc["privileged"].as<bool>(false)) << d.where();
        EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true)) << d.where();
        EXPECT_EQ(argvText(at(sc, {"capabilities", "drop"})), "ALL") << d.where();
      }
      EXPECT_FALSE(spec["automountServiceAccountToken"].as<bool>(true))
          << d.where() << ": the game day's pods need no API token";
    }
    if (spec["serviceAccountName"]) {
      EXPECT_TRUE(accounts.count(spec["serviceAccountName"].as<std::string>())) << d.where();
    }
    std::set<std::string> volumes;
    for (const auto& v : spec["volumes"]) {
      volumes.insert(v["name"].as<std::string>());
      if (v["configMap"]) {
        EXPECT_TRUE(configMaps.count(v["configMap"]["name"].as<std::string>())) << d.where();
      }
      if (v["persistentVolumeClaim"]) {
        EXPECT_TRUE(claims.count(v["persistentVolumeClaim"]["claimName"].as<std::string>()))
            << d.where();
      }
    }
    for (const auto& c : spec["containers"]) {
      for (const auto& m : c["volumeMounts"]) {
        EXPECT_TRUE(volumes.count(m["name"].as<std::string>()))
            << d.where() << ": mount " << m["name"].as<std::string>() << " has no volume";
      }
    }
  }
}

TEST_F(KubernetesManifestTest, TheSocketMountIsTheDaemonsDefaultSocketFolder) {
  const std::string socketDir = fs::path(cli::kDefaultSocket).parent_path().string();
  int pods = 0;
  for (const auto& d : docs_) {
    const YAML::Node tmpl = podTemplate(d);
    if (!tmpl.IsDefined() || !tmpl.IsMap()) continue;
    std::map<std::string, std::string> hostPaths;
    for (const auto& v : tmpl["spec"]["volumes"]) {
      if (v["hostPath"])
        hostPaths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
    }
    for (const auto& c : tmpl["spec"]["containers"]) {
      for (const auto& m : c["volumeMounts"]) {
        if (m["mountPath"].as<std::string>() != socketDir) continue;
        ++pods;
        EXPECT_EQ(hostPaths[m["name"].as<std::string>()], socketDir)
            << d.where() << ": the socket folder must be the node's own";
      }
      // The daemon listens where clients look by default.
      if (d.kind() == "DaemonSet") {
        EXPECT_NE(argvText(c["args"]).find(std::string("--socket=") + cli::kDefaultSocket),
                  std::string::npos);
      }
    }
  }
  EXPECT_GE(pods, 3) << "the DaemonSet, the game day Job and its CronJob mount the socket";
  // The Job's script talks to that socket.
  for (const auto& d : docs_) {
    if (d.kind() != "ConfigMap" || !d.node["data"]["submit.sh"]) continue;
    const std::string script = d.node["data"]["submit.sh"].as<std::string>();
    EXPECT_NE(script.find(std::string("--socket ") + cli::kDefaultSocket), std::string::npos);
    EXPECT_NE(script.find(std::string("--unix-socket ") + cli::kDefaultSocket), std::string::npos);
  }
}

TEST_F(KubernetesManifestTest, CommandsAreInstalledProgramsAndChaosctlKnowsEveryOption) {
  const std::set<std::string> programs = {"/usr/bin/chaosd", "/usr/bin/chaosctl", "/bin/sh",
                                          "/usr/bin/curl"};
  std::vector<Invocation> calls;
  std::set<std::string> scripts;  // files under the ConfigMap's mount that commands run
  for (const auto& d : docs_) {
    if (d.kind() == "ConfigMap") {
      for (const auto& kv : d.node["data"]) {
        if (kv.first.as<std::string>().ends_with(".sh")) {
          for (auto& c : chaosctlCalls(kv.second.as<std::string>())) calls.push_back(c);
        }
      }
    }
    const YAML::Node tmpl = podTemplate(d);
    if (!tmpl.IsDefined() || !tmpl.IsMap()) continue;
    for (const auto& c : tmpl["spec"]["containers"]) {
      const YAML::Node cmd = c["command"];
      ASSERT_TRUE(cmd && cmd.IsSequence() && cmd.size() > 0) << d.where();
      EXPECT_TRUE(programs.count(cmd[0].as<std::string>())) << d.where() << ": " << cmd[0];
      if (cmd[0].as<std::string>() == "/bin/sh" && cmd.size() > 1) {
        scripts.insert(fs::path(cmd[1].as<std::string>()).filename().string());
      }
      for (auto& call : chaosctlCalls(argvText(cmd) + " " + argvText(c["args"]))) {
        calls.push_back(call);
      }
      for (const char* hook : {"livenessProbe", "lifecycle"}) {
        const YAML::Node h = c[hook];
        if (!h) continue;
        const YAML::Node exec =
            hook == std::string("lifecycle") ? at(h, {"preStop", "exec"}) : at(h, {"exec"});
        if (!exec.IsDefined() || !exec.IsMap()) continue;
        EXPECT_TRUE(programs.count(exec["command"][0].as<std::string>())) << d.where();
        for (auto& call : chaosctlCalls(argvText(exec["command"]))) calls.push_back(call);
      }
    }
  }
  EXPECT_TRUE(scripts.count("submit.sh"));
  ASSERT_GE(calls.size(), 4u) << "submit, run, report, recover";
  std::map<std::string, std::string> help;
  for (const auto& call : calls) {
    if (!help.count(call.sub)) {
      int status = -1;
      help[call.sub] = chaosd::testing::runCommand(
          std::string(CHAOSCTL_PATH) + " " + call.sub + " --help 2>&1", &status);
      EXPECT_EQ(status, 0) << "chaosctl " << call.sub << ": not a subcommand";
    }
    for (const auto& opt : call.options) {
      // "  --wait  ", "-o [ --output ] arg".
      EXPECT_NE(help[call.sub].find(" " + opt + " "), std::string::npos)
          << "chaosctl " << call.sub << " has no " << opt;
    }
  }
}

TEST_F(KubernetesManifestTest, ShippedExperimentsValidateAndTheTopologyParses) {
  const std::string dir = chaosd::testing::makeTempDir("chaosd-k8s-manifest");
  int experiments = 0;
  for (const auto& d : docs_) {
    if (d.kind() != "ConfigMap") continue;
    for (const auto& kv : d.node["data"]) {
      const std::string key = kv.first.as<std::string>();
      const std::string text = kv.second.as<std::string>();
      if (key == "topology.yaml") {
        auto t = report::parseTopology(text, key);
        EXPECT_TRUE(t) << t.error().describe();
        continue;
      }
      if (!key.ends_with(".yaml")) continue;
      chaosd::testing::writeFile(dir + "/" + key, text);
      int status = -1;
      const std::string out = chaosd::testing::runCommand(
          std::string(CHAOSCTL_PATH) + " validate " + dir + "/" + key + " 2>&1", &status);
      EXPECT_EQ(status, 0) << d.where() << " " << key << ":\n" << out;
      ++experiments;
    }
  }
  fs::remove_all(dir);
  EXPECT_GE(experiments, 2);
}

TEST_F(KubernetesManifestTest, RbacIsMinimalAndNamesWhatExists) {
  const auto roles = namesOf(docs_, "Role");
  const auto accounts = namesOf(docs_, "ServiceAccount");
  for (const auto& d : docs_) {
    if (d.kind() == "Role") {
      for (const auto& rule : d.node["rules"]) {
        for (const char* field : {"apiGroups", "resources", "verbs"}) {
          for (const auto& v : rule[field]) {
            const std::string s = v.as<std::string>();
            EXPECT_NE(s, "*") << d.where() << ": a wildcard in " << field;
            EXPECT_NE(s, "secrets") << d.where();
            EXPECT_NE(s, "pods/exec") << d.where();
          }
        }
      }
    }
    if (d.kind() == "RoleBinding") {
      EXPECT_EQ(d.node["roleRef"]["kind"].as<std::string>(), "Role") << d.where();
      EXPECT_TRUE(roles.count(d.node["roleRef"]["name"].as<std::string>())) << d.where();
      for (const auto& s : d.node["subjects"]) {
        if (s["kind"].as<std::string>() != "ServiceAccount") continue;
        EXPECT_TRUE(accounts.count(s["name"].as<std::string>())) << d.where();
      }
    }
  }
}

}  // namespace
}  // namespace chaosd
