// A game day across a fleet with Ansible, for real: ansible-core (Debian's) on a control node
// drives the collection in deploy/ansible against three "hosts". Each host is a network
// namespace of the test's own with its own sshd (its own config, host key and authorized key,
// listening only on the namespace's address), its own chaosd from the build tree (own socket
// and state dir) and a small HTTP service. The control node is a fourth namespace holding the
// bridge the hosts' veths hang on; no address is added outside these namespaces.
//
// GameDayRunsOnEveryHostFromOneInstant: examples/zone-outage.yml with the three hosts as the
// zone: each host's fault (its service process paused: state T in /proc) is seen in the kernel
// at once on all three, every report.json is fetched, the faults are reverted (the services run
// and answer again), and the spread of the hosts' first applies is printed.
// KillingTheControlNodeLeavesNothingBehind: the same playbook, SIGKILLed (its whole process
// group: ansible-playbook, its workers and ssh clients) once every host holds its fault; each
// daemon still reverts at the fault's deadline and nothing of the run is left on any host.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/DaemonProcess.h"
#include "tests/support/Shell.h"

namespace chaosd::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr int kHosts = 3;
constexpr int kOutageSeconds = 6;
constexpr int kLeadSeconds = 45;

bool have(const std::string& program) { return shellStatus("command -v " + program) == 0; }

void writeFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

// A child process started with execv, in a new process group (so the whole group can be
// signalled: ansible-playbook with its workers and ssh clients).
pid_t spawn(const std::vector<std::string>& args, const std::string& logPath,
            bool newGroup = false) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (newGroup) ::setpgid(0, 0);
    const int fd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 0);
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  if (newGroup && pid > 0) ::setpgid(pid, pid);
  return pid;
}

// SIGTERM, then SIGKILL after `grace`; reaps it.
void stopChild(pid_t& pid, std::chrono::milliseconds grace = 20s) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  pid = -1;
}

