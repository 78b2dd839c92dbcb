// The timing half of network.delay through NFQUEUE, with made-up times: release order, the
// batch verdict decision, the bound, the jitter shapes; and the rules a filter becomes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "injectors/network/NfqueueRules.h"
#include "injectors/network/ReleaseQueue.h"

namespace chaosd::nfq {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0{std::chrono::seconds(1000)};

TEST(ReleaseQueueTest, ReleasesInReleaseTimeOrderNotArrivalOrder) {
  ReleaseQueue q(16);
  // Arrival order 1..5, jittered release times.
  ASSERT_TRUE(q.push(1, kT0 + 50ms));
  ASSERT_TRUE(q.push(2, kT0 + 30ms));
  ASSERT_TRUE(q.push(3, kT0 + 70ms));
  ASSERT_TRUE(q.push(4, kT0 + 30ms));  // same time as 2: arrival order breaks the tie
  ASSERT_TRUE(q.push(5, kT0 + 10ms));
  EXPECT_EQ(q.nextDue(), kT0 + 10ms);
  EXPECT_TRUE(q.popDue(kT0 + 9ms).ids.empty()) << "nothing is due early";
  EXPECT_EQ(q.popDue(kT0 + 10ms).ids, (std::vector<uint32_t>{5}));
  EXPECT_EQ(q.popDue(kT0 + 55ms).ids, (std::vector<uint32_t>{2, 4, 1}));
  EXPECT_EQ(q.nextDue(), kT0 + 70ms);
  EXPECT_EQ(q.popDue(kT0 + 1s).ids, (std::vector<uint32_t>{3}));
  EXPECT_EQ(q.nextDue(), std::nullopt);
  EXPECT_EQ(q.size(), 0u);
}

TEST(ReleaseQueueTest, BatchVerdictOnlyWhenEveryHeldIdUpToTheLargestIsReleased) {
  ReleaseQueue q(16);
  // A fixed delay: release order is id order, so each release is a prefix of what is held.
  for (uint32_t id = 10; id < 16; ++id)
    ASSERT_TRUE(q.push(id, kT0 + std::chrono::milliseconds(id)));
  auto first = q.popDue(kT0 + 12ms);
  EXPECT_EQ(first.ids, (std::vector<uint32_t>{10, 11, 12}));
  EXPECT_EQ(first.batchUpTo, 12u);
  // Jitter: 20 is due before 19, which is still held: "all <= 20" would release 19 early.
  ASSERT_TRUE(q.push(19, kT0 + 100ms));
  ASSERT_TRUE(q.push(20, kT0 + 20ms));
  auto second = q.popDue(kT0 + 50ms);
  EXPECT_EQ(second.ids, (std::vector<uint32_t>{13, 14, 15, 20}));
  EXPECT_EQ(second.batchUpTo, std::nullopt) << "19 is held below 20";
  auto rest = q.popAll();
  EXPECT_EQ(rest.ids, (std::vector<uint32_t>{19}));
  EXPECT_EQ(rest.batchUpTo, std::nullopt) << "one id needs no batch";
}

TEST(ReleaseQueueTest, PopAllReleasesEverythingInReleaseOrderAsOneBatch) {
  ReleaseQueue q(16);
  ASSERT_TRUE(q.push(7, kT0 + 3s));
  ASSERT_TRUE(q.push(8, kT0 + 1s));
  ASSERT_TRUE(q.push(9, kT0 + 2s));
  auto all = q.popAll();
  EXPECT_EQ(all.ids, (std::vector<uint32_t>{8, 9, 7}));
  EXPECT_EQ(all.batchUpTo, 9u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(ReleaseQueueTest, RefusesBeyondItsCapacity) {
  ReleaseQueue q(2);
  EXPECT_TRUE(q.push(1, kT0));
  EXPECT_TRUE(q.push(2, kT0));
  EXPECT_FALSE(q.push(3, kT0)) << "the caller accepts it at once and counts an overflow";
  EXPECT_EQ(q.size(), 2u);
  (void)q.popDue(kT0);
  EXPECT_TRUE(q.push(3, kT0));
}

TEST(ReleaseQueueTest, NoBatchNearTheIdWrap) {
  ReleaseQueue q(8);
  ASSERT_TRUE(q.push(0xFFFFFFFEu, kT0));
  ASSERT_TRUE(q.push(0xFFFFFFFFu, kT0));
  auto r = q.popDue(kT0);
  EXPECT_EQ(r.ids.size(), 2u);
  EXPECT_EQ(r.batchUpTo, std::nullopt) << "the kernel compares ids modulo 2^32";
}

TEST(ReleaseQueueTest, ManyRandomTimesComeOutInReleaseOrderAndOnlyWhenDue) {
  ReleaseQueue q(10000);
  std::mt19937 rng(42);
  std::vector<TimePoint> due(5000);
  for (uint32_t id = 0; id < 5000; ++id) {
    due[id] = kT0 + std::chrono::microseconds(rng() % 100000);
    ASSERT_TRUE(q.push(id, due[id]));
  }
  TimePoint lastDue = kT0;
  size_t total = 0;
  for (auto now = kT0; total < 5000; now += 7ms) {
    for (uint32_t id : q.popDue(now).ids) {
      EXPECT_LE(due[id], now) << "released early";
      EXPECT_GE(due[id], lastDue) << "out of release-time order";
      lastDue = due[id];
      ++total;
    }
    if (auto next = q.nextDue()) {
      EXPECT_GT(*next, now) << "a due packet was left behind";
    }
  }
  EXPECT_EQ(total, 5000u);
}

std::vector<double> samplesMs(JitterShape shape, int n) {
  DelaySampler s(50ms, 10ms, shape, 7);
  std::vector<double> out;
  for (int i = 0; i < n; ++i)
    out.push_back(std::chrono::duration<double, std::milli>(s.next()).count());
  return out;
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double stddev(const std::vector<double>& v) {
  const double m = mean(v);
  double sq = 0;
  for (double x : v) sq += (x - m) * (x - m);
  return std::sqrt(sq / static_cast<double>(v.size()));
}

TEST(DelaySamplerTest, UniformStaysWithinDelayPlusMinusJitter) {
  auto v = samplesMs(JitterShape::kUniform, 20000);
  EXPECT_GE(*std::min_element(v.begin(), v.end()), 40.0);
  EXPECT_LE(*std::max_element(v.begin(), v.end()), 60.0);
  EXPECT_NEAR(mean(v), 50.0, 0.2);
  EXPECT_NEAR(stddev(v), 10.0 / std::sqrt(3.0), 0.2);
}

TEST(DelaySamplerTest, NormalAndParetoHaveTheJitterAsStandardDeviation) {
  auto normal = samplesMs(JitterShape::kNormal, 20000);
  EXPECT_NEAR(mean(normal), 50.0, 0.3);
  EXPECT_NEAR(stddev(normal), 10.0, 0.3);
  auto pareto = samplesMs(JitterShape::kPareto, 200000);
  EXPECT_NEAR(mean(pareto), 50.0, 0.5);
  EXPECT_NEAR(stddev(pareto), 10.0, 1.5);  // shape 3: a heavy tail, a slow estimate
  // The tail is one-sided: long delays, never much shorter than delay - 1.7 sd.
  EXPECT_GE(*std::min_element(pareto.begin(), pareto.end()), 50.0 - 1.74 * 10.0);
  EXPECT_GT(*std::max_element(pareto.begin(), pareto.end()), 50.0 + 5 * 10.0);
}

TEST(DelaySamplerTest, NoJitterIsTheDelayAndNeverNegative) {
  DelaySampler fixed(30ms, 0ms, JitterShape::kUniform, 1);
  EXPECT_EQ(fixed.next(), 30ms);
  DelaySampler wide(1ms, 10ms, JitterShape::kNormal, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_GE(wide.next().count(), 0);
  EXPECT_FALSE(parseJitterShape("paretonormal").ok());
}

TEST(NfqueueRulesTest, FilterBecomesOneRulePerCombination) {
  auto none = packetMatches(nlohmann::json::object());
  ASSERT_TRUE(none.ok());
  ASSERT_EQ(none->size(), 1u);
  EXPECT_EQ((*none)[0].str(), "all");

  auto m = packetMatches(
      {{"to",
        {{"cidr", {"10.0.0.0/24", "fd00::/64"}},
         {"ports", {{{"first", 80}, {"last", 80}}, {{"first", 8000}, {"last", 8100}}}}}},
       {"protocol", "tcp"}});
  ASSERT_TRUE(m.ok()) << m.error().describe();
  std::vector<std::string> rules;
  for (const auto& r : *m) rules.push_back(r.str());
  EXPECT_EQ(rules,
            (std::vector<std::string>{"ip daddr 10.0.0.0/24 meta l4proto tcp th dport 80",
                                      "ip daddr 10.0.0.0/24 meta l4proto tcp th dport 8000-8100",
                                      "ip6 daddr fd00::/64 meta l4proto tcp th dport 80",
                                      "ip6 daddr fd00::/64 meta l4proto tcp th dport 8000-8100"}));
}

TEST(NfqueueRulesTest, SourceAndDestinationOfOneFamilyOnlyAndPortsImplyTcpUdp) {
  // from has only an IPv4 address: no IPv6 rule can match both sides.
  auto m = packetMatches(
      {{"to", {{"cidr", {"10.0.0.2/32", "fd00::2/128"}}}},
       {"from", {{"cidr", {"10.0.0.1/32"}}, {"ports", {{{"first", 53}, {"last", 53}}}}}}});
  ASSERT_TRUE(m.ok()) << m.error().describe();
  std::vector<std::string> rules;
  for (const auto& r : *m) rules.push_back(r.str());
  EXPECT_EQ(rules, (std::vector<std::string>{
                       "ip daddr 10.0.0.2/32 ip saddr 10.0.0.1/32 meta l4proto tcp th sport 53",
                       "ip daddr 10.0.0.2/32 ip saddr 10.0.0.1/32 meta l4proto udp th sport 53"}));
  auto icmp = packetMatches({{"protocol", "icmp"}});
  ASSERT_TRUE(icmp.ok());
  ASSERT_EQ(icmp->size(), 2u);
  EXPECT_EQ((*icmp)[0].str(), "meta l4proto icmp");
  EXPECT_EQ((*icmp)[1].str(), "meta l4proto ipv6-icmp");
}

TEST(NfqueueRulesTest, TooManyCombinationsIsAnError) {
  nlohmann::json cidrs = nlohmann::json::array();
  nlohmann::json ports = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) {
    cidrs.push_back("10.0." + std::to_string(i) + ".0/24");
    ports.push_back({{"first", 1000 + i}, {"last", 1000 + i}});
  }
  auto m = packetMatches({{"to", {{"cidr", cidrs}, {"ports", ports}}}});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalid);
}

}  // namespace
}  // namespace chaosd::nfq
