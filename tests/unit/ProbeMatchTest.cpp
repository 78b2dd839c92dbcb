#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "chaosd/base/SearchRegex.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {
namespace {

ValueMatcher matcher(ValueMatch m) {
  auto r = ValueMatcher::create(m, "test");
  EXPECT_TRUE(r.ok());
  return std::move(*r);
}

ValueMatch equals(std::string v) {
  ValueMatch m;
  m.values = {std::move(v)};
  return m;
}

TEST(ProbeMatchTest, EqualsComparesNumbersAsNumbers) {
  auto m = matcher(equals("200"));
  EXPECT_TRUE(m.matches("200"));
  EXPECT_TRUE(m.matches("200.0"));
  EXPECT_TRUE(m.matches("2e2"));
  EXPECT_TRUE(m.matches(200.0));
  EXPECT_FALSE(m.matches("201"));
  EXPECT_FALSE(m.matches(" 200"));  // not a number: compared as a string
  auto s = matcher(equals("ok"));
  EXPECT_TRUE(s.matches("ok"));
  EXPECT_FALSE(s.matches("OK"));
  EXPECT_EQ(m.describe(), "== 200");
}

TEST(ProbeMatchTest, OneOfRangeAndRegex) {
  ValueMatch oneOf;
  oneOf.kind = ValueMatch::Kind::kOneOf;
  oneOf.values = {"200", "204", "ok"};
  auto o = matcher(oneOf);
  EXPECT_TRUE(o.matches(204.0));
  EXPECT_TRUE(o.matches("ok"));
  EXPECT_FALSE(o.matches("500"));

  ValueMatch range;
  range.kind = ValueMatch::Kind::kRange;
  range.low = 200;
  range.high = 299;
  auto r = matcher(range);
  EXPECT_TRUE(r.matches(200.0));
  EXPECT_TRUE(r.matches(299.0));  // inclusive
  EXPECT_TRUE(r.matches("250.5"));
  EXPECT_FALSE(r.matches(300.0));
  EXPECT_FALSE(r.matches("abc"));
  EXPECT_FALSE(r.matches(std::nan("")));

  ValueMatch regex;
  regex.kind = ValueMatch::Kind::kRegex;
  regex.regex = "^2\\d\\d$";
  auto x = matcher(regex);
  EXPECT_TRUE(x.matches(204.0));  // integers are matched in their plain form
  EXPECT_FALSE(x.matches(404.0));
  EXPECT_EQ(x.describe(), "~ /^2\\d\\d$/");
}

TEST(ProbeMatchTest, ParseNumber) {
  EXPECT_EQ(parseNumber("42"), 42);
  EXPECT_EQ(parseNumber("-1.5"), -1.5);
  EXPECT_EQ(parseNumber("+Inf"), INFINITY);
  EXPECT_EQ(parseNumber("-Inf"), -INFINITY);
  EXPECT_TRUE(std::isnan(parseNumber("NaN").value_or(0)));
  EXPECT_FALSE(parseNumber("").has_value());
  EXPECT_FALSE(parseNumber("12abc").has_value());
  EXPECT_FALSE(parseNumber("++1").has_value());
  EXPECT_EQ(formatNumber(0.5), "0.5");
  EXPECT_EQ(formatNumber(200), "200");
}

TEST(ProbeMatchTest, SearchRegexIsMultilineAndStackSafe) {
  auto r = SearchRegex::compile("^ok$", "stdout regex");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->search("starting\nok\n"));
  EXPECT_FALSE(r->search("not ok\n"));

  // Would overflow the stack with libstdc++'s default (recursive) executor.
  auto greedy = SearchRegex::compile("a.*ok", "body regex");
  ASSERT_TRUE(greedy.ok());
  EXPECT_TRUE(greedy->search(std::string(200 * 1024, 'a') + "ok"));

  auto backref = SearchRegex::compile("(a)\\1", "body regex");
  ASSERT_FALSE(backref.ok());
  EXPECT_EQ(backref.error().code(), ErrorCode::kInvalid);
  auto bad = SearchRegex::compile("(", "body regex");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().rfind("body regex /(/ is not a valid regex: ", 0), 0u);
}

}  // namespace
}  // namespace chaosd