// Polls `pred` every 100 ms (each check runs processes: `ip netns exec ... nft`).
template <typename Pred>
bool pollUntil(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

struct Host {
  std::string name;  // inventory name: h1..h3
  std::string ns;
  std::string address;
  std::string dir;
  pid_t sshd = -1;
  pid_t daemon = -1;
  pid_t service = -1;
};

class FleetAnsibleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    for (const char* p : {"ansible-playbook", "/usr/sbin/sshd", "ssh-keygen", "python3", "nft"}) {
      if (!have(p)) GTEST_SKIP() << p << " is missing (scripts/bootstrap installs it)";
    }
    ASSERT_FALSE(tmp_.path().empty());
    const std::string id = std::to_string(::getpid() % 100000);
    control_ = "chaosd-fleet-" + id + "-ctl";
    // sshd needs its privilege separation directory; made here only when missing.
    if (!std::filesystem::exists("/run/sshd")) {
      ASSERT_EQ(::mkdir("/run/sshd", 0755), 0);
      madeRunSshd_ = true;
    }
    ASSERT_EQ(step("ip netns add " + control_), "");
    nsMade_.push_back(control_);
    ASSERT_EQ(step("ip -n " + control_ + " link add br0 type bridge"), "");
    ASSERT_EQ(step("ip -n " + control_ + " addr add 10.77.0.1/24 dev br0"), "");
    ASSERT_EQ(step("ip -n " + control_ + " link set br0 up"), "");
    ASSERT_EQ(step("ip -n " + control_ + " link set lo up"), "");
    ASSERT_EQ(step("ssh-keygen -q -t ed25519 -N '' -C chaosd-fleet-test -f " + key()), "");
    for (int i = 1; i <= kHosts; ++i) {
      Host h;
      h.name = "h" + std::to_string(i);
      h.ns = "chaosd-fleet-" + id + "-" + h.name;
      h.address = "10.77.0.1" + std::to_string(i);
      h.dir = tmp_.path() + "/" + h.name;
      std::filesystem::create_directories(h.dir + "/www");
      ASSERT_EQ(step("ip netns add " + h.ns), "");
      nsMade_.push_back(h.ns);
      ASSERT_EQ(step("ip -n " + control_ + " link add v" + h.name +
                     " type veth peer name eth0 netns " + h.ns),
                "");
      ASSERT_EQ(step("ip -n " + control_ + " link set v" + h.name + " master br0 up"), "");
      ASSERT_EQ(step("ip -n " + h.ns + " addr add " + h.address + "/24 dev eth0"), "");
      ASSERT_EQ(step("ip -n " + h.ns + " link set eth0 up"), "");
      ASSERT_EQ(step("ip -n " + h.ns + " link set lo up"), "");
      hosts_.push_back(h);
    }
    for (auto& h : hosts_) startHost(h);
    for (auto& h : hosts_) {
      ASSERT_TRUE(pollUntil([&] { return sshAnswers(h); }, 30s))
          << h.name << ": sshd never answered; " << readWhole(h.dir + "/sshd.log");
      ASSERT_TRUE(pollUntil([&] { return std::filesystem::exists(h.dir + "/chaosd.sock"); }, 20s))
          << h.name << ": " << readWhole(h.dir + "/chaosd.log");
      ASSERT_TRUE(pollUntil(
          [&] {
            return shellStatus("ip netns exec " + control_ + " curl -sf -o /dev/null http://" +
                               h.address + ":8080/") == 0;
          },
          20s))
          << h.name << ": the service never answered";
    }
    writeAnsibleConfig();
  }

  void TearDown() override {
    if (playbook_ > 0) {
      ::kill(-playbook_, SIGKILL);
      ::waitpid(playbook_, nullptr, 0);
    }
    for (auto& h : hosts_) {
      stopChild(h.daemon);  // SIGTERM: aborts its runs and reverts their faults
      stopChild(h.sshd, 5s);
      stopChild(h.service, 5s);
    }
    // Whatever is still in our namespaces (a session's chaosctl, an async job on the control
    // node) is ours: the namespaces were made by this test.
    for (const auto& ns : nsMade_) {
      for (const auto& pid : split(runCommand("ip netns pids " + ns + " 2>/dev/null"))) {
        ::kill(std::stoi(pid), SIGKILL);
      }
    }
    for (const auto& ns : nsMade_) runShell("ip netns del " + ns);
    if (madeRunSshd_) std::filesystem::remove_all("/run/sshd");
  }

  static std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  }

  static std::string step(const std::string& cmd) {
    int st = -1;
    std::string out = runShell(cmd, &st);
    return st == 0 ? "" : cmd + ": " + out;
  }

  std::string key() const { return tmp_.path() + "/id_ed25519"; }

  void startHost(Host& h) {
    ASSERT_EQ(step("ssh-keygen -q -t ed25519 -N '' -f " + h.dir + "/ssh_host_ed25519_key"), "");
    writeFile(h.dir + "/sshd_config",
              "ListenAddress " + h.address + ":22\nHostKey " + h.dir +
                  "/ssh_host_ed25519_key\nPidFile " + h.dir + "/sshd.pid\nAuthorizedKeysFile " +
                  key() +
                  ".pub\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
                  "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                  // The key and config live under /tmp (sticky, world-writable): StrictModes
                  // would refuse them.
                  "StrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
                  "LogLevel ERROR\n",
              0600);
    h.sshd = spawn(
        {"ip", "netns", "exec", h.ns, "/usr/sbin/sshd", "-D", "-e", "-f", h.dir + "/sshd_config"},
        h.dir + "/sshd.log");
    h.daemon = spawn({"ip", "netns", "exec", h.ns, CHAOSD_PATH, "--socket", h.dir + "/chaosd.sock",
                      "--state-dir", h.dir + "/state", "--log-file", h.dir + "/chaosd.log",
                      "--log-level", "debug"},
                     h.dir + "/chaosd.out");
    writeFile(h.dir + "/www/index.html", h.name + "\n");
    h.service = spawn({"ip", "netns", "exec", h.ns, "python3", "-m", "http.server", "8080",
                       "--bind", "0.0.0.0", "--directory", h.dir + "/www"},
                      h.dir + "/service.log");
    // `ip netns exec` execs the program: the pid is the service's.
    writeFile(h.dir + "/service.pid", std::to_string(h.service) + "\n");
  }

  bool sshAnswers(const Host& h) const {
    return shellStatus("ip netns exec " + control_ + " ssh -i " + key() +
                       " -o BatchMode=yes -o StrictHostKeyChecking=no"
                       " -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 root@" +
                       h.address + " true") == 0;
  }

  void writeAnsibleConfig() {
    const std::string t = tmp_.path();
    std::filesystem::create_directories(t + "/home");
    std::string inv = "[zone_a]\n";
    for (const auto& h : hosts_) inv += h.name + " ansible_host=" + h.address + "\n";
    inv += "\n[zone_a:vars]\nansible_user=root\nansible_ssh_private_key_file=" + key() + "\n";
    writeFile(t + "/inventory.ini", inv);
    for (const auto& h : hosts_) {
      std::filesystem::create_directories(t + "/host_vars");
      writeFile(t + "/host_vars/" + h.name + ".yml",
                "chaosd_socket: " + h.dir + "/chaosd.sock\nchaosd_state_dir: " + h.dir +
                    "/state\nservice_pidfile: " + h.dir + "/service.pid\n");
    }
    writeFile(
        t + "/ansible.cfg",
        "[defaults]\ncollections_path = " CHAOSD_SOURCE_DIR
        "/deploy/ansible\n"
        "local_tmp = " +
            t + "/ansible-local\nremote_tmp = " + t +
            "/ansible-remote\n"
            "host_key_checking = False\nforks = 10\ninterpreter_python = /usr/bin/python3\n"
            "retry_files_enabled = False\n"
            "[ssh_connection]\n"
            // No control master: a persisting master would outlive a killed playbook.
            "ssh_args = -o ControlMaster=no -o ControlPath=none -o UserKnownHostsFile=/dev/null"
            " -o StrictHostKeyChecking=no\npipelining = True\n");
  }

  // Starts examples/zone-outage.yml on the control node (its own process group).
  void startPlaybook() {
    const std::string t = tmp_.path();
    const std::string examples = CHAOSD_SOURCE_DIR "/deploy/ansible/examples";
    playbook_ = spawn({"ip",
                       "netns",
                       "exec",
                       control_,
                       "env",
                       "ANSIBLE_CONFIG=" + t + "/ansible.cfg",
                       "HOME=" + t + "/home",
                       "ANSIBLE_ASYNC_DIR=" + t + "/async",
                       "ANSIBLE_NOCOLOR=1",
                       "ansible-playbook",
                       "-i",
                       t + "/inventory.ini",
                       examples + "/zone-outage.yml",
                       "-e",
                       "zone=zone_a",
                       "-e",
                       "outage=" + std::to_string(kOutageSeconds),
                       "-e",
                       "lead=" + std::to_string(kLeadSeconds),
                       "-e",
                       "reports=" + t + "/reports",
                       "-e",
                       "frontend_url=http://" + hosts_[0].address + ":8080/",
                       "-e",
                       "control_chaosctl=" CHAOSCTL_PATH,
                       "-e",
                       "control_state_dir=" + t + "/control-state",
                       "-e",
                       "chaosd_chaosctl=" CHAOSCTL_PATH},
                      t + "/playbook.log", true);
    ASSERT_GT(playbook_, 0);
  }

  // The exit status of the playbook (waits for it).
  int waitPlaybook(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(playbook_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(-playbook_, SIGKILL);
        ::waitpid(playbook_, &status, 0);
        playbook_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(100ms);
    }
    playbook_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // The service's scheduler state as the kernel has it: "T (stopped)" while paused.
  std::string serviceState(const Host& h) const {
    return runCommand("awk '/^State:/ {print $2, $3}' /proc/" + std::to_string(h.service) +
                      "/status");
  }
  bool holdsFault(const Host& h) const { return serviceState(h).rfind("T", 0) == 0; }
  // The host's faults as its journal has them, unreverted ones only.
  std::string openFaults(const Host& h) const {
    return runShell(std::string(CHAOSCTL_PATH) + " faults --state-dir " + h.dir + "/state");
  }
  json runs(const Host& h) const {
    return json::parse(runCommand(std::string(CHAOSCTL_PATH) + " runs --socket " + h.dir +
                                  "/chaosd.sock --output json"),
                       nullptr, false);
  }
  // Processes in the host's namespace other than the ones the test started.
  std::vector<std::string> strangers(const Host& h) const {
    std::vector<std::string> out;
    for (const auto& pid : split(runCommand("ip netns pids " + h.ns))) {
      const int p = std::stoi(pid);
      if (p == h.sshd || p == h.daemon || p == h.service) continue;
      out.push_back(pid + " " + runCommand("tr '\\0' ' ' < /proc/" + pid + "/cmdline"));
    }
    return out;
  }

  TempDir tmp_;
  std::string control_;
  std::vector<std::string> nsMade_;
  std::vector<Host> hosts_;
  bool madeRunSshd_ = false;
  pid_t playbook_ = -1;
};

