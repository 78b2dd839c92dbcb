// The web console's security, against a real chaosd: off by default; no token, no access
// (401); a read-only token cannot abort, submit or pause (403) and the run and its fault are
// untouched; cross-site and CSRF-less state changes are refused; a foreign Host is refused
// (DNS rebinding); every response carries the CSP, frame and nosniff headers and never a CORS
// header; tokens are stored hashed and a revoked one ends its session; a token issued by a
// caller that is not root carries that caller's policy; a submitted command runs as its argv,
// never through a shell.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "chaosd/base/Sha256.h"
#include "tests/support/ConsoleHttp.h"
#include "tests/support/DaemonProcess.h"
#include "tests/support/FreePort.h"
#include "tests/support/RunAs.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::ConsoleHttp;
using testing::ConsoleLogin;
using testing::ConsoleReply;
using testing::DaemonProcess;
using testing::fillExperiment;
using testing::TempDir;

bool hasFill(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".chaosd-fill-", 0) == 0) return true;
  }
  return false;
}

class ConsoleSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "root tier";
    ASSERT_FALSE(tmp_.path().empty());
    data_ = tmp_.path() + "/data";
    fs::create_directories(data_);
    port_ = testing::freeLoopbackPorts();
    ASSERT_NE(port_, 0);
  }

  std::unique_ptr<DaemonProcess> start(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--console-listen", std::to_string(port_), "--policy",
                               tmp_.path() + "/no-policy.yaml"});
    auto d = std::make_unique<DaemonProcess>(tmp_.path(), extra);
    EXPECT_TRUE(d->waitReady()) << d->log();
    return d;
  }

  // A disk fill held for a minute, submitted over the socket as root; its id.
  std::string startFill(DaemonProcess& d) {
    auto r = d.client().request("POST", "/v1/runs?var=dir=" + data_,
                                fillExperiment("held", "300ms", "60s"), "application/yaml");
    EXPECT_TRUE(r.ok() && r->status == 202) << (r.ok() ? r->body : r.error().describe());
    const std::string id = r.ok() ? r->json().value("id", "") : "";
    EXPECT_TRUE(testing::waitUntil([&] { return hasFill(data_); }, 20s)) << d.log();
    return id;
  }

  std::string stateOf(DaemonProcess& d, const std::string& id) {
    auto r = d.client().request("GET", "/v1/runs/" + id);
    return r.ok() ? r->json().value("state", "") : "";
  }

  std::vector<std::string> changeHeaders(const ConsoleLogin& s, const ConsoleHttp& http) {
    return {s.cookie, "Origin: " + http.origin(), "X-CSRF-Token: " + s.csrf,
            "Content-Type: application/json"};
  }

  TempDir tmp_;
  std::string data_;
  uint16_t port_ = 0;
};

