// The synchronised start's time format (RFC 3339) and its bounds.
#include <gtest/gtest.h>

#include "chaosd/base/StartAt.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

system_clock::time_point at(int64_t unixSeconds, std::chrono::nanoseconds extra = 0ns) {
  return system_clock::time_point(std::chrono::seconds(unixSeconds)) +
         std::chrono::duration_cast<system_clock::duration>(extra);
}

TEST(StartAtTest, ParsesUtcAndOffsetsToTheSameInstant) {
  // 2026-05-01T10:00:00Z is 1777629600.
  auto utc = parseStartAt("2026-05-01T10:00:00Z");
  ASSERT_TRUE(utc.ok()) << utc.error().describe();
  EXPECT_EQ(*utc, at(1777629600));
  auto plus = parseStartAt("2026-05-01T12:00:00+02:00");
  ASSERT_TRUE(plus.ok());
  EXPECT_EQ(*plus, *utc);
  auto minus = parseStartAt("2026-05-01T06:30:00-03:30");
  ASSERT_TRUE(minus.ok());
  EXPECT_EQ(*minus, *utc);
  auto lower = parseStartAt("2026-05-01t10:00:00z");
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(*lower, *utc);
}

TEST(StartAtTest, KeepsFractionsDownToMicroseconds) {
  auto t = parseStartAt("2026-05-01T10:00:00.250001Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, at(1777629600, 250001us));
  EXPECT_EQ(formatStartAt(*t), "2026-05-01T10:00:00.250001Z");
}

TEST(StartAtTest, RefusesWhatIsNotAnInstantNamingTheText) {
  for (const char* bad : {"2026-05-01T10:00:00", "2026-05-01 10:00:00Z", "2026-13-01T10:00:00Z",
                          "2026-02-30T10:00:00Z", "2026-05-01T10:00:00.Z",
                          "2026-05-01T10:00:00+0200", "2026-05-01T10:00:00Zjunk", "tomorrow", "",
                          "+30s", "1015-01-01T00:00:00Z", "9999-01-01T00:00:00Z"}) {
    auto t = parseStartAt(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.error().code(), ErrorCode::kInvalid);
    EXPECT_NE(t.error().message().find(std::string("'") + bad + "'"), std::string::npos)
        << t.error().message();
    EXPECT_NE(t.error().message().find("RFC 3339"), std::string::npos);
  }
}

TEST(StartAtTest, MustBeAheadAndWithinADay) {
  const auto now = at(1777629600);
  EXPECT_TRUE(checkStartAt(now + 1s, now).ok());
  EXPECT_TRUE(checkStartAt(now + 24h, now).ok());
  auto passed = checkStartAt(now - 1ms, now);
  ASSERT_FALSE(passed.ok());
  EXPECT_NE(passed.error().message().find("has passed"), std::string::npos);
  EXPECT_FALSE(checkStartAt(now, now).ok());
  auto far = checkStartAt(now + 24h + 1s, now);
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.error().message().find("more than 24h away"), std::string::npos);
}

}  // namespace
}  // namespace chaosd
