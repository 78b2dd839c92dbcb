// parseCron: the 5-field cron expressions of `schedule.cron`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "experiments/model/Cron.h"

namespace chaosd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

template <size_t N>
std::vector<int> set(const std::bitset<N>& bits) {
  std::vector<int> out;
  for (size_t i = 0; i < N; ++i) {
    if (bits.test(i)) out.push_back(static_cast<int>(i));
  }
  return out;
}

CronSpec ok(std::string_view text) {
  auto r = parseCron(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : CronSpec{};
}

std::string error(std::string_view text) {
  auto r = parseCron(text);
  EXPECT_FALSE(r.ok()) << text << " was accepted";
  return r.ok() ? "" : r.error().message();
}

TEST(CronTest, EveryMinute) {
  CronSpec c = ok("* * * * *");
  EXPECT_EQ(c.minutes.count(), 60u);
  EXPECT_EQ(c.hours.count(), 24u);
  EXPECT_EQ(set(c.daysOfMonth).front(), 1);
  EXPECT_EQ(c.daysOfMonth.count(), 31u);
  EXPECT_EQ(c.months.count(), 12u);
  EXPECT_FALSE(c.months.test(0));
  EXPECT_EQ(c.daysOfWeek.count(), 7u);
  EXPECT_FALSE(c.domRestricted);
  EXPECT_FALSE(c.dowRestricted);
  EXPECT_EQ(c.text, "* * * * *");
}

TEST(CronTest, NumbersAndLists) {
  CronSpec c = ok("0,30 9,12,18 1,15 * *");
  EXPECT_THAT(set(c.minutes), ElementsAre(0, 30));
  EXPECT_THAT(set(c.hours), ElementsAre(9, 12, 18));
  EXPECT_THAT(set(c.daysOfMonth), ElementsAre(1, 15));
  EXPECT_TRUE(c.domRestricted);
  EXPECT_FALSE(c.dowRestricted);
}

TEST(CronTest, Ranges) {
  CronSpec c = ok("0 9-17 * * 1-5");
  EXPECT_THAT(set(c.hours), ElementsAre(9, 10, 11, 12, 13, 14, 15, 16, 17));
  EXPECT_THAT(set(c.daysOfWeek), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_TRUE(c.dowRestricted);
}

TEST(CronTest, Steps) {
  EXPECT_THAT(set(ok("*/15 * * * *").minutes), ElementsAre(0, 15, 30, 45));
  EXPECT_THAT(set(ok("10-50/20 * * * *").minutes), ElementsAre(10, 30, 50));
  EXPECT_THAT(set(ok("5/15 * * * *").minutes), ElementsAre(5, 20, 35, 50));  // to the end
  EXPECT_THAT(set(ok("0 */6 * * *").hours), ElementsAre(0, 6, 12, 18));
  EXPECT_THAT(set(ok("0 0 */10 * *").daysOfMonth), ElementsAre(1, 11, 21, 31));
}

TEST(CronTest, ListOfRangesAndSteps) {
  EXPECT_THAT(set(ok("0-2,30-32,50-59/5 * * * *").minutes),
              ElementsAre(0, 1, 2, 30, 31, 32, 50, 55));
}

TEST(CronTest, MonthAndDayNames) {
  CronSpec c = ok("0 3 * jan,jul mon-fri");
  EXPECT_THAT(set(c.months), ElementsAre(1, 7));
  EXPECT_THAT(set(c.daysOfWeek), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(set(ok("0 3 * * TUE").daysOfWeek), ElementsAre(2));  // any case
  EXPECT_THAT(set(ok("0 3 * Dec * ").months), ElementsAre(12));
  EXPECT_THAT(set(ok("0 3 * * sun,sat").daysOfWeek), ElementsAre(0, 6));
}

TEST(CronTest, ZeroAndSevenAreSunday) {
  EXPECT_THAT(set(ok("0 0 * * 0").daysOfWeek), ElementsAre(0));
  EXPECT_THAT(set(ok("0 0 * * 7").daysOfWeek), ElementsAre(0));
  EXPECT_THAT(set(ok("0 0 * * 5-7").daysOfWeek), ElementsAre(0, 5, 6));
}

TEST(CronTest, BothDayFieldsRestricted) {
  CronSpec c = ok("0 0 1 * mon");
  EXPECT_TRUE(c.domRestricted);
  EXPECT_TRUE(c.dowRestricted);
}

TEST(CronTest, ExtraWhitespaceBetweenFields) {
  EXPECT_THAT(set(ok("  30\t2  *  * \t 2 ").minutes), ElementsAre(30));
}

TEST(CronTest, WrongNumberOfFields) {
  EXPECT_THAT(error("0 0 3 * * tue"), HasSubstr("this one has 6"));
  EXPECT_THAT(error("0 3 * *"), HasSubstr("this one has 4"));
  EXPECT_THAT(error(""), HasSubstr("this one has 0"));
  EXPECT_THAT(error("@daily"), HasSubstr("5 fields"));
}

TEST(CronTest, OutOfRange) {
  EXPECT_EQ(error("61 3 * * *"), "cron minute field '61': out of range 0-59");
  EXPECT_EQ(error("0 24 * * *"), "cron hour field '24': out of range 0-23");
  EXPECT_EQ(error("0 0 0 * *"), "cron day of month field '0': out of range 1-31");
  EXPECT_EQ(error("0 0 32 * *"), "cron day of month field '32': out of range 1-31");
  EXPECT_EQ(error("0 0 * 13 *"), "cron month field '13': out of range 1-12");
  EXPECT_EQ(error("0 0 * * 8"), "cron day of week field '8': out of range 0-7");
  EXPECT_THAT(error("0-60 * * * *"), HasSubstr("out of range 0-59"));
}

TEST(CronTest, NotANumberOrName) {
  EXPECT_EQ(error("x * * * *"), "cron minute field 'x': not a number");
  EXPECT_EQ(error("0 0 * * funday"), "cron day of week field 'funday': not a number or name");
  EXPECT_THAT(error("mon * * * *"), HasSubstr("not a number"));  // names only where they belong
  EXPECT_THAT(error("-5 * * * *"), HasSubstr("minute"));
}

TEST(CronTest, BadStepsAndRanges) {
  EXPECT_THAT(error("*/0 * * * *"), HasSubstr("the step must be a positive number"));
  EXPECT_THAT(error("*/x * * * *"), HasSubstr("the step must be a positive number"));
  EXPECT_THAT(error("*/-5 * * * *"), HasSubstr("the step must be a positive number"));
  EXPECT_THAT(error("30-10 * * * *"), HasSubstr("the range runs backwards"));
  EXPECT_THAT(error("0 0 * * fri-mon"), HasSubstr("the range runs backwards"));
}

TEST(CronTest, EmptyListItems) {
  EXPECT_THAT(error("1,,2 * * * *"), HasSubstr("empty list item"));
  EXPECT_THAT(error("1, * * * *"), HasSubstr("empty list item"));
  EXPECT_THAT(error(",1 * * * *"), HasSubstr("empty list item"));
}

}  // namespace
}  // namespace chaosd