TEST_F(ConsoleSecurityTest, OffByDefault) {
  DaemonProcess d(tmp_.path());
  ASSERT_TRUE(d.waitReady()) << d.log();
  auto r = d.client().request("POST", "/v1/console/tokens", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_EQ(d.log().find("console listener"), std::string::npos);
}

TEST_F(ConsoleSecurityTest, WithoutATokenEverythingButTheLoginPageIs401) {
  auto d = start();
  ConsoleHttp http(port_);
  EXPECT_NE(d->log().find("console listener address=127.0.0.1:" + std::to_string(port_)),
            std::string::npos);
  for (const char* path :
       {"/api/v1/runs", "/api/v1/faults", "/api/v1/schedules", "/api/session", "/api/v1/health"}) {
    EXPECT_EQ(http.request("GET", path).status, 401) << path;
  }
  auto root = http.request("GET", "/");
  EXPECT_EQ(root.status, 303);
  EXPECT_EQ(root.header("location"), "/login");
  EXPECT_EQ(http.request("GET", "/login").status, 200);
  // A wrong token, and a forged cookie, get nothing.
  auto wrong = http.request(
      "POST", "/login", {"Content-Type: application/json", "Origin: " + http.origin()},
      R"({"token":"chaosd_0000000000000000000000000000000000000000000000000000000000000000"})");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(wrong.setCookies.empty());
  EXPECT_EQ(http.request("GET", "/api/v1/runs", {"Cookie: chaosd_session=" + std::string(64, 'a')})
                .status,
            401);
  // Not served through the console at all, whatever the session: recovery, schedule deletion,
  // and minting tokens.
  const std::string token = testing::issueConsoleToken(*d, false);
  ASSERT_FALSE(token.empty());
  auto s = testing::consoleLogin(http, token);
  ASSERT_FALSE(s.cookie.empty());
  EXPECT_EQ(http.request("POST", "/api/v1/recover", changeHeaders(s, http)).status, 404);
  EXPECT_EQ(http.request("POST", "/api/v1/console/tokens", changeHeaders(s, http), "{}").status,
            404);
}

TEST_F(ConsoleSecurityTest, EveryResponseHasTheSecurityHeadersAndNoCors) {
  auto d = start();
  ConsoleHttp http(port_);
  auto s = testing::consoleLogin(http, testing::issueConsoleToken(*d, true));
  ASSERT_FALSE(s.cookie.empty());
  const std::string evil = "Origin: http://evil.example";
  std::vector<ConsoleReply> replies = {
      http.request("GET", "/", {evil}),
      http.request("GET", "/login", {evil}),
      http.request("GET", "/static/app.js", {evil}),
      http.request("GET", "/api/v1/runs", {evil}),
      http.request("GET", "/api/v1/runs", {s.cookie, evil}),
      http.request("GET", "/", {s.cookie}),
      http.request("OPTIONS", "/api/v1/runs",
                   {evil, "Access-Control-Request-Method: POST",
                    "Access-Control-Request-Headers: x-csrf-token"}),
      http.request("GET", "/nowhere", {evil}),
  };
  for (const auto& r : replies) {
    ASSERT_NE(r.status, 0) << r.body;
    const std::string csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(r.header("x-frame-options"), "DENY");
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    for (const auto& [name, value] : r.headers) {
      EXPECT_NE(name.rfind("access-control-", 0), 0u) << name << ": " << value;
    }
  }
  EXPECT_EQ(replies[6].status, 405);  // a preflight is not answered
  // The session cookie: HttpOnly, SameSite=Strict.
  auto login =
      http.request("POST", "/login", {"Content-Type: application/json", "Origin: " + http.origin()},
                   json{{"token", testing::issueConsoleToken(*d, true)}}.dump());
  ASSERT_EQ(login.setCookies.size(), 1u);
  EXPECT_NE(login.setCookies[0].find("HttpOnly"), std::string::npos);
  EXPECT_NE(login.setCookies[0].find("SameSite=Strict"), std::string::npos);
  // The pages load nothing inline: no <script> with a body, no style attribute.
  const std::string app = http.request("GET", "/", {s.cookie}).body;
  EXPECT_NE(app.find("<script src=\"/static/app.js\""), std::string::npos);
  EXPECT_EQ(app.find("<script>"), std::string::npos);
  EXPECT_EQ(app.find("style="), std::string::npos);
}

TEST_F(ConsoleSecurityTest, ReadOnlyTokenCannotAbortSubmitOrPause) {
  auto d = start();
  ConsoleHttp http(port_);
  const std::string id = startFill(*d);
  auto sched = d->client().request("POST", "/v1/schedules",
                                   json{{"experiment", fillExperiment("nightly")},
                                        {"vars", {{"dir", data_}}},
                                        {"cron", "0 3 * * *"}}
                                       .dump());
  ASSERT_TRUE(sched.ok() && sched->status == 201) << (sched.ok() ? sched->body : "");
  const std::string sid = sched->json()["id"];

  auto ro = testing::consoleLogin(http, testing::issueConsoleToken(*d, true));
  ASSERT_EQ(ro.role, "read");
  EXPECT_EQ(http.request("GET", "/api/v1/runs/" + id, {ro.cookie}).status, 200);
  EXPECT_EQ(http.request("GET", "/api/v1/faults", {ro.cookie}).json()["faults"].size(), 1u);
  auto abort = http.request("POST", "/api/v1/runs/" + id + "/abort", changeHeaders(ro, http));
  EXPECT_EQ(abort.status, 403) << abort.body;
  auto submit = http.request(
      "POST", "/api/v1/runs", changeHeaders(ro, http),
      json{{"experiment", fillExperiment("other")}, {"vars", {{"dir", tmp_.path()}}}}.dump());
  EXPECT_EQ(submit.status, 403) << submit.body;
  EXPECT_EQ(
      http.request("POST", "/api/v1/schedules/" + sid + "/pause", changeHeaders(ro, http)).status,
      403);
  // Validating is reading: allowed.
  EXPECT_EQ(http.request("POST", "/api/v1/policy/check", changeHeaders(ro, http),
                         json{{"experiment", fillExperiment("check")}}.dump())
                .status,
            200);
  EXPECT_EQ(stateOf(*d, id), "running");
  EXPECT_TRUE(hasFill(data_));
  EXPECT_EQ(d->client().request("GET", "/v1/schedules/" + sid)->json()["paused"], false);

  // The operate token may; the fault is reverted (the file is gone).
  auto op = testing::consoleLogin(http, testing::issueConsoleToken(*d, false));
  ASSERT_EQ(op.role, "operate");
  EXPECT_EQ(
      http.request("POST", "/api/v1/schedules/" + sid + "/pause", changeHeaders(op, http)).status,
      200);
  auto aborted = http.request("POST", "/api/v1/runs/" + id + "/abort", changeHeaders(op, http));
  EXPECT_EQ(aborted.status, 202) << aborted.body;
  EXPECT_TRUE(testing::waitUntil([&] { return stateOf(*d, id) == "ended"; }, 30s));
  EXPECT_FALSE(hasFill(data_));
}

TEST_F(ConsoleSecurityTest, CrossSiteAndCsrfLessChangesAreRefused) {
  auto d = start();
  ConsoleHttp http(port_);
  const std::string id = startFill(*d);
  auto s = testing::consoleLogin(http, testing::issueConsoleToken(*d, false));
  ASSERT_FALSE(s.cookie.empty());
  const std::string path = "/api/v1/runs/" + id + "/abort";
  // A form on another site posting to the console (as if the browser had sent the cookie).
  auto form = http.request(
      "POST", path,
      {s.cookie, "Origin: http://evil.example", "Content-Type: application/x-www-form-urlencoded"},
      "x=1");
  EXPECT_EQ(form.status, 403) << form.body;
  // The same without an Origin, from the right Origin without the CSRF token, with a wrong
  // one, and marked cross-site by the browser.
  EXPECT_EQ(http.request("POST", path, {s.cookie, "X-CSRF-Token: " + s.csrf}).status, 403);
  EXPECT_EQ(http.request("POST", path, {s.cookie, "Origin: " + http.origin()}).status, 403);
  EXPECT_EQ(http.request("POST", path,
                         {s.cookie, "Origin: " + http.origin(), "X-CSRF-Token: " + s.csrf + "0"})
                .status,
            403);
  EXPECT_EQ(http.request("POST", path,
                         {s.cookie, "Origin: " + http.origin(), "X-CSRF-Token: " + s.csrf,
                          "Sec-Fetch-Site: cross-site"})
                .status,
            403);
  // A login from another site (login CSRF), and a page under a foreign Host (DNS rebinding).
  EXPECT_EQ(http.request("POST", "/login",
                         {"Origin: http://evil.example", "Content-Type: application/json"},
                         json{{"token", testing::issueConsoleToken(*d, false)}}.dump())
                .status,
            403);
  EXPECT_EQ(
      http.request("GET", "/api/v1/runs", {s.cookie, "Host: evil.example:" + std::to_string(port_)})
          .status,
      421);
  EXPECT_EQ(stateOf(*d, id), "running");
  EXPECT_TRUE(hasFill(data_));
  EXPECT_NE(d->log().find("console request refused"), std::string::npos);
  // With everything right it works.
  EXPECT_EQ(http.request("POST", path, changeHeaders(s, http)).status, 202);
  EXPECT_TRUE(testing::waitUntil([&] { return stateOf(*d, id) == "ended"; }, 30s));
  EXPECT_FALSE(hasFill(data_));
}

TEST_F(ConsoleSecurityTest, TokensAreStoredHashedAndRevokingEndsTheSession) {
  auto d = start();
  ConsoleHttp http(port_);
  auto issued = d->client().request("POST", "/v1/console/tokens", R"({"role":"read","ttl":"10m"})");
  ASSERT_TRUE(issued.ok() && issued->status == 201);
  const std::string token = issued->json()["token"];
  const std::string tokenId = issued->json()["id"];
  EXPECT_EQ(token.size(), 7u + 64u);
  const std::string file = d->stateDir() + "/console-tokens.json";
  const std::string stored = testing::readWhole(file);
  EXPECT_EQ(stored.find(token.substr(7)), std::string::npos) << "the secret is on disk";
  EXPECT_NE(stored.find(sha256Hex(token)), std::string::npos);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto s = testing::consoleLogin(http, token);
  ASSERT_FALSE(s.cookie.empty());
  EXPECT_EQ(http.request("GET", "/api/v1/runs", {s.cookie}).status, 200);
  // The login form works without JavaScript too: a form post, then 303 to the console.
  const std::vector<std::string> form = {"Origin: " + http.origin(),
                                         "Content-Type: application/x-www-form-urlencoded"};
  auto posted = http.request("POST", "/login", form, "token=" + token);
  EXPECT_EQ(posted.status, 303);
  EXPECT_EQ(posted.header("location"), "/");
  EXPECT_EQ(posted.setCookies.size(), 1u);
  auto refused = http.request("POST", "/login", form, "token=" + token + "%30");
  EXPECT_EQ(refused.status, 303);
  EXPECT_EQ(refused.header("location"), "/login#refused");
  EXPECT_TRUE(refused.setCookies.empty());
  auto revoked = d->client().request("DELETE", "/v1/console/tokens/" + tokenId);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->status, 200) << revoked->body;
  EXPECT_EQ(http.request("GET", "/api/v1/runs", {s.cookie}).status, 401);
  EXPECT_TRUE(testing::consoleLogin(http, token).cookie.empty());
  // A ttl beyond 30 days is refused.
  EXPECT_EQ(d->client().request("POST", "/v1/console/tokens", R"({"ttl":"31d"})")->status, 400);
}

