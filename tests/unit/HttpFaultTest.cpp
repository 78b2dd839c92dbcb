// http.fault without root: the policy's decisions (match fields, per-action percentages with a
// scripted draw, first rule wins, counts), the abort response, the args and undo record (round
// trip, refusals naming the field, damaged records refused as values), and the injector through
// fakes of the nftables kernel and of the proxy: the proxy before the table on apply, the table
// before the proxy on revert, a second revert, a failure half-way, audit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Units.h"
#include "experiments/model/Experiment.h"
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/http/HttpFaultInjector.h"
#include "injectors/http/HttpPolicy.h"
#include "injectors/http/HttpRecords.h"

namespace chaosd {
namespace {

using nlohmann::json;

http::Draw scripted(std::deque<double> values) {
  auto v = std::make_shared<std::deque<double>>(std::move(values));
  return [v] {
    if (v->empty()) return 0.999;
    const double d = v->front();
    v->pop_front();
    return d;
  };
}

http::RequestHead head(std::string method, std::string target,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {std::move(method), std::move(target), std::move(headers)};
}

TEST(HttpPolicyTest, MatchFieldsMustAllHold) {
  http::Rule r;
  r.method = "POST";
  r.pathPrefix = "/api/";
  r.headers = {{"X-Tenant", "blue"}};
  r.abort = http::AbortAction{503, "", {}, 1.0};
  auto policy = http::Policy::create({r});
  ASSERT_TRUE(policy);
  auto& p = **policy;
  const auto never = scripted({});
  EXPECT_EQ(p.decide(head("POST", "/api/x", {{"x-tenant", "blue"}}), scripted({0.1})).ruleIndex, 0);
  EXPECT_EQ(p.decide(head("GET", "/api/x", {{"x-tenant", "blue"}}), never).ruleIndex, -1);
  EXPECT_EQ(p.decide(head("POST", "/apix", {{"x-tenant", "blue"}}), never).ruleIndex, -1);
  EXPECT_EQ(p.decide(head("POST", "/api/x", {{"x-tenant", "Blue"}}), never).ruleIndex, -1);
  EXPECT_EQ(p.decide(head("POST", "/api/x"), never).ruleIndex, -1);
  const auto s = p.stats();
  EXPECT_EQ(s[0].seen, 5u);
  EXPECT_EQ(s[0].matched, 1u);
  EXPECT_EQ(s[0].aborted, 1u);
}

TEST(HttpPolicyTest, RegexIsASearchAndBadOnesAreRefused) {
  http::Rule r;
  r.pathRegex = "^/v[0-9]+/orders";
  r.reset = http::ResetAction{1.0};
  auto policy = http::Policy::create({r});
  ASSERT_TRUE(policy);
  EXPECT_TRUE((*policy)->decide(head("GET", "/v2/orders/7"), scripted({0.5})).reset);
  EXPECT_FALSE((*policy)->decide(head("GET", "/x/v2/orders"), scripted({0.5})).reset);
  r.pathRegex = "([";
  auto bad = http::Policy::create({r});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("rules[0].pathRegex"), std::string::npos);
}

// Each action draws its own percentage: delay then one of reset, abort, truncate.
TEST(HttpPolicyTest, EachActionDrawsItsPercentageFirstRuleWins) {
  http::Rule r;
  r.delay = http::DelayAction{100'000'000, 20'000'000, 0.5};
  r.abort = http::AbortAction{500, "x", {}, 0.5};
  r.truncate = http::TruncateAction{10, 1.0};
  http::Rule second;
  second.reset = http::ResetAction{1.0};
  auto policy = http::Policy::create({r, second});
  ASSERT_TRUE(policy);
  auto& p = **policy;
  // delay drawn (0.1 < 0.5), jitter draw 0.75 -> +10ms, abort drawn.
  auto d = p.decide(head("GET", "/"), scripted({0.1, 0.75, 0.2}));
  EXPECT_EQ(d.delay.count(), 110'000'000);
  ASSERT_NE(d.abort, nullptr);
  EXPECT_EQ(d.abort->status, 500);
  // neither delay nor abort: truncate.
  d = p.decide(head("GET", "/"), scripted({0.9, 0.9, 0.0}));
  EXPECT_EQ(d.delay.count(), 0);
  EXPECT_EQ(d.abort, nullptr);
  EXPECT_EQ(d.truncateAt, 10);
  EXPECT_FALSE(d.reset) << "the second rule never sees what the first matched";
  const auto s = p.stats();
  EXPECT_EQ(s[0].delayed, 1u);
  EXPECT_EQ(s[0].aborted, 1u);
  EXPECT_EQ(s[1].seen, 0u);
}

// responseDelay is drawn last and only for a request that is forwarded: an aborted one never
// reaches the dependency, so there is no response to hold.
TEST(HttpPolicyTest, ResponseDelayOnlyForForwardedRequests) {
  http::Rule r;
  r.abort = http::AbortAction{503, "", {}, 0.5};
  r.responseDelay = http::DelayAction{300'000'000, 100'000'000, 0.5};
  auto policy = http::Policy::create({r});
  ASSERT_TRUE(policy);
  auto& p = **policy;
  // abort drawn: no response delay drawn.
  auto d = p.decide(head("GET", "/"), scripted({0.1}));
  ASSERT_NE(d.abort, nullptr);
  EXPECT_EQ(d.responseDelay.count(), 0);
  // forwarded, response delay drawn (0.2 < 0.5), jitter 0.25 -> -50ms.
  d = p.decide(head("GET", "/"), scripted({0.9, 0.2, 0.25}));
  EXPECT_EQ(d.abort, nullptr);
  EXPECT_EQ(d.delay.count(), 0);
  EXPECT_EQ(d.responseDelay.count(), 250'000'000);
  // forwarded, not drawn.
  d = p.decide(head("GET", "/"), scripted({0.9, 0.7}));
  EXPECT_EQ(d.responseDelay.count(), 0);
  const auto s = p.stats();
  EXPECT_EQ(s[0].responseDelayed, 1u);
  EXPECT_EQ(s[0].delayed, 0u);
  EXPECT_EQ(s[0].toJson()["responseDelayed"], 1);
  // The record keeps it; a rule with only a response delay is a rule with an action.
  auto args = HttpFaultArgs::fromJson(
      {{"ports", {80}},
       {"rules", {{{"responseDelay", {{"delay", 5}, {"jitter", 1}, {"percent", 0.5}}}}}}});
  ASSERT_TRUE(args) << args.error().message();
  ASSERT_TRUE(args->rules[0].responseDelay);
  EXPECT_EQ(args->rules[0].responseDelay->delayNs, 5);
  EXPECT_EQ(HttpFaultArgs::fromJson(args->toJson())->toJson(), args->toJson());
  auto negative =
      HttpFaultArgs::fromJson({{"ports", {80}}, {"rules", {{{"responseDelay", {{"delay", -1}}}}}}});
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message().find("rules[0].responseDelay"), std::string::npos);
}

