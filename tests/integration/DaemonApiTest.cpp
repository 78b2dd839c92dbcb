// The daemon through a real client over its UNIX socket: every endpoint, errors as JSON with
// codes, a caller that is not root refused, leftovers of an earlier life reverted before the
// socket answers, schedules surviving a restart, 100 concurrent clients during a run.
#include <curl/curl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "chaosd/base/ProcessTable.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "tests/support/ConsoleHttp.h"
#include "tests/support/DaemonProcess.h"
#include "tests/support/FreePort.h"
#include "tests/support/RunAs.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using chaosd::testing::DaemonProcess;
using chaosd::testing::fillExperiment;
using chaosd::testing::TempDir;

std::vector<std::string> fillFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-fill-", 0) == 0) out.push_back(e.path());
  }
  return out;
}

class DaemonApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_FALSE(tmp_.path().empty());
    data_ = tmp_.path() + "/data";
    fs::create_directories(data_);
  }

  // The request through the real client; fails the test when the daemon cannot be reached.
  cli::DaemonResponse call(DaemonProcess& d, const std::string& method, const std::string& path,
                           const std::string& body = "",
                           const std::string& type = "application/json") {
    auto r = d.client().request(method, path, body, type);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : cli::DaemonResponse{};
  }

  // Waits (polling the API) until the run has ended; its status.
  json waitEnded(DaemonProcess& d, const std::string& id, std::chrono::seconds timeout = 60s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json run;
    while (std::chrono::steady_clock::now() < deadline) {
      run = call(d, "GET", "/v1/runs/" + id).json();
      if (run.value("state", "") == "ended") return run;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "run " << id << " did not end: " << run.dump();
    return run;
  }

  void expectError(const cli::DaemonResponse& r, long status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = r.json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_EQ(j["error"]["status"], status);
    EXPECT_EQ(j["error"]["code"], code);
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }

  TempDir tmp_;
  std::string data_;
};

