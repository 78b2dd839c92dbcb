// Least privilege at the daemon (docs/security.md): a real unprivileged user in the daemon's
// group submits experiments over the socket. Every command the run executes (command probe,
// exec target, rollback) runs as that user, never as uid 0; the report folder is the daemon's,
// not a path the caller chose; the policy refuses what it does not grant before anything is
// applied, naming the rule and its line; the audit trail and `chaosctl runs` name the caller.
// The user and group are created with useradd/groupadd and removed afterwards.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chaosd/engine/journal/FaultJournal.h"
#include "tests/support/DaemonProcess.h"
#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using chaosd::testing::DaemonProcess;
using chaosd::testing::readWhole;
using chaosd::testing::TempDir;

struct Answer {
  long status = 0;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// A user and a group of the test's own, removed (userdel, groupdel) on destruction.
class ScratchUser {
 public:
  explicit ScratchUser(const std::string& suffix)
      : name_("chaosd-pt-" + suffix), group_("chaosd-pg-" + suffix) {
    cleanup();
    ok_ = std::system(("groupadd " + group_ + " && useradd -M -N -g " + group_ +
                       " -s /usr/sbin/nologin " + name_)
                          .c_str()) == 0;
    if (!ok_) return;
    struct passwd* pw = ::getpwnam(name_.c_str());
    struct group* gr = ::getgrnam(group_.c_str());
    ok_ = pw != nullptr && gr != nullptr;
    if (ok_) uid_ = pw->pw_uid, gid_ = gr->gr_gid;
  }
  ~ScratchUser() { cleanup(); }
  ScratchUser(const ScratchUser&) = delete;
  ScratchUser& operator=(const ScratchUser&) = delete;

  bool ok() const { return ok_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  const std::string& name() const { return name_; }
  const std::string& group() const { return group_; }

 private:
  void cleanup() const {
    (void)std::system(
        ("userdel " + name_ + " >/dev/null 2>&1; groupdel " + group_ + " >/dev/null 2>&1").c_str());
  }
  std::string name_;
  std::string group_;
  bool ok_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

class DaemonPrivilegeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_TRUE(user_.ok()) << "useradd/groupadd failed";
    ASSERT_FALSE(tmp_.path().empty());
    out_ = tmp_.path() + "/out";
    fs::create_directories(out_);
    ASSERT_EQ(::chown(out_.c_str(), user_.uid(), user_.gid()), 0);
    policy_ = tmp_.path() + "/policy.yaml";
  }

  void writePolicy(const std::string& text) { std::ofstream(policy_) << text; }

  std::unique_ptr<DaemonProcess> startDaemon() {
    auto d = std::make_unique<DaemonProcess>(
        tmp_.path(), std::vector<std::string>{"--group", user_.group(), "--policy", policy_});
    EXPECT_TRUE(d->waitReady()) << d->log();
    return d;
  }