TEST_F(ConsoleSecurityTest, ATokenOfACallerThatIsNotRootCarriesTheirPolicy) {
  // nobody, let in by the daemon's group (nogroup), with no grant: may read, not submit.
  auto d = start({"--group", "nogroup"});
  ConsoleHttp http(port_);
  auto minted =
      testing::runAs(65534, 65534, CHAOSCTL_PATH, {"console", "token", "--socket", d->socket()});
  ASSERT_EQ(minted.status, 0) << minted.error << minted.output;
  const std::string token = minted.output.substr(0, minted.output.find('\n'));
  auto s = testing::consoleLogin(http, token);
  ASSERT_EQ(s.role, "operate");
  EXPECT_EQ(http.request("GET", "/api/session", {s.cookie}).json()["issuer"]["uid"], 65534);
  auto submit = http.request(
      "POST", "/api/v1/runs", changeHeaders(s, http),
      json{{"experiment", fillExperiment("as-nobody")}, {"vars", {{"dir", data_}}}}.dump());
  EXPECT_EQ(submit.status, 403) << submit.body;
  EXPECT_NE(submit.body.find("refused by policy"), std::string::npos) << submit.body;
  EXPECT_NE(submit.body.find("65534"), std::string::npos) << submit.body;
  EXPECT_FALSE(hasFill(data_));
  // Root's run may not be aborted by nobody's session either.
  const std::string id = startFill(*d);
  EXPECT_EQ(http.request("POST", "/api/v1/runs/" + id + "/abort", changeHeaders(s, http)).status,
            403);
  EXPECT_EQ(stateOf(*d, id), "running");
}