TEST(HttpPolicyTest, AbortResponseIsWellFormed) {
  http::AbortAction a{503, "down", {{"Retry-After", "1"}, {"Content-Length", "99"}}, 1.0};
  EXPECT_EQ(http::abortResponse(a, false, false),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nRetry-After: 1\r\n"
            "content-type: text/plain\r\nx-chaosd-fault: abort\r\n\r\ndown");
  const std::string headOnly = http::abortResponse(a, true, true);
  EXPECT_NE(headOnly.find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(headOnly.ends_with("\r\n\r\n"));
}

json goodArgs() {
  return {{"ports", {8080}},
          {"to", {"10.0.0.2/32", "fd00::2/128"}},
          {"rules",
           {{{"method", "GET"},
             {"path", "/api"},
             {"headers", {{"x-a", "b"}}},
             {"delay", {{"delay", 200'000'000}, {"jitter", 0}, {"percent", 0.5}}},
             {"abort",
              {{"status", 503}, {"body", "no"}, {"headers", json::object()}, {"percent", 0.1}}}}}},
          {"maxConnections", 1024},
          {"headerTimeout", 10'000'000'000}};
}

TEST(HttpRecordsTest, ArgsAndUndoRoundTrip) {
  auto args = HttpFaultArgs::fromJson(goodArgs());
  ASSERT_TRUE(args) << args.error().message();
  EXPECT_EQ(args->rules[0].delay->delayNs, 200'000'000);
  HttpFaultUndo u{"f-1", "chaosd_f_1", "/run/netns/x", 0x43480001, *args};
  auto back = HttpFaultUndo::fromJson(u.toJson());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->toJson(), u.toJson());
  EXPECT_EQ(back->args.rules[0].abort->body, "no");
}

TEST(HttpRecordsTest, RefusalsNameTheField) {
  auto refused = [](json args) {
    auto a = HttpFaultArgs::fromJson(args);
    return a ? std::string("accepted") : a.error().message();
  };
  json ssh = goodArgs();
  ssh["ports"] = {8080, 22};
  EXPECT_NE(refused(ssh).find("ports[1]: port 22"), std::string::npos) << refused(ssh);
  json noAction = goodArgs();
  noAction["rules"][0].erase("delay");
  noAction["rules"][0].erase("abort");
  EXPECT_NE(refused(noAction).find("rules[0]: no action"), std::string::npos);
  json status = goodArgs();
  status["rules"][0]["abort"]["status"] = 99;
  EXPECT_NE(refused(status).find("rules[0].abort.status"), std::string::npos);
  json header = goodArgs();
  header["rules"][0]["abort"]["headers"] = {{"X-Bad", "a\r\nInjected: 1"}};
  EXPECT_NE(refused(header).find("rules[0].abort.headers.X-Bad"), std::string::npos);
  json noRules = goodArgs();
  noRules["rules"] = json::array();
  EXPECT_NE(refused(noRules).find("rules"), std::string::npos);
}

TEST(HttpRecordsTest, DamagedRecordsAreRefusedAsValues) {
  auto args = HttpFaultArgs::fromJson(goodArgs());
  ASSERT_TRUE(args);
  const json good = HttpFaultUndo{"f", "chaosd_f", "", 0x43480001, *args}.toJson();
  for (const char* key : {"faultId", "table", "mark", "args"}) {
    json bad = good;
    bad.erase(key);
    EXPECT_FALSE(HttpFaultUndo::fromJson(bad)) << key;
  }
  json notOurs = good;
  notOurs["table"] = "filter";
  EXPECT_FALSE(HttpFaultUndo::fromJson(notOurs));
  EXPECT_FALSE(HttpFaultUndo::fromJson(json::array()));
  json wrongType = good;
  wrongType["mark"] = "x";
  EXPECT_FALSE(HttpFaultUndo::fromJson(wrongType));
}

// ---- the injector through fakes ---------------------------------------------------------

struct Events {
  std::vector<std::string> log;
};

class FakeNft final : public NftKernel {
 public:
  explicit FakeNft(std::shared_ptr<Events> e) : events_(std::move(e)) {}
  Result<std::string> run(const std::string& ns, const std::string& commands) override {
    if (failRun) return Error(ErrorCode::kKernel, "nftables: Error: refused");
    if (commands.starts_with("delete table inet ")) {
      const std::string t = commands.substr(18);
      if (!tables.contains(ns + ":" + t)) {
        return Error(ErrorCode::kKernel, "nftables: Error: No such file or directory");
      }
      tables.erase(ns + ":" + t);
      events_->log.push_back("delete " + t);
      return std::string();
    }
    const auto at = commands.find("chaosd_");
    tables.insert(ns + ":" + commands.substr(at, commands.find(' ', at) - at));
    events_->log.push_back("add table");
    lastScript = commands;
    return std::string();
  }
  Result<std::string> listJson(const std::string& ns, const std::string& what,
                               NftSessionUse) override {
    if (!tables.contains(ns + ":" + what.substr(11))) {
      return Error(ErrorCode::kKernel, "nftables: Error: No such file or directory");
    }
    return std::string("{}");
  }
  void forget(const std::string&) override {}

  bool failRun = false;
  std::set<std::string> tables;
  std::string lastScript;

 private:
  std::shared_ptr<Events> events_;
};

class FakeProxy final : public http::Proxy {
 public:
  explicit FakeProxy(std::shared_ptr<Events> e) : events_(std::move(e)) {}
  uint16_t port() const override { return 41000; }
  http::ProxyStats stop() override {
    if (!stopped_) events_->log.push_back("stop proxy");
    stopped_ = true;
    http::ProxyStats s;
    s.connections = 3;
    return s;
  }

 private:
  std::shared_ptr<Events> events_;
  bool stopped_ = false;
};

class FakeProxies final : public http::HttpKernel {
 public:
  explicit FakeProxies(std::shared_ptr<Events> e) : events_(std::move(e)) {}
  Result<std::unique_ptr<http::Proxy>> startProxy(http::ProxyConfig config) override {
    if (fail) return Error(ErrorCode::kKernel, "no proxy");
    lastMark = config.mark;
    events_->log.push_back("start proxy");
    return std::unique_ptr<http::Proxy>(std::make_unique<FakeProxy>(events_));
  }
  Result<std::vector<http::OpenConnection>> openConnections(
      const std::string&, const http::ConnectionMatch& match) override {
    events_->log.push_back("list connections");
    lastMatch = match;
    return std::vector<http::OpenConnection>(open, http::OpenConnection{});
  }
  Result<size_t> resetConnections(const std::string&,
                                  const std::vector<http::OpenConnection>& c) override {
    events_->log.push_back("reset " + std::to_string(c.size()));
    if (failReset) return Error(ErrorCode::kKernel, "SOCK_DESTROY: refused");
    return c.size();
  }
  bool fail = false;
  bool failReset = false;
  size_t open = 0;
  uint32_t lastMark = 0;
  http::ConnectionMatch lastMatch;

 private:
  std::shared_ptr<Events> events_;
};

class HttpSeamTest : public ::testing::Test {
 protected:
  HttpSeamTest() {
    target_.kind = TargetKind::kInterface;
    target_.interface.name = "veth0";
    target_.interface.netns.name = "app";
  }
  FaultRequest request(json args) {
    FaultRequest r;
    r.faultId = "run-1.f-2";
    r.faultType = "http.fault";
    r.target = &target_;
    r.args = std::move(args);
    return r;
  }
  json prepared() {
    auto p = injector_.prepare(request(goodArgs()));
    EXPECT_TRUE(p) << p.error().message();
    return p ? p->undo : json();
  }

  TargetSpec target_;
  std::shared_ptr<Events> events_ = std::make_shared<Events>();
  std::shared_ptr<FakeNft> nft_ = std::make_shared<FakeNft>(events_);
  std::shared_ptr<FakeProxies> proxies_ = std::make_shared<FakeProxies>(events_);
  HttpFaultInjector injector_{std::make_shared<HttpContext>(), nft_, proxies_};
};

TEST_F(HttpSeamTest, ApplyStartsTheProxyThenTheTableRevertTheReverseTwice) {
  const json undo = prepared();
  EXPECT_EQ(undo["table"], "chaosd_run_1_f_2");
  EXPECT_EQ(undo["netns"], "/run/netns/app");
  ASSERT_TRUE(injector_.apply("run-1.f-2", undo));
  EXPECT_EQ(proxies_->lastMark, undo["mark"].get<uint32_t>());
  const std::string& s = nft_->lastScript;
  EXPECT_NE(s.find("meta mark 0x4348"), std::string::npos) << s;
  EXPECT_LT(s.find("tcp dport 22 return"), s.find("redirect")) << s;
  EXPECT_NE(s.find("ip daddr { 10.0.0.2/32 } tcp dport { 8080 } tcp flags & (syn | ack) == syn "
                   "redirect to :41000"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("ip6 daddr { fd00::2/128 } tcp dport { 8080 } tcp flags & (syn | ack) == syn "
                   "redirect to :41000"),
            std::string::npos)
      << s;
  auto audit = injector_.audit(undo);
  ASSERT_TRUE(audit);
  EXPECT_EQ(audit->size(), 2u);
  auto observed = injector_.revert("run-1.f-2", undo);
  ASSERT_TRUE(observed) << observed.error().message();
  EXPECT_EQ((*observed)["proxy"]["connections"], 3);
  EXPECT_EQ((*observed)["rules"].size(), 1u);
  EXPECT_EQ(events_->log, (std::vector<std::string>{"start proxy", "add table",
                                                    "delete chaosd_run_1_f_2", "stop proxy"}));
  EXPECT_TRUE(injector_.revert("run-1.f-2", undo)) << "a second revert";
  audit = injector_.audit(undo);
  ASSERT_TRUE(audit);
  EXPECT_TRUE(audit->empty());
}

// The guardian's case: another process, nothing running here, only the record.
TEST_F(HttpSeamTest, RevertFromTheRecordAloneDeletesTheTable) {
  const json undo = prepared();
  ASSERT_TRUE(injector_.apply("run-1.f-2", undo));
  HttpFaultInjector guardian{std::make_shared<HttpContext>(), nft_, proxies_};
  ASSERT_TRUE(guardian.revert("run-1.f-2", undo));
  EXPECT_TRUE(nft_->tables.empty());
}

TEST_F(HttpSeamTest, FailuresHalfWayLeaveNothing) {
  const json undo = prepared();
  nft_->failRun = true;
  EXPECT_FALSE(injector_.apply("run-1.f-2", undo));
  EXPECT_EQ(events_->log, (std::vector<std::string>{"start proxy", "stop proxy"}));
  nft_->failRun = false;
  proxies_->fail = true;
  EXPECT_FALSE(injector_.apply("run-1.f-2", undo));
  EXPECT_TRUE(nft_->tables.empty());
  EXPECT_TRUE(injector_.revert("run-1.f-2", undo)) << "revert of an intent never applied";
}

// resetExisting: the connections are listed before the table exists (they went direct) and
// destroyed after it is there; the count is observed. A failed reset takes the table and the
// proxy back. Without the arg nothing is listed.
TEST_F(HttpSeamTest, ResetExistingListsBeforeTheTableDestroysAfter) {
  json args = goodArgs();
  args["resetExisting"] = true;
  auto p = injector_.prepare(request(args));
  ASSERT_TRUE(p) << p.error().message();
  proxies_->open = 3;
  auto applied = injector_.apply("run-1.f-2", p->undo);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(applied->observed["resetConnections"], 3);
  EXPECT_EQ(events_->log,
            (std::vector<std::string>{"start proxy", "list connections", "add table", "reset 3"}));
  EXPECT_EQ(proxies_->lastMatch.ports, (std::vector<uint16_t>{8080}));
  EXPECT_EQ(proxies_->lastMatch.to.size(), 2u);
  EXPECT_EQ(proxies_->lastMatch.skipMark, p->undo["mark"].get<uint32_t>());
  ASSERT_TRUE(injector_.revert("run-1.f-2", p->undo));
  events_->log.clear();
  proxies_->failReset = true;
  EXPECT_FALSE(injector_.apply("run-1.f-2", p->undo));
  EXPECT_EQ(events_->log,
            (std::vector<std::string>{"start proxy", "list connections", "add table", "reset 3",
                                      "delete chaosd_run_1_f_2", "stop proxy"}));
  EXPECT_TRUE(nft_->tables.empty());
  events_->log.clear();
  ASSERT_TRUE(injector_.apply("run-1.f-2", prepared()));
  EXPECT_EQ(events_->log, (std::vector<std::string>{"start proxy", "add table"}));
}

// The match sock_diag's listing applies: the ports and destinations, never port 22, v4-mapped
// addresses as IPv4.
TEST(HttpSocketsTest, ConnectionMatchHoldsPortsAndDestinations) {
  http::ConnectionMatch m;
  m.ports = {8080, 22};
  m.to = {*units::parseCidr("10.0.0.0/24"), *units::parseCidr("fd00::2/128")};
  auto v4 = [](const char* a) {
    std::array<uint32_t, 4> out{};
    ::inet_pton(AF_INET, a, out.data());
    return out;
  };
  auto v6 = [](const char* a) {
    std::array<uint32_t, 4> out{};
    ::inet_pton(AF_INET6, a, out.data());
    return out;
  };
  EXPECT_TRUE(http::connectionMatches(m, AF_INET, v4("10.0.0.7"), 8080));
  EXPECT_FALSE(http::connectionMatches(m, AF_INET, v4("10.0.1.7"), 8080));
  EXPECT_FALSE(http::connectionMatches(m, AF_INET, v4("10.0.0.7"), 8081));
  EXPECT_FALSE(http::connectionMatches(m, AF_INET, v4("10.0.0.7"), 22)) << "never SSH";
  EXPECT_TRUE(http::connectionMatches(m, AF_INET6, v6("::ffff:10.0.0.9"), 8080));
  EXPECT_TRUE(http::connectionMatches(m, AF_INET6, v6("fd00::2"), 8080));
  EXPECT_FALSE(http::connectionMatches(m, AF_INET6, v6("fd00::3"), 8080));
  m.to.clear();
  EXPECT_TRUE(http::connectionMatches(m, AF_INET6, v6("fd00::3"), 8080));
}

// A process target in this process's own network namespace is refused (the fault would act on
// the whole host's); one that selects nothing is refused too. Nothing is touched.
TEST_F(HttpSeamTest, ProcessTargetsInOurOwnNamespaceAreRefused) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  TargetSpec proc;
  proc.name = "app";
  proc.kind = TargetKind::kProcess;
  proc.process.pid = child;
  FaultRequest r = request(goodArgs());
  r.target = &proc;
  auto p = injector_.prepare(r);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("chaosd's own network namespace"), std::string::npos)
      << p.error().message();
  proc.process.pid = child;  // reaped: nothing selected
  p = injector_.prepare(r);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("no process of target app"), std::string::npos)
      << p.error().message();
  EXPECT_TRUE(events_->log.empty());
}