TEST_F(DaemonApiTest, EveryEndpointAnswersAndErrorsAreJsonWithCodes) {
  DaemonProcess d(tmp_.path());
  ASSERT_TRUE(d.waitReady()) << d.log();

  auto health = call(d, "GET", "/v1/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json()["status"], "ok");
  auto version = call(d, "GET", "/v1/version");
  EXPECT_EQ(version.json()["version"], CHAOSD_VERSION);
  EXPECT_EQ(version.json()["journalSchema"], kJournalSchemaVersion);

  // Submit as YAML with ?var=, and a second one on the same path: refused, naming the run.
  const std::string yaml = fillExperiment("api-fill", "1s", "1s");
  auto submitted = call(d, "POST", "/v1/runs?var=dir=" + data_, yaml, "application/yaml");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const std::string id = submitted.json()["id"];
  auto conflict =
      call(d, "POST", "/v1/runs", json{{"experiment", yaml}, {"vars", {{"dir", data_}}}}.dump());
  expectError(conflict, 409, "conflict");
  EXPECT_NE(conflict.errorMessage().find(id), std::string::npos) << conflict.body;
  EXPECT_NE(conflict.errorMessage().find(data_), std::string::npos) << conflict.body;

  auto live = call(d, "GET", "/v1/runs/" + id).json();
  EXPECT_EQ(live["state"], "running");
  ASSERT_TRUE(live.contains("progress")) << live.dump();
  EXPECT_TRUE(live["progress"].contains("phase"));
  auto list = call(d, "GET", "/v1/runs").json();
  ASSERT_FALSE(list["runs"].empty());
  EXPECT_EQ(list["runs"][0]["id"], id);

  // A report before the end is a conflict; after it, every format.
  auto early = call(d, "GET", "/v1/runs/" + id + "/report?format=html");
  if (early.status != 200) expectError(early, 409, "conflict");
  json ended = waitEnded(d, id);
  EXPECT_EQ(ended["outcome"], "ok") << ended.dump();
  EXPECT_EQ(ended["exitCode"], 0);
  ASSERT_EQ(ended["faults"].size(), 1u);
  EXPECT_EQ(ended["faults"][0]["state"], "reverted");
  EXPECT_TRUE(fillFiles(data_).empty());
  for (const auto& [format, needle] : std::vector<std::pair<std::string, std::string>>{
           {"json", "\"runId\""}, {"junit", "<testsuite"}, {"html", "<html"}, {"md", "api-fill"}}) {
    auto rep = call(d, "GET", "/v1/runs/" + id + "/report?format=" + format);
    EXPECT_EQ(rep.status, 200) << format;
    EXPECT_NE(rep.body.find(needle), std::string::npos) << format;
  }
  expectError(call(d, "GET", "/v1/runs/" + id + "/report?format=pdf"), 400, "invalid");
  expectError(call(d, "POST", "/v1/runs/" + id + "/abort"), 409, "conflict");
  expectError(call(d, "GET", "/v1/runs/0123456789abcdef"), 404, "not-found");
  expectError(call(d, "GET", "/v1/runs/../../etc"), 404, "not-found");

  // Abort a run in progress: it ends aborted and its fault is reverted.
  auto second = call(d, "POST", "/v1/runs?var=dir=" + data_,
                     fillExperiment("api-abort", "500ms", "30s"), "application/yaml");
  ASSERT_EQ(second.status, 202) << second.body;
  const std::string id2 = second.json()["id"];
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (fillFiles(data_).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(fillFiles(data_).size(), 1u);
  auto held = call(d, "GET", "/v1/faults").json();
  ASSERT_EQ(held["faults"].size(), 1u) << held.dump();
  EXPECT_EQ(held["faults"][0]["type"], "disk.fill");
  EXPECT_EQ(held["faults"][0]["ownerAlive"], true);
  auto aborting = call(d, "POST", "/v1/runs/" + id2 + "/abort");
  EXPECT_EQ(aborting.status, 202) << aborting.body;
  json aborted = waitEnded(d, id2);
  EXPECT_EQ(aborted["outcome"], "aborted");
  EXPECT_EQ(aborted["exitCode"], 3);
  EXPECT_TRUE(fillFiles(data_).empty());
  EXPECT_TRUE(call(d, "GET", "/v1/faults").json()["faults"].empty());

  auto recovered = call(d, "POST", "/v1/recover");
  EXPECT_EQ(recovered.status, 200) << recovered.body;
  EXPECT_EQ(recovered.json()["reverted"], 0);

  // Invalid experiments: every diagnostic, nothing run.
  auto invalid =
      call(d, "POST", "/v1/runs", "apiVersion: chaosd/v1\nkind: Experiment\n", "application/yaml");
  expectError(invalid, 400, "invalid");
  EXPECT_FALSE(invalid.json()["error"]["diagnostics"].empty());
  expectError(call(d, "POST", "/v1/runs", "{not json"), 400, "invalid");
  expectError(call(d, "POST", "/v1/runs", std::string(3 * 1024 * 1024, 'x'), "application/yaml"),
              413, "too-large");

  // Schedules: create (the request's cron over the file's), list, get, pause, resume, delete.
  auto created = call(d, "POST", "/v1/schedules",
                      json{{"experiment", yaml},
                           {"vars", {{"dir", data_}}},
                           {"cron", "30 3 * * sun"},
                           {"timezone", "Europe/Berlin"},
                           {"window", "03:00-04:00"},
                           {"maxRuns", 2}}
                          .dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string sid = created.json()["id"];
  EXPECT_EQ(created.json()["timezone"], "Europe/Berlin");
  EXPECT_FALSE(created.json()["nextRunAt"].is_null());
  EXPECT_EQ(call(d, "GET", "/v1/schedules").json()["schedules"].size(), 1u);
  EXPECT_EQ(call(d, "GET", "/v1/schedules/" + sid).json()["cron"], "30 3 * * sun");
  auto paused = call(d, "POST", "/v1/schedules/" + sid + "/pause").json();
  EXPECT_EQ(paused["paused"], true);
  EXPECT_TRUE(paused["nextRunAt"].is_null());
  EXPECT_EQ(call(d, "POST", "/v1/schedules/" + sid + "/resume").json()["paused"], false);
  expectError(
      call(d, "POST", "/v1/schedules",
           json{{"experiment", yaml}, {"vars", {{"dir", data_}}}, {"cron", "61 * * * *"}}.dump()),
      400, "invalid");
  expectError(
      call(d, "POST", "/v1/schedules",
           json{{"experiment", yaml}, {"cron", "* * * * *"}, {"timezone", "Mars/Olympus"}}.dump()),
      404, "not-found");
  EXPECT_EQ(call(d, "DELETE", "/v1/schedules/" + sid).status, 200);
  expectError(call(d, "DELETE", "/v1/schedules/" + sid), 404, "not-found");

  // Routing errors.
  expectError(call(d, "GET", "/v2/health"), 404, "not-found");
  expectError(call(d, "GET", "/v1/nothing"), 404, "not-found");
  auto wrong = call(d, "DELETE", "/v1/health");
  expectError(wrong, 405, "method-not-allowed");

  // Metrics on the socket too.
  auto metrics = call(d, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.contentType.find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("chaosd_runs_total{outcome=\"ok\"} 1"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("chaosd_runs_total{outcome=\"aborted\"} 1"), std::string::npos);

  EXPECT_EQ(d.stop(), 0);
  EXPECT_FALSE(fs::exists(d.socket()));
}

TEST_F(DaemonApiTest, CallerThatIsNotRootNorInTheGroupIsRefusedWith403AndALogLine) {
  // A group name that does not exist: root only.
  DaemonProcess d(tmp_.path(), {"--group", "chaosd-test-absent"});
  ASSERT_TRUE(d.waitReady()) << d.log();
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // Let anyone connect, so the refusal is the daemon's (SO_PEERCRED), not the file mode's.
  ASSERT_EQ(::chmod(d.socket().c_str(), 0666), 0);

  // As nobody, from a copy of chaosctl that nobody can reach wherever the build tree lies.
  const auto r = chaosd::testing::runAs(65534, 65534, CHAOSCTL_PATH,
                                        {"runs", "--socket", d.socket(), "--output", "json"});
  ASSERT_EQ(r.error, "");
  const std::string& text = r.output;
  EXPECT_EQ(r.status, 5) << text;  // a runtime error, as for any refusal
  auto j = json::parse(text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << text;
  EXPECT_EQ(j["error"]["status"], 403);
  EXPECT_EQ(j["error"]["code"], "forbidden");
  std::string log = d.log();
  EXPECT_NE(log.find("caller refused"), std::string::npos) << log;
  EXPECT_NE(log.find("uid=65534"), std::string::npos) << log;
  // Root still gets in.
  EXPECT_EQ(call(d, "GET", "/v1/health").status, 200);
}

TEST_F(DaemonApiTest, LeftoverOfAnEarlierLifeIsRevertedBeforeTheSocketAnswers) {
  const std::string stateDir = tmp_.path() + "/state";
  std::string file;
  {
    auto journal = openJournal(stateDir + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.error().describe();
    // The earlier daemon: a process that is gone.
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    ASSERT_TRUE(journal
                    ->beginRun(RunRecord{"earlier",
                                         "earlier-life",
                                         dead,
                                         1,
                                         std::chrono::system_clock::now(),
                                         std::nullopt,
                                         "",
                                         {},
                                         nlohmann::json::object(),
                                         currentBootId()})
                    .ok());
    TargetSpec target;
    target.name = "data";
    target.kind = TargetKind::kPath;
    target.path = data_;
    FaultRequest req;
    req.runId = "earlier";
    req.faultId = "earlier-1";
    req.stepName = "fill";
    req.faultType = "disk.fill";
    req.target = &target;
    req.args = {{"size", 1 << 20}};
    req.duration = 1h;
    DiskFillInjector injector;
    auto prepared = injector.prepare(req);
    ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
    ASSERT_TRUE(
        journal
            ->recordIntent("earlier",
                           makeIntent(req, *prepared, std::chrono::system_clock::now() + 1h, true))
            .ok());
    ASSERT_TRUE(injector.apply("earlier-1", prepared->undo).ok());
    ASSERT_TRUE(journal->markApplied("earlier-1").ok());
    auto files = fillFiles(data_);
    ASSERT_EQ(files.size(), 1u);
    file = files[0];
  }
  DaemonProcess d(tmp_.path());
  // The first moment the socket accepts a connection, the fault is already gone.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!d.accepts() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(d.accepts()) << d.log();
  EXPECT_FALSE(fs::exists(file)) << "the socket answered while the leftover was still there";
  auto held = call(d, "GET", "/v1/faults").json();
  EXPECT_TRUE(held["faults"].empty()) << held.dump();
  auto run = call(d, "GET", "/v1/runs/earlier").json();
  EXPECT_EQ(run["outcome"], "recovered") << run.dump();
  EXPECT_EQ(run["faults"][0]["state"], "reverted");
  EXPECT_EQ(run["faults"][0]["revertedBy"], "daemon-start");
  // The socket accepts from listen(); the line saying so is written right after it.
  std::string log = d.log();
  for (auto until = std::chrono::steady_clock::now() + 10s;
       log.find("serving socket=") == std::string::npos && std::chrono::steady_clock::now() < until;
       log = d.log()) {
    std::this_thread::sleep_for(5ms);
  }
  auto recovery = log.find("recovery at start reverted=1");
  auto serving = log.find("serving socket=");
  ASSERT_NE(recovery, std::string::npos) << log;
  ASSERT_NE(serving, std::string::npos) << log;
  EXPECT_LT(recovery, serving);
}

TEST_F(DaemonApiTest, SchedulesSurviveARestart) {
  std::string sid;
  {
    DaemonProcess d(tmp_.path());
    ASSERT_TRUE(d.waitReady()) << d.log();
    auto created = call(d, "POST", "/v1/schedules",
                        json{{"experiment", fillExperiment("gameday")},
                             {"vars", {{"dir", data_}}},
                             {"cron", "0 3 * * tue"},
                             {"timezone", "America/New_York"},
                             {"maxRuns", 4}}
                            .dump());
    ASSERT_EQ(created.status, 201) << created.body;
    sid = created.json()["id"];
    auto second = call(d, "POST", "/v1/schedules",
                       json{{"experiment", fillExperiment("paused-one")},
                            {"vars", {{"dir", data_}}},
                            {"cron", "*/10 * * * *"}}
                           .dump());
    ASSERT_EQ(second.status, 201);
    ASSERT_EQ(call(d, "POST", "/v1/schedules/" + second.json()["id"].get<std::string>() + "/pause")
                  .status,
              200);
    EXPECT_EQ(d.stop(), 0);
  }
  DaemonProcess d(tmp_.path());
  ASSERT_TRUE(d.waitReady()) << d.log();
  auto list = call(d, "GET", "/v1/schedules").json()["schedules"];
  ASSERT_EQ(list.size(), 2u) << list.dump();
  auto it = std::find_if(list.begin(), list.end(), [&](const json& s) { return s["id"] == sid; });
  ASSERT_NE(it, list.end());
  EXPECT_EQ((*it)["cron"], "0 3 * * tue");
  EXPECT_EQ((*it)["timezone"], "America/New_York");
  EXPECT_EQ((*it)["maxRuns"], 4);
  EXPECT_EQ((*it)["paused"], false);
  // 03:00 in New York is 07:00 or 08:00 UTC, on a Tuesday.
  std::string next = (*it)["nextRunAt"];
  EXPECT_TRUE(next.find("T07:00:00") != std::string::npos ||
              next.find("T08:00:00") != std::string::npos)
      << next;
  auto other =
      std::find_if(list.begin(), list.end(), [&](const json& s) { return s["id"] != sid; });
  EXPECT_EQ((*other)["paused"], true);
  EXPECT_NE(d.log().find("schedules loaded count=2"), std::string::npos);
}

TEST_F(DaemonApiTest, HundredConcurrentClientsDuringARunGetNoErrors) {
  // The web console is on too, and takes the same load over TCP at the same time (below).
  const uint16_t consolePort = chaosd::testing::freeLoopbackPorts();
  ASSERT_NE(consolePort, 0);
  DaemonProcess d(tmp_.path(), {"--console-listen", std::to_string(consolePort)});
  ASSERT_TRUE(d.waitReady()) << d.log();
  chaosd::testing::ConsoleHttp console(consolePort);
  auto session =
      chaosd::testing::consoleLogin(console, chaosd::testing::issueConsoleToken(d, true));
  ASSERT_FALSE(session.cookie.empty());
  auto submitted = call(d, "POST", "/v1/runs?var=dir=" + data_,
                        fillExperiment("under-load", "60s", "1s"), "application/yaml");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const std::string id = submitted.json()["id"];
  curl_global_init(CURL_GLOBAL_ALL);
  constexpr int kClients = 100;
  constexpr int kRequestsEach = 20;
  std::atomic<int> ok{0};
  std::atomic<int> errors{0};
  std::atomic<bool> runningSeen{true};
  std::mutex firstErrorMu;
  std::string firstError;
  std::vector<double> latencies(kClients * kRequestsEach);
  std::vector<std::thread> threads;
  auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      cli::DaemonClient client(d.socket());
      for (int i = 0; i < kRequestsEach; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto r = client.request("GET", i % 2 == 0 ? "/v1/runs/" + id : "/v1/runs?limit=10");
        latencies[static_cast<size_t>(c * kRequestsEach + i)] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (r.ok() && r->status == 200 && r->json().is_object()) {
          ++ok;
          if (i % 2 == 0 && r->json()["state"] != "running") runningSeen = false;
        } else {
          ++errors;
          std::lock_guard lock(firstErrorMu);
          if (firstError.empty()) {
            firstError = r.ok() ? std::to_string(r->status) + " " + r->body : r.error().describe();
          }
        }
      }
    });
  }
  // The console: 100 more clients over TCP at the same time, each with the session's cookie
  // (pages, scripts, the run, the list, faults, schedules), while 5 live views stream the run.
  std::atomic<int> consoleOk{0};
  std::atomic<int> consoleErrors{0};
  std::vector<double> consoleLatencies(kClients * kRequestsEach);
  std::atomic<int> streamsOpen{0};
  std::vector<std::thread> streams;
  for (int sse = 0; sse < 5; ++sse) {
    streams.emplace_back([&] {
      // A live view reads until the run ends (its abort below), well within curl's 30 s.
      auto r = console.request("GET", "/api/v1/runs/" + id + "/events", {session.cookie});
      if (r.status == 200 && r.body.find("\"type\":\"sample\"") != std::string::npos) {
        ++streamsOpen;
      }
    });
  }
  const std::vector<std::string> consolePaths = {"/api/v1/runs/" + id,
                                                 "/api/v1/runs?limit=10&details=1",
                                                 "/",
                                                 "/static/app.js",
                                                 "/api/v1/faults",
                                                 "/api/v1/schedules",
                                                 "/api/session"};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < kRequestsEach; ++i) {
        auto start = std::chrono::steady_clock::now();
        const std::string& path = consolePaths[static_cast<size_t>(c + i) % consolePaths.size()];
        auto r = console.request("GET", path, {session.cookie});
        consoleLatencies[static_cast<size_t>(c * kRequestsEach + i)] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (r.status == 200 && !r.body.empty()) {
          ++consoleOk;
        } else {
          ++consoleErrors;
          std::lock_guard lock(firstErrorMu);
          if (firstError.empty()) firstError = "console " + path + ": " + std::to_string(r.status);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(latencies.begin(), latencies.end());
  std::sort(consoleLatencies.begin(), consoleLatencies.end());
  std::printf(
      "100 clients x 20 requests: %d ok, %d errors in %.2f s (%.0f req/s); latency p50 "
      "%.1f ms, p99 %.1f ms, max %.1f ms\n",
      ok.load(), errors.load(), seconds, (ok + errors) / seconds, latencies[latencies.size() / 2],
      latencies[latencies.size() * 99 / 100], latencies.back());
  std::printf(
      "and at the same time, console over TCP: 100 clients x 20 requests: %d ok, %d errors; "
      "latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; 5 live streams open\n",
      consoleOk.load(), consoleErrors.load(), consoleLatencies[consoleLatencies.size() / 2],
      consoleLatencies[consoleLatencies.size() * 99 / 100], consoleLatencies.back());
  EXPECT_EQ(errors.load(), 0) << "the first: " << firstError;
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
  EXPECT_EQ(consoleErrors.load(), 0) << "the first: " << firstError;
  EXPECT_EQ(consoleOk.load(), kClients * kRequestsEach);
  EXPECT_TRUE(runningSeen.load()) << "the run ended during the load; it should still be running";
  EXPECT_EQ(call(d, "POST", "/v1/runs/" + id + "/abort").status, 202);
  EXPECT_EQ(waitEnded(d, id)["outcome"], "aborted");
  // The run's end ends the live streams, each having carried samples.
  for (auto& t : streams) t.join();
  EXPECT_EQ(streamsOpen.load(), 5);
}

TEST_F(DaemonApiTest, SigtermAbortsRunsRevertsTheirFaultsAndExitsCleanly) {
  DaemonProcess d(tmp_.path());
  ASSERT_TRUE(d.waitReady()) << d.log();
  auto submitted = call(d, "POST", "/v1/runs?var=dir=" + data_,
                        fillExperiment("stopped", "200ms", "60s"), "application/yaml");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (fillFiles(data_).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(fillFiles(data_).size(), 1u);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(d.stop(), 0);
  std::printf(
      "SIGTERM to exit with one run holding a fault: %.0f ms\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_TRUE(fillFiles(data_).empty());
  auto journal = openJournal(tmp_.path() + "/state/journal.db", JournalOpen::kExisting);
  ASSERT_TRUE(journal.ok());
  EXPECT_TRUE(journal->unreverted()->empty());
  auto run = journal->run(submitted.json()["id"].get<std::string>());
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->outcome, "aborted");
}

}  // namespace
}  // namespace chaosd