TEST_F(ConsoleSecurityTest, SubmittedCommandsRunAsTheirArgvNeverThroughAShell) {
  auto d = start();
  ConsoleHttp http(port_);
  auto s = testing::consoleLogin(http, testing::issueConsoleToken(*d, false));
  const std::string m = tmp_.path() + "/marker";
  const std::string yaml =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: no-shell}\n"
      "steadyState:\n  baseline: {duration: 300ms}\n  probes:\n"
      "    - {name: p, every: 100ms, command: {argv: [/bin/echo, \"; touch " +
      m +
      "1\", "
      "\"$(touch " +
      m + "2)\", \"`touch " + m + "3`\", \"&& touch " + m +
      "4\"]}}\n"
      "method:\n  - {name: wait, fault: disk.fill, target: data, args: {size: 1KiB}, "
      "duration: 300ms}\n"
      "targets:\n  data: {path: \"" +
      data_ +
      "\"}\n"
      "rollbacks:\n  - {name: r, command: [/bin/echo, \"$(touch " +
      m + "5)\", \"| touch " + m + "6\"]}\n";
  auto r = http.request("POST", "/api/v1/runs", changeHeaders(s, http),
                        json{{"experiment", yaml}, {"fileName", "../../etc/passwd"}}.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = r.json()["id"];
  ASSERT_TRUE(testing::waitUntil([&] { return stateOf(*d, id) == "ended"; }, 30s));
  auto run = d->client().request("GET", "/v1/runs/" + id)->json();
  EXPECT_EQ(run["outcome"], "ok") << run.dump();
  for (int i = 1; i <= 6; ++i) {
    EXPECT_FALSE(fs::exists(m + std::to_string(i))) << "a shell ran marker " << i;
  }
  // A command given as one string is refused by validation, with its line.
  auto invalid = http.request("POST", "/api/v1/runs", changeHeaders(s, http),
                              json{{"experiment",
                                    "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: x}\n"
                                    "rollbacks:\n  - {name: r, command: \"touch " +
                                        m + "7\"}\n"}}
                                  .dump());
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_NE(invalid.body.find("submitted.yaml:5:"), std::string::npos) << invalid.body;
  EXPECT_FALSE(fs::exists(m + "7"));
}

}  // namespace
}  // namespace chaosd