// Host names in `to` with refresh: the table holds sets hosts_v4/hosts_v6 with their addresses
// (an empty `to` does not mean any address then); reprepare changes only the addresses and
// update replaces the sets' elements in one transaction.
TEST_F(HttpSeamTest, HostAddressesLiveInSetsARefreshReplaces) {
  json args = goodArgs();
  args["to"] = json::array();
  args["hostAddresses"] = {"10.0.0.5", "fd00::5"};
  args["refresh"] = 1'000'000'000;
  auto p = injector_.prepare(request(args));
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_TRUE(injector_.apply("run-1.f-2", p->undo));
  const std::string& s = nft_->lastScript;
  EXPECT_NE(s.find("add set inet chaosd_run_1_f_2 hosts_v4 { type ipv4_addr ; }"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("add element inet chaosd_run_1_f_2 hosts_v4 { 10.0.0.5 }"), std::string::npos)
      << s;
  EXPECT_NE(s.find("ip daddr @hosts_v4 tcp dport { 8080 }"), std::string::npos) << s;
  EXPECT_NE(s.find("ip6 daddr @hosts_v6 tcp dport { 8080 }"), std::string::npos) << s;
  EXPECT_EQ(s.find("output tcp dport { 8080 }"), std::string::npos) << "never any address: " << s;
  json refreshed = args;
  refreshed["hostAddresses"] = {"10.0.0.6"};
  auto next = injector_.reprepare("run-1.f-2", p->undo, refreshed);
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_EQ((*next)["args"]["hostAddresses"], json({"10.0.0.6"}));
  EXPECT_EQ((*next)["table"], p->undo["table"]);
  ASSERT_TRUE(injector_.update("run-1.f-2", p->undo, *next));
  EXPECT_EQ(nft_->lastScript,
            "flush set inet chaosd_run_1_f_2 hosts_v4\nflush set inet chaosd_run_1_f_2 hosts_v6\n"
            "add element inet chaosd_run_1_f_2 hosts_v4 { 10.0.0.6 }\n");
  // A fault without host sets cannot be refreshed.
  EXPECT_FALSE(injector_.reprepare("run-1.f-2", prepared(), refreshed));
  json bad = args;
  bad["hostAddresses"] = {"10.0.0.0/24; flush ruleset"};
  EXPECT_FALSE(injector_.prepare(request(bad))) << "addresses only in the sets";
}

// The type resolves host names in `to` (localhost, from /etc/hosts): folded into `to` without
// refresh, apart in hostAddresses with it; a bad name is refused naming its index; refresh
// without a host name is refused.
TEST(HttpFaultTypeTest, HostNamesInToAreResolved) {
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  const FaultType* t = registry.find("http.fault");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->resolveArgs);
  ASSERT_TRUE(t->refreshArgs);
  json args = goodArgs();
  args["to"] = {"localhost", "10.0.0.0/24"};
  auto r = t->resolveArgs(args);
  ASSERT_TRUE(r) << r.error().message();
  const json& to = r->args["to"];
  EXPECT_NE(std::find(to.begin(), to.end(), "10.0.0.0/24"), to.end()) << to.dump();
  EXPECT_NE(std::find(to.begin(), to.end(), "127.0.0.1/32"), to.end()) << to.dump();
  EXPECT_FALSE(r->args.contains("hostAddresses"));
  EXPECT_TRUE(r->observed["hosts"].contains("localhost")) << r->observed.dump();
  ASSERT_TRUE(HttpFaultArgs::fromJson(r->args)) << "the injector takes what the type resolved";
  args["refresh"] = 5'000'000'000;
  r = t->resolveArgs(args);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->args["to"], json({"10.0.0.0/24"}));
  const json& hosts = r->args["hostAddresses"];
  EXPECT_NE(std::find(hosts.begin(), hosts.end(), "127.0.0.1"), hosts.end()) << hosts.dump();
  auto refreshed = t->refreshArgs(args, r->observed["hosts"]);
  ASSERT_TRUE(refreshed) << refreshed.error().message();
  EXPECT_EQ(refreshed->resolved.args["hostAddresses"], hosts);
  auto check = [&](json a) {
    for (const auto& c : t->schema.constraints) {
      if (auto problem = c(ArgContext{a, std::nullopt})) return problem->field;
    }
    return std::string("ok");
  };
  EXPECT_EQ(check(args), "ok");
  json badName = goodArgs();
  badName["to"] = {"10.0.0.2/32", "bad name!"};
  EXPECT_EQ(check(badName), "to[1]");
  json hostBits = goodArgs();
  hostBits["to"] = {"10.0.0.1/24"};
  EXPECT_EQ(check(hostBits), "to[0]");
  json refreshAlone = goodArgs();
  refreshAlone["refresh"] = 5'000'000'000;
  EXPECT_EQ(check(refreshAlone), "refresh");
  json unknown = goodArgs();
  unknown["to"] = {"no-such-host.invalid"};
  auto failed = t->resolveArgs(unknown);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message().find("no-such-host.invalid"), std::string::npos)
      << failed.error().message();
}

