// The daemon as deployed: a real Prometheus (Debian's package, run as a child with a temp
// config and storage, on loopback ports chosen free) scrapes chaosd's TCP /metrics and the
// series appear in its HTTP API; and the .deb builds (cpack), unpacks and its chaosd runs.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/DaemonProcess.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using chaosd::testing::DaemonProcess;
using chaosd::testing::fillExperiment;
using chaosd::testing::readWhole;
using chaosd::testing::runShell;
using chaosd::testing::TempDir;

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET over TCP; "" on any failure.
std::string httpGet(const std::string& url) {
  CURL* c = curl_easy_init();
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  return rc == CURLE_OK ? body : "";
}

uint16_t freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A child process killed (SIGTERM, then SIGKILL) and reaped on destruction.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& logPath) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

// Runs a command; its exit status and output (stderr merged).
std::pair<int, std::string> run(const std::string& command) {
  int status = -1;
  std::string out = runShell(command, &status);
  return {status, std::move(out)};
}

class DaemonDeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_FALSE(tmp_.path().empty());
  }
  TempDir tmp_;
};

TEST_F(DaemonDeployTest, PrometheusScrapesTheMetricsListenerAndTheSeriesAppearInItsApi) {
  ASSERT_TRUE(fs::exists("/usr/bin/prometheus")) << "scripts/bootstrap installs prometheus";
  const std::string data = tmp_.path() + "/data";
  fs::create_directories(data);
  DaemonProcess d(tmp_.path(), {"--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(d.waitReady()) << d.log();
  // The metrics listener may log its port just after the socket answers: wait for the line.
  std::smatch m;
  std::string log = d.log();
  const std::regex portLine("metrics listener address=\\S+ port=(\\d+)");
  for (auto until = std::chrono::steady_clock::now() + 10s;
       !std::regex_search(log, m, portLine) && std::chrono::steady_clock::now() < until;
       log = d.log()) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(std::regex_search(log, m, portLine)) << log;
  const std::string target = "127.0.0.1:" + m[1].str();
  // A run to the end, so the run and probe counters have values.
  auto submitted =
      d.client().request("POST", "/v1/runs?var=dir=" + data,
                         fillExperiment("scraped", "300ms", "300ms"), "application/yaml");
  ASSERT_TRUE(submitted.ok());
  ASSERT_EQ(submitted->status, 202) << submitted->body;
  const std::string id = submitted->json()["id"];
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = d.client().request("GET", "/v1/runs/" + id);
    if (r.ok() && r->json()["state"] == "ended") break;
    std::this_thread::sleep_for(50ms);
  }
  auto status = d.client().request("GET", "/v1/runs/" + id);
  const std::string runJson = status.ok() ? status->body : std::string("(no status)");
  std::string direct = httpGet("http://" + target + "/metrics");
  EXPECT_NE(direct.find("chaosd_runs_total{outcome=\"ok\"} 1"), std::string::npos)
      << direct << "\nthe run: " << runJson << "\n"
      << d.log();
  // The TCP listener serves /metrics only, never the API.
  EXPECT_NE(httpGet("http://" + target + "/v1/runs").find("\"not-found\""), std::string::npos);

  const uint16_t promPort = freeLoopbackPort();
  const std::string config = tmp_.path() + "/prometheus.yml";
  std::ofstream(config) << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                           "scrape_configs:\n  - job_name: chaosd\n    static_configs:\n"
                           "      - targets: ['"
                        << target << "']\n";
  Child prometheus({"/usr/bin/prometheus", "--config.file=" + config,
                    "--storage.tsdb.path=" + tmp_.path() + "/tsdb",
                    "--web.listen-address=127.0.0.1:" + std::to_string(promPort)},
                   tmp_.path() + "/prometheus.log");
  const std::string api = "http://127.0.0.1:" + std::to_string(promPort) + "/api/v1/query?query=";
  auto query = [&](const std::string& q) {
    char* esc = curl_easy_escape(nullptr, q.c_str(), static_cast<int>(q.size()));
    std::string url = api + esc;
    curl_free(esc);
    return json::parse(httpGet(url), nullptr, false);
  };
  json result;
  deadline = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < deadline) {
    result = query("chaosd_runs_total{outcome=\"ok\"}");
    if (result.is_object() && result["status"] == "success" && !result["data"]["result"].empty()) {
      break;
    }
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(result.is_object() && !result["data"]["result"].empty())
      << result.dump() << "\n"
      << readWhole(tmp_.path() + "/prometheus.log");
  EXPECT_EQ(result["data"]["result"][0]["value"][1], "1");
  EXPECT_EQ(result["data"]["result"][0]["metric"]["job"], "chaosd");
  for (const std::string series :
       {"chaosd_build_info", "chaosd_probe_samples_total", "chaosd_probe_failures_total",
        "chaosd_revert_failures_total", "chaosd_runs_active", "up"}) {
    auto r = query(series);
    EXPECT_TRUE(r.is_object() && !r["data"]["result"].empty()) << series << ": " << r.dump();
  }
  auto up = query("up{job=\"chaosd\"}");
  EXPECT_EQ(up["data"]["result"][0]["value"][1], "1");
  auto samples = query("chaosd_probe_samples_total");
  EXPECT_GT(std::stod(samples["data"]["result"][0]["value"][1].get<std::string>()), 0);
  EXPECT_EQ(query("chaosd_build_info")["data"]["result"][0]["metric"]["version"], CHAOSD_VERSION);
}

TEST_F(DaemonDeployTest, TheDebBuildsUnpacksAndItsChaosdRuns) {
  const std::string out = tmp_.path() + "/deb";
  auto [rc, text] =
      run("cd '" + std::string(CHAOSD_BINARY_DIR) + "' && cpack -G DEB -B '" + out + "'");
  ASSERT_EQ(rc, 0) << text;
  std::string deb;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().extension() == ".deb") deb = e.path();
  }
  ASSERT_FALSE(deb.empty()) << text;
  auto [crc, contents] = run("dpkg-deb -c '" + deb + "'");
  ASSERT_EQ(crc, 0) << contents;
  for (const char* f :
       {"./usr/bin/chaosd", "./usr/bin/chaosctl", "./usr/lib/systemd/system/chaosd.service",
        "./usr/share/man/man8/chaosd.8", "./usr/share/man/man1/chaosctl.1",
        "./usr/share/bash-completion/completions/chaosctl",
        "./usr/share/doc/chaosd/examples/disk-fill-tmpfs.yaml",
        // A demo's service script ships with its experiment (they used to be left out).
        "./usr/share/doc/chaosd/examples/demo/wal-demo.py",
        "./usr/share/doc/chaosd/kubernetes/chaosd-gameday-job.yaml",
        "./usr/share/doc/chaosd/ansible/ansible_collections/chaosd/chaos/galaxy.yml"}) {
    EXPECT_NE(contents.find(f), std::string::npos) << f << " missing from the .deb:\n" << contents;
  }
  auto [irc, info] = run("dpkg-deb -I '" + deb + "'");
  EXPECT_NE(info.find("libmicrohttpd"), std::string::npos) << info;
  EXPECT_NE(info.find("postinst"), std::string::npos) << info;
  const std::string root = tmp_.path() + "/root";
  auto [xrc, xtext] = run("dpkg-deb -x '" + deb + "' '" + root + "'");
  ASSERT_EQ(xrc, 0) << xtext;
  auto [vrc, version] = run("'" + root + "/usr/bin/chaosd' --version");
  EXPECT_EQ(vrc, 0) << version;
  EXPECT_EQ(version, std::string("chaosd ") + CHAOSD_VERSION + "\n");
  auto [hrc, help] = run("'" + root + "/usr/bin/chaosctl' --help");
  EXPECT_EQ(hrc, 0);
  EXPECT_NE(help.find("submit"), std::string::npos);
  auto [mrc, man] = run("MANWIDTH=80 man -l '" + root + "/usr/share/man/man8/chaosd.8' | head -5");
  EXPECT_NE(man.find("chaosd"), std::string::npos) << man;
}

}  // namespace
}  // namespace chaosd