  // The request as the scratch user: a forked child with the user's uid, its group as primary
  // and supplementary group, through the real client; the answer comes back on a pipe.
  Answer callAsUser(DaemonProcess& d, const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& type = "application/json") {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    if (child == 0) {
      const gid_t groups[] = {user_.gid()};
      if (::setgroups(1, groups) != 0 || ::setgid(user_.gid()) != 0 || ::setuid(user_.uid()) != 0) {
        ::_exit(126);
      }
      auto r = d.client().request(method, path, body, type);
      json j = r ? json{{"status", r->status}, {"body", r->body}}
                 : json{{"status", 0}, {"body", r.error().describe()}};
      const std::string text = j.dump();
      (void)!::write(p[1], text.data(), text.size());
      ::_exit(0);
    }
    ::close(p[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
      text.append(buf, static_cast<size_t>(n));
    ::close(p[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    auto j = json::parse(text, nullptr, false);
    if (!j.is_object()) return Answer{0, "child status " + std::to_string(status) + ": " + text};
    return Answer{j["status"].get<long>(), j["body"].get<std::string>()};
  }

  Answer callAsRoot(DaemonProcess& d, const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& type = "application/json") {
    auto r = d.client().request(method, path, body, type);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return r.ok() ? Answer{r->status, r->body} : Answer{};
  }

  json waitEnded(DaemonProcess& d, const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    json run;
    while (std::chrono::steady_clock::now() < deadline) {
      run = callAsRoot(d, "GET", "/v1/runs/" + id).json();
      if (run.value("state", "") == "ended") return run;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "run " << id << " did not end: " << run.dump();
    return run;
  }

  // An experiment whose every command writes `id` into OUT/<who>-<what>.id: an exec target, a
  // command probe and a rollback; the rollback also tries to create a file only root may.
  std::string commandsExperiment(const std::string& who) const {
    const std::string o = out_ + "/" + who;
    return "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: as-caller}\n"
           "targets:\n  app: {exec: {argv: [/bin/sh, -c, 'id > " +
           o +
           "-exec.id; exec sleep 60']}}\n"
           "steadyState:\n  baseline: {duration: 300ms}\n  recovery: {duration: 300ms}\n"
           "  probes:\n    - {name: who, command: {argv: [/bin/sh, -c, 'id > " +
           o +
           "-probe.id']}, every: 100ms, timeout: 10s, phases: [before, after]}\n"
           "method:\n  - {name: stop-app, fault: process.kill, target: app, args: {signal: TERM}}\n"
           "rollbacks:\n  - {name: who, command: [/bin/sh, -c, 'id > " +
           o + "-rollback.id; touch " + rootOnly() +
           " || true']}\n"
           "report: {dir: " +
           out_ + "/" + who + "-reports}\n";
  }
  std::string rootOnly() const { return "/etc/" + user_.name() + "-must-not-exist"; }

  static std::string submission(const std::string& yaml) {
    return json{{"experiment", yaml}}.dump();
  }

  ScratchUser user_{std::to_string(::getpid())};
  TempDir tmp_;
  std::string out_;
  std::string policy_;
};

// The owner of a file and the uid `id` wrote into it.
struct Written {
  uid_t owner = 0;
  std::string text;
};
Written written(const std::string& path) {
  struct stat st {};
  Written w;
  if (::stat(path.c_str(), &st) == 0) w.owner = st.st_uid;
  w.text = readWhole(path);
  return w;
}

TEST_F(DaemonPrivilegeTest, EveryCommandOfACallersRunRunsAsTheCallerAndRootsAsRoot) {
  writePolicy("grants:\n  - name: own-processes\n    users: [" + user_.name() +
              "]\n    faults: [process.kill]\n");
  auto d = startDaemon();
  const std::string uidText = "uid=" + std::to_string(user_.uid()) + "(" + user_.name() + ")";

  Answer sub = callAsUser(*d, "POST", "/v1/runs", submission(commandsExperiment("user")));
  ASSERT_EQ(sub.status, 202) << sub.body;
  const std::string id = sub.json()["id"];
  json run = waitEnded(*d, id);
  EXPECT_EQ(run["outcome"], "ok") << run.dump(2);
  for (const char* what : {"exec", "probe", "rollback"}) {
    Written w = written(out_ + "/user-" + what + ".id");
    EXPECT_EQ(w.owner, user_.uid()) << what;
    EXPECT_EQ(w.text.rfind(uidText + " gid=" + std::to_string(user_.gid()), 0), 0u)
        << what << ": " << w.text;
    EXPECT_EQ(w.text.find("uid=0"), std::string::npos) << what << ": " << w.text;
  }
  EXPECT_FALSE(fs::exists(rootOnly())) << "the rollback wrote as root";
  // The report folder is the daemon's (its state dir), not the path the experiment named.
  EXPECT_FALSE(fs::exists(out_ + "/user-reports"));
  EXPECT_TRUE(fs::exists(d->stateDir() + "/runs/" + id + "/report.json"));
  // The run names its caller: in the API, in `chaosctl runs`, in the audit trail.
  EXPECT_EQ(run["caller"]["uid"], user_.uid()) << run.dump(2);
  EXPECT_EQ(run["caller"]["user"], user_.name());
  EXPECT_EQ(run["caller"]["experimentHash"], sub.json()["experimentHash"]);
  const std::string runs =
      testing::runCommand(std::string(CHAOSCTL_PATH) + " runs --socket " + d->socket());
  EXPECT_NE(runs.find(user_.name() + "(" + std::to_string(user_.uid()) + ")"), std::string::npos)
      << runs;

  // The same experiment from root runs as root, as before.
  Answer rootSub = callAsRoot(*d, "POST", "/v1/runs", submission(commandsExperiment("root")));
  ASSERT_EQ(rootSub.status, 202) << rootSub.body;
  json rootRun = waitEnded(*d, rootSub.json()["id"]);
  EXPECT_EQ(rootRun["outcome"], "ok") << rootRun.dump(2);
  for (const char* what : {"exec", "probe", "rollback"}) {
    EXPECT_EQ(written(out_ + "/root-" + what + ".id").text.rfind("uid=0(root)", 0), 0u) << what;
  }
  EXPECT_TRUE(fs::exists(rootOnly()));
  fs::remove(rootOnly());
  d->stop();

  auto journal = openJournal(d->stateDir() + "/journal.db", JournalOpen::kExisting);
  ASSERT_TRUE(journal);
  auto trail = journal->auditTrail();
  ASSERT_TRUE(trail);
  bool found = false;
  for (const auto& a : *trail) {
    if (a.action == "submit" && a.result == "accepted" && a.runId == id) {
      found = true;
      EXPECT_EQ(a.uid, user_.uid());
      EXPECT_GT(a.pid, 0);
      EXPECT_EQ(a.experimentHash, sub.json()["experimentHash"]);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(DaemonPrivilegeTest, ARefusedSubmitAppliesNothingAndNamesTheRule) {
  // The grant: kill processes of one cgroup subtree, nothing else.
  writePolicy("apiVersion: chaosd/v1\ngrants:\n  - name: a-service\n    users: [" + user_.name() +
              "]\n    faults: [process.kill]\n    targets: {cgroups: [/system.slice/a.service]}\n");
  auto d = startDaemon();
  const std::string data = tmp_.path() + "/data";
  fs::create_directories(data);
  const std::string fill = testing::fillExperiment("fill-the-disk", "300ms", "1s");
  Answer r = callAsUser(*d, "POST", "/v1/runs",
                        json{{"experiment", fill}, {"vars", {{"dir", data}}}}.dump());
  EXPECT_EQ(r.status, 403) << r.body;
  const std::string message = r.json()["error"]["message"];
  EXPECT_NE(message.find("refused by policy: step 'fill'"), std::string::npos) << message;
  EXPECT_NE(message.find("grant 'a-service' (" + policy_ + ":3) allows fault types [process.kill]"),
            std::string::npos)
      << message;
  // Nothing applied, nothing journalled as a run.
  EXPECT_TRUE(fs::is_empty(data));
  EXPECT_EQ(callAsRoot(*d, "GET", "/v1/runs").json()["runs"].size(), 0u);
  // A kill outside the granted subtree: refused the same way.
  const std::string killElsewhere =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: k}\n"
      "steadyState:\n  probes: [{name: up, command: {argv: [/bin/true]}}]\n"
      "targets:\n  t: {process: {cgroup: /system.slice/b.service, name: x}}\n"
      "method:\n  - {name: k, fault: process.kill, target: t, args: {signal: KILL}}\n";
  Answer k = callAsUser(*d, "POST", "/v1/runs", submission(killElsewhere));
  EXPECT_EQ(k.status, 403) << k.body;
  EXPECT_NE(k.body.find("not confined to a granted cgroup [/system.slice/a.service]"),
            std::string::npos)
      << k.body;
  // Asked beforehand, the policy gives the same answer and nothing is counted or run.
  Answer check = callAsUser(*d, "POST", "/v1/policy/check", submission(killElsewhere));
  EXPECT_EQ(check.status, 200) << check.body;
  EXPECT_EQ(check.json()["allowed"], false);
  EXPECT_NE(check.json()["reason"].get<std::string>().find("grant 'a-service'"), std::string::npos);
  // `chaosctl plan --daemon-policy`, as the user, prints the plan and the same refusal; exit 5.
  const std::string planFile = "/tmp/chaosd-plan-policy-" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream(planFile) << killElsewhere;
    fs::permissions(planFile,
                    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  }
  int planStatus = 0;
  const std::string plan = testing::runShell(
      "setpriv --reuid=" + std::to_string(user_.uid()) + " --regid=" + std::to_string(user_.gid()) +
          " --groups=" + std::to_string(user_.gid()) + " " + CHAOSCTL_PATH +
          " plan --daemon-policy --socket " + d->socket() + " " + planFile,
      &planStatus);
  fs::remove(planFile);
  EXPECT_EQ(planStatus, 5) << plan;
  EXPECT_NE(plan.find("daemon policy: refused: "), std::string::npos) << plan;
  EXPECT_NE(plan.find("grant 'a-service'"), std::string::npos) << plan;
  // Reading is allowed; the refusals are counted and audited.
  EXPECT_EQ(callAsUser(*d, "GET", "/v1/runs").status, 200);
  const std::string metrics = callAsRoot(*d, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("chaosd_refusals_total{action=\"submit\"} 2"), std::string::npos)
      << metrics;
  d->stop();
  auto journal = openJournal(d->stateDir() + "/journal.db", JournalOpen::kExisting);
  ASSERT_TRUE(journal);
  auto trail = journal->auditTrail();
  ASSERT_TRUE(trail);
  ASSERT_GE(trail->size(), 2u);
  EXPECT_EQ(trail->back().action, "submit");
  EXPECT_EQ(trail->back().result, "refused");
  EXPECT_EQ(trail->back().uid, user_.uid());
  EXPECT_NE(trail->back().detail.find("a-service"), std::string::npos);
}

TEST_F(DaemonPrivilegeTest, WithoutAGrantAGroupMemberMayOnlyReadAndSighupReloadsThePolicy) {
  writePolicy("");  // no grants: every caller but root reads only
  auto d = startDaemon();
  EXPECT_EQ(callAsUser(*d, "GET", "/v1/health").status, 200);
  EXPECT_EQ(callAsUser(*d, "GET", "/v1/runs").status, 200);
  Answer r = callAsUser(*d, "POST", "/v1/runs", submission(commandsExperiment("user")));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("has no grant in " + policy_), std::string::npos) << r.body;
  EXPECT_FALSE(fs::exists(out_ + "/user-exec.id"));
  // Granted, then SIGHUP: the same submission runs.
  writePolicy("grants:\n  - {users: [" + user_.name() + "], faults: [process.kill]}\n");
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  ASSERT_TRUE(testing::waitUntil(
      [&] { return d->log().find("policy reloaded") != std::string::npos; }, 10s));
  Answer ok = callAsUser(*d, "POST", "/v1/runs", submission(commandsExperiment("user")));
  ASSERT_EQ(ok.status, 202) << ok.body;
  const std::string id = ok.json()["id"];
  const json run = waitEnded(*d, id);
  EXPECT_EQ(run["outcome"], "ok") << run.dump(2);
}

TEST_F(DaemonPrivilegeTest, AScheduledRunKeepsItsCreatorsCredentials) {
  writePolicy("grants:\n  - {users: [" + user_.name() + "], faults: [process.kill]}\n");
  auto d = startDaemon();
  json body = {{"experiment", commandsExperiment("sched")}, {"cron", "* * * * *"}, {"maxRuns", 1}};
  Answer created = callAsUser(*d, "POST", "/v1/schedules", body.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string sid = created.json()["id"];
  EXPECT_EQ(created.json()["creator"]["uid"], user_.uid());
  // The next minute's fire (at most 60 s away).
  std::string runId;
  const auto deadline = std::chrono::steady_clock::now() + 75s;
  while (runId.empty() && std::chrono::steady_clock::now() < deadline) {
    json s = callAsRoot(*d, "GET", "/v1/schedules/" + sid).json();
    if (s.value("runsStarted", 0) >= 1) runId = s["lastRunId"];
    // The scheduler fires on a minute boundary: a poll every 200 ms is plenty.
    if (runId.empty()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(runId.empty()) << "the schedule did not fire within 75 s";
  json run = waitEnded(*d, runId);
  EXPECT_EQ(run["outcome"], "ok") << run.dump(2);
  EXPECT_EQ(run["caller"]["source"], "schedule:" + sid);
  for (const char* what : {"exec", "probe", "rollback"}) {
    Written w = written(out_ + "/sched-" + what + ".id");
    EXPECT_EQ(w.owner, user_.uid()) << what;
    EXPECT_EQ(w.text.find("uid=0"), std::string::npos) << what << ": " << w.text;
  }
  EXPECT_FALSE(fs::exists(rootOnly()));
  // Its creator may delete it.
  EXPECT_EQ(callAsUser(*d, "DELETE", "/v1/schedules/" + sid).status, 200);
}

}  // namespace
}  // namespace chaosd