TEST_F(HttpSeamTest, BadArgsAndTargetsAreRefusedBeforeAnything) {
  json ssh = goodArgs();
  ssh["ports"] = {22};
  EXPECT_FALSE(injector_.prepare(request(ssh)));
  TargetSpec exec;
  exec.kind = TargetKind::kExec;
  FaultRequest r = request(goodArgs());
  r.target = &exec;
  EXPECT_FALSE(injector_.prepare(r));
  EXPECT_TRUE(events_->log.empty());
}

TEST(HttpFaultTypeTest, RegisteredWithItsSchema) {
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  const FaultType* t = registry.find("http.fault");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->factory);
  ASSERT_NE(t->schema.find("ports"), nullptr);
  EXPECT_TRUE(t->schema.find("rules")->required);
  auto check = [&](json args) {
    for (const auto& c : t->schema.constraints) {
      if (auto problem = c(ArgContext{args, std::nullopt})) return problem->field;
    }
    return std::string("ok");
  };
  EXPECT_EQ(check(goodArgs()), "ok");
  json ssh = goodArgs();
  ssh["ports"] = {22};
  EXPECT_EQ(check(ssh), "ports[0]");
  json regex = goodArgs();
  regex["rules"][0]["pathRegex"] = "([";
  EXPECT_EQ(check(regex), "rules");
}

}  // namespace
}  // namespace chaosd
