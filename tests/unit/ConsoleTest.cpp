// The web console's parts without a daemon: tokens (random, stored hashed, expiring,
// revocable, persisted), the cross-site check, the live feed of a run, and the fault-window
// series on /metrics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "chaosd/app/console/Console.h"
#include "chaosd/app/console/ConsoleTokens.h"
#include "chaosd/app/daemon/Metrics.h"
#include "chaosd/app/daemon/RunEvents.h"
#include "chaosd/base/Sha256.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using console::ConsoleRole;
using console::ConsoleTokens;
using json = nlohmann::json;
using namespace std::chrono_literals;

class ConsoleTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chaosd-console-unit-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "console-tokens.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string path_;
  json issuer_ = {{"uid", 1001}, {"gid", 1001}, {"groups", {1001}}, {"user", "alice"}, {"pid", 7}};
};

TEST_F(ConsoleTokensTest, IssuedTokenVerifiesAndOnlyItsHashIsStored) {
  auto store = ConsoleTokens::open(path_);
  ASSERT_TRUE(store.ok());
  auto a = (*store)->issue(ConsoleRole::kRead, issuer_, 1h);
  auto b = (*store)->issue(ConsoleRole::kOperate, issuer_, 1h);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->token, b->token);
  EXPECT_EQ(a->token.rfind("chaosd_", 0), 0u);
  EXPECT_EQ(a->token.size(), 71u);
  auto found = (*store)->verify(a->token);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->role, ConsoleRole::kRead);
  EXPECT_EQ(found->issuer["user"], "alice");
  EXPECT_EQ((*store)->verify(b->token)->role, ConsoleRole::kOperate);
  EXPECT_FALSE((*store)->verify(a->token + "0"));
  EXPECT_FALSE((*store)->verify(""));
  std::ifstream in(path_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(a->token), std::string::npos);
  EXPECT_NE(text.find(sha256Hex(a->token)), std::string::npos);
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(ConsoleTokensTest, TokensSurviveAReopenAndRevokingEndsOne) {
  std::string token;
  std::string id;
  {
    auto store = ConsoleTokens::open(path_);
    auto t = (*store)->issue(ConsoleRole::kOperate, issuer_, 2h);
    token = t->token;
    id = t->record.id;
  }
  auto store = ConsoleTokens::open(path_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->verify(token));
  EXPECT_EQ((*store)->list().size(), 1u);
  EXPECT_EQ(*(*store)->revoke(id), true);
  EXPECT_EQ(*(*store)->revoke(id), false);
  EXPECT_FALSE((*store)->verify(token));
  EXPECT_FALSE((*ConsoleTokens::open(path_))->verify(token));
}

TEST_F(ConsoleTokensTest, LifetimeIsBoundedAndExpiredTokensFail) {
  auto store = ConsoleTokens::open(path_);
  EXPECT_FALSE((*store)->issue(ConsoleRole::kRead, issuer_, 0s).ok());
  EXPECT_FALSE((*store)->issue(ConsoleRole::kRead, issuer_, 31 * 24h).ok());
  auto t = (*store)->issue(ConsoleRole::kRead, issuer_, 50ms);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*store)->verify(t->token));
  std::this_thread::sleep_for(60ms);  // the expiry is wall-clock time; nothing to await
  EXPECT_FALSE((*store)->verify(t->token));
  EXPECT_FALSE((*store)->find(t->record.id));
}

TEST_F(ConsoleTokensTest, ADamagedFileIsAnError) {
  std::ofstream(path_) << "{\"tokens\": [{\"role\": \"admin\"}]}";
  EXPECT_FALSE(ConsoleTokens::open(path_).ok());
}

daemon::HttpRequest post(std::vector<std::pair<std::string, std::string>> headers) {
  daemon::HttpRequest r;
  r.method = "POST";
  r.path = "/api/v1/runs";
  for (auto& [k, v] : headers) r.headers[k] = v;
  return r;
}

