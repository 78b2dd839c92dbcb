// The seed's reliability models (reports/Reliability.h) against values worked out by hand; each
// test's comment holds the hand calculation.
#include <gtest/gtest.h>

#include "reports/Reliability.h"

namespace chaosd::report {
namespace {

constexpr double kEps = 1e-12;

TEST(ReliabilityTest, SeriesIsTheProduct) {
  // 0.9 * 0.8 = 0.72; 0.72 * 0.95 = 0.684.
  EXPECT_NEAR(seriesReliability({0.9, 0.8, 0.95}), 0.684, kEps);
  EXPECT_NEAR(seriesReliability({}), 1.0, kEps);
}

TEST(ReliabilityTest, ParallelIsOneMinusTheProductOfFailures) {
  // 1 - (1 - 0.9)(1 - 0.8) = 1 - 0.1 * 0.2 = 0.98.
  EXPECT_NEAR(parallelReliability({0.9, 0.8}), 0.98, kEps);
  // 1 - 0.1 * 0.2 * 0.3 = 1 - 0.006 = 0.994.
  EXPECT_NEAR(parallelReliability({0.9, 0.8, 0.7}), 0.994, kEps);
  EXPECT_NEAR(parallelReliability({}), 0.0, kEps);
}

TEST(ReliabilityTest, KOfNWithEqualReplicas) {
  // 2 of 3 at r = 0.9: C(3,2) 0.9^2 0.1 + C(3,3) 0.9^3 = 3 * 0.81 * 0.1 + 0.729
  //                  = 0.243 + 0.729 = 0.972.
  EXPECT_NEAR(kOfNReliability(2, 3, 0.9), 0.972, 1e-12);
  // 3 of 5 at r = 0.5: (C(5,3) + C(5,4) + C(5,5)) / 2^5 = (10 + 5 + 1) / 32 = 0.5.
  EXPECT_NEAR(kOfNReliability(3, 5, 0.5), 0.5, 1e-12);
  // 1 of 2 at 0.9 is parallel: 1 - 0.01 = 0.99; 2 of 2 is series: 0.81.
  EXPECT_NEAR(kOfNReliability(1, 2, 0.9), 0.99, 1e-12);
  EXPECT_NEAR(kOfNReliability(2, 2, 0.9), 0.81, 1e-12);
  // Edges: nothing required is always up; more than there are never is.
  EXPECT_EQ(kOfNReliability(0, 3, 0.2), 1.0);
  EXPECT_EQ(kOfNReliability(4, 3, 0.99), 0.0);
  EXPECT_NEAR(kOfNReliability(2, 3, 1.0), 1.0, kEps);
  EXPECT_NEAR(kOfNReliability(1, 3, 0.0), 0.0, kEps);
}

TEST(ReliabilityTest, KOfNWithUnequalReplicasIsThePoissonBinomialTail) {
  // 2 of {0.9, 0.8, 0.7}:
  //   all three up:   0.9 * 0.8 * 0.7                                   = 0.504
  //   exactly two up: 0.9*0.8*0.3 + 0.9*0.2*0.7 + 0.1*0.8*0.7
  //                 = 0.216 + 0.126 + 0.056                             = 0.398
  //   R = 0.504 + 0.398 = 0.902.
  EXPECT_NEAR(kOfNReliability(2, {0.9, 0.8, 0.7}), 0.902, 1e-12);
  // k = n is the series model (0.504), k = 1 the parallel one (0.994).
  EXPECT_NEAR(kOfNReliability(3, {0.9, 0.8, 0.7}), 0.504, 1e-12);
  EXPECT_NEAR(kOfNReliability(1, {0.9, 0.8, 0.7}), 0.994, 1e-12);
  // With every Ri equal it is the binomial formula: 2 of 3 at 0.9 = 0.972.
  EXPECT_NEAR(kOfNReliability(2, {0.9, 0.9, 0.9}), 0.972, 1e-12);
  EXPECT_EQ(kOfNReliability(4, {0.9, 0.9, 0.9}), 0.0);
  EXPECT_EQ(kOfNReliability(0, {0.1}), 1.0);
}

TEST(ReliabilityTest, TiersInSeries) {
  // web: 2 of 3 at 0.9 = 0.972 (above); db: 1 of {0.99, 0.95} = 1 - 0.01 * 0.05 = 0.9995.
  // System: 0.972 * 0.9995 = 0.971514.
  const std::vector<TierModel> tiers = {{"web", 2, {0.9, 0.9, 0.9}}, {"db", 1, {0.99, 0.95}}};
  EXPECT_NEAR(systemReliability(tiers), 0.971514, 1e-12);
  EXPECT_EQ(systemReliability({}), 1.0);
}

TEST(ReliabilityTest, LargeFleetsStayFinite) {
  // 500 of 1000 at 0.5: the binomial is symmetric, so P(X >= 500) = (1 + P(X = 500)) / 2, and
  // P(X = 500) = C(1000,500) / 2^1000 ~ 0.0252 (Stirling: 1/sqrt(pi * 500) = 0.02523).
  const double r = kOfNReliability(500, 1000, 0.5);
  EXPECT_NEAR(r, (1 + 0.02523) / 2, 1e-4);
  std::vector<double> same(1000, 0.5);
  EXPECT_NEAR(kOfNReliability(500, same), r, 1e-9);
}

TEST(ReliabilityTest, WilsonInterval) {
  // 1 of 3, z = 1.96, z^2 = 3.8416: denominator 1 + 3.8416/3 = 2.280533;
  //   centre = (1/3 + 3.8416/6) / 2.280533 = 0.973600 / 2.280533 = 0.426917;
  //   half = 1.96 * sqrt((1/3)(2/3)/3 + 3.8416/36) / 2.280533
  //        = 1.96 * sqrt(0.074074 + 0.106711) / 2.280533 = 0.833369 / 2.280533 = 0.365427;
  //   interval 0.061490 to 0.792344.
  auto i = wilsonInterval(1, 3);
  ASSERT_TRUE(i);
  EXPECT_NEAR(i->low, 0.061490, 1e-5);
  EXPECT_NEAR(i->high, 0.792344, 1e-5);
  // 100 of 100: the upper end is 1, the lower 1 / (1 + 3.8416/100) = 0.963005.
  auto all = wilsonInterval(100, 100);
  ASSERT_TRUE(all);
  EXPECT_NEAR(all->high, 1.0, 1e-12);
  EXPECT_NEAR(all->low, 0.963005, 1e-5);
  EXPECT_FALSE(wilsonInterval(0, 0));
}

}  // namespace
}  // namespace chaosd::report