TEST_F(FleetAnsibleTest, GameDayRunsOnEveryHostFromOneInstant) {
  startPlaybook();
  // Every host holds its fault at the same time, in its own namespace's kernel.
  EXPECT_TRUE(pollUntil(
      [&] {
        return std::all_of(hosts_.begin(), hosts_.end(),
                           [&](const Host& h) { return holdsFault(h); });
      },
      std::chrono::seconds(kLeadSeconds + 60)))
      << readWhole(tmp_.path() + "/playbook.log");
  const int rc = waitPlaybook(std::chrono::seconds(kLeadSeconds + kOutageSeconds + 120));
  const std::string log = readWhole(tmp_.path() + "/playbook.log");
  ASSERT_EQ(rc, 0) << log;

  std::vector<int64_t> lateness;
  std::set<std::string> starts;
  for (const auto& h : hosts_) {
    EXPECT_FALSE(holdsFault(h)) << h.name << ": the service is running again: " << serviceState(h);
    EXPECT_NE(openFaults(h).find("no faults held"), std::string::npos) << openFaults(h);
    const std::string path = tmp_.path() + "/reports/" + h.name + "/report.json";
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " was not fetched\n" << log;
    const json report = json::parse(readWhole(path), nullptr, false);
    ASSERT_TRUE(report.is_object()) << path;
    EXPECT_EQ(report.value("outcome", ""), "ok") << report.dump(2).substr(0, 2000);
    ASSERT_FALSE(report["faults"].empty());
    EXPECT_EQ(report["faults"][0].value("type", ""), "process.pause");
    EXPECT_EQ(report["faults"][0].value("state", ""), "reverted");
    ASSERT_TRUE(report["startLatenessUs"].is_number_integer()) << report["startLatenessUs"];
    lateness.push_back(report["startLatenessUs"].get<int64_t>());
    starts.insert(report.value("startAt", ""));
  }
  EXPECT_EQ(starts.size(), 1u) << "one start instant for all hosts";
  const auto [lo, hi] = std::minmax_element(lateness.begin(), lateness.end());
  std::printf("fleet start %s: first apply after the instant per host (us):",
              starts.begin()->c_str());
  for (auto l : lateness) std::printf(" %lld", static_cast<long long>(l));
  std::printf("; spread %lld us\n", static_cast<long long>(*hi - *lo));
  EXPECT_GE(*lo, 0) << "no host applied before the instant";
  EXPECT_LT(*hi - *lo, 250'000) << "the hosts' faults began within 250 ms of each other";

  // The control node measured the front end (h1's service) over the same window: it failed
  // while the zone was out and held before.
  bool sawFrontEnd = false;
  ASSERT_TRUE(std::filesystem::exists(tmp_.path() + "/reports/control-node")) << log;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(tmp_.path() + "/reports/control-node")) {
    if (entry.path().filename() != "report.json") continue;
    const json fe = json::parse(readWhole(entry.path()), nullptr, false);
    EXPECT_EQ(fe.value("startAt", ""), *starts.begin());
    EXPECT_EQ(fe.value("outcome", ""), "deviated") << fe.value("reasons", json()).dump();
    sawFrontEnd = true;
  }
  EXPECT_TRUE(sawFrontEnd) << "the control node's front-end report";
}