TEST(ConsoleCrossSiteTest, OnlyTheConsolesOwnOriginWithTheCsrfTokenPasses) {
  const std::string csrf = std::string(64, 'c');
  EXPECT_FALSE(console::crossSiteRefusal(post({{"host", "127.0.0.1:9465"},
                                               {"origin", "http://127.0.0.1:9465"},
                                               {"x-csrf-token", csrf}}),
                                         csrf));
  EXPECT_FALSE(console::crossSiteRefusal(post({{"host", "localhost:9465"},
                                               {"origin", "http://localhost:9465"},
                                               {"sec-fetch-site", "same-origin"},
                                               {"x-csrf-token", csrf}}),
                                         csrf));
  // No Origin, another Origin, another port, cross-site fetch metadata, no or a wrong token.
  EXPECT_TRUE(
      console::crossSiteRefusal(post({{"host", "127.0.0.1:9465"}, {"x-csrf-token", csrf}}), csrf));
  EXPECT_TRUE(console::crossSiteRefusal(
      post({{"host", "127.0.0.1:9465"}, {"origin", "http://evil.example"}, {"x-csrf-token", csrf}}),
      csrf));
  EXPECT_TRUE(console::crossSiteRefusal(post({{"host", "127.0.0.1:9465"},
                                              {"origin", "http://127.0.0.1:9466"},
                                              {"x-csrf-token", csrf}}),
                                        csrf));
  EXPECT_TRUE(console::crossSiteRefusal(post({{"host", "127.0.0.1:9465"},
                                              {"origin", "http://127.0.0.1:9465"},
                                              {"sec-fetch-site", "cross-site"},
                                              {"x-csrf-token", csrf}}),
                                        csrf));
  EXPECT_TRUE(console::crossSiteRefusal(
      post({{"host", "127.0.0.1:9465"}, {"origin", "http://127.0.0.1:9465"}}), csrf));
  EXPECT_TRUE(console::crossSiteRefusal(post({{"host", "127.0.0.1:9465"},
                                              {"origin", "http://127.0.0.1:9465"},
                                              {"x-csrf-token", std::string(64, 'd')}}),
                                        csrf));
  EXPECT_EQ(console::consoleListenAddress("9465"), "127.0.0.1:9465");
  EXPECT_EQ(console::consoleListenAddress("0.0.0.0:9465"), "0.0.0.0:9465");
}

TEST(RunEventsTest, ReadersGetWhatCameAfterTheirLastEventAndTheEnd) {
  daemon::RunEvents feed(3);
  feed.append({{"type", "sample"}, {"n", 1}});
  feed.append({{"type", "sample"}, {"n", 2}});
  auto first = feed.after(0, 0ms);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].seq, 2u);
  EXPECT_TRUE(feed.after(2, 1ms).empty());
  // A reader waiting is woken by the next event.
  std::thread writer([&] { feed.append({{"type", "sample"}, {"n", 3}}); });
  auto next = feed.after(2, 5s);
  writer.join();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].data["n"], 3);
  // Bounded: the oldest go; the numbers keep counting.
  feed.append({{"type", "sample"}, {"n", 4}});
  auto all = feed.after(0, 0ms);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].seq, 2u);
  feed.end("aborted");
  feed.append({{"type", "sample"}, {"n", 5}});
  EXPECT_TRUE(feed.ended());
  auto tail = feed.after(4, 0ms);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].data["type"], "end");
  EXPECT_EQ(tail[0].data["outcome"], "aborted");
  EXPECT_TRUE(feed.after(feed.lastSeq(), 5s).empty());  // ended: no wait
}

TEST(ConsoleMetricsTest, EachHeldFaultIsASeriesByRunStepAndType) {
  daemon::Metrics m;
  daemon::ScrapeState s;
  s.faultsActive[{"run1", "fill", "disk.fill"}] = 1;
  s.faultsActive[{"run2", "lag \"x\"", "network.delay"}] = 2;
  const std::string text = m.render(s);
  EXPECT_NE(text.find("# TYPE chaosd_fault_active gauge"), std::string::npos);
  EXPECT_NE(text.find("chaosd_fault_active{run=\"run1\",step=\"fill\",type=\"disk.fill\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "chaosd_fault_active{run=\"run2\",step=\"lag \\\"x\\\"\",type=\"network.delay\"} 2\n"),
      std::string::npos);
}

}  // namespace
}  // namespace chaosd