TEST_F(FleetAnsibleTest, KillingTheControlNodeLeavesNothingBehind) {
  startPlaybook();
  ASSERT_TRUE(pollUntil(
      [&] {
        return std::all_of(hosts_.begin(), hosts_.end(),
                           [&](const Host& h) { return holdsFault(h); });
      },
      std::chrono::seconds(kLeadSeconds + 60)))
      << readWhole(tmp_.path() + "/playbook.log");
  // The control node dies: ansible-playbook, its forked workers and their ssh clients.
  ASSERT_EQ(::kill(-playbook_, SIGKILL), 0);
  ::waitpid(playbook_, nullptr, 0);
  playbook_ = -1;
  const auto killed = std::chrono::steady_clock::now();

  // Each daemon reverts at the fault's deadline; the sessions' clients end with the runs.
  for (const auto& h : hosts_) {
    EXPECT_TRUE(
        pollUntil([&] { return !holdsFault(h); }, std::chrono::seconds(kOutageSeconds + 30)))
        << h.name << ": " << serviceState(h);
    EXPECT_TRUE(pollUntil(
        [&] {
          const json r = runs(h);
          return r.is_array() && !r.empty() && std::all_of(r.begin(), r.end(), [](const json& run) {
                   return run.value("state", "") == "ended";
                 });
        },
        30s))
        << h.name << ": " << runs(h).dump();
    const json r = runs(h);
    ASSERT_TRUE(r.is_array() && !r.empty());
    EXPECT_EQ(r[0].value("outcome", ""), "ok") << "the run went to its end on its own";
    EXPECT_NE(openFaults(h).find("no faults held"), std::string::npos) << openFaults(h);
    EXPECT_TRUE(pollUntil([&] { return strangers(h).empty(); }, 30s))
        << h.name << " still runs: " << ::testing::PrintToString(strangers(h));
  }
  const double clean =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::printf(
      "control node killed while 3 hosts held their faults: all reverted and ended %.1f s later "
      "(fault duration %d s)\n",
      clean, kOutageSeconds);
  for (const auto& h : hosts_) {
    EXPECT_FALSE(holdsFault(h)) << h.name << ": " << serviceState(h);
    EXPECT_EQ(shellStatus("ip netns exec " + control_ + " curl -sf -m 5 -o /dev/null http://" +
                          h.address + ":8080/"),
              0)
        << h.name << ": the service answers again";
  }
}

}  // namespace
}  // namespace chaosd::testing
