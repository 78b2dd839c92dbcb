#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "chaosd/base/Units.h"

namespace chaosd::units {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The message of a failed parse; fails the test when the parse succeeded.
template <typename T>
std::string errorOf(const Result<T>& result) {
  EXPECT_FALSE(result.ok()) << "expected an error";
  if (result.ok()) return "<ok>";
  EXPECT_EQ(result.error().code(), ErrorCode::kInvalid);
  return result.error().message();
}

// A deterministic spread of 64-bit values for round trips.
std::vector<uint64_t> spread(uint64_t max, int count) {
  std::vector<uint64_t> out;
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (int i = 0; i < count; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Values of every magnitude, not just huge ones.
    out.push_back((x >> (i % 64)) % max);
  }
  return out;
}

// ---- Durations -------------------------------------------------------------------------------

TEST(UnitsDurationTest, ParsesEveryUnit) {
  EXPECT_EQ(*parseDuration("10ns"), nanoseconds(10));
  EXPECT_EQ(*parseDuration("100us"), microseconds(100));
  EXPECT_EQ(*parseDuration("100\xC2\xB5s"), microseconds(100));  // micro sign
  EXPECT_EQ(*parseDuration("100\xCE\xBCs"), microseconds(100));  // greek mu
  EXPECT_EQ(*parseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*parseDuration("30s"), seconds(30));
  EXPECT_EQ(*parseDuration("5m"), minutes(5));
  EXPECT_EQ(*parseDuration("1h"), hours(1));
  EXPECT_EQ(*parseDuration("2d"), hours(48));
}

TEST(UnitsDurationTest, ParsesSequencesAndDecimals) {
  EXPECT_EQ(*parseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*parseDuration("2m30.5s"), milliseconds(150500));
  EXPECT_EQ(
      *parseDuration("1d2h3m4s5ms6us7ns"),
      hours(26) + minutes(3) + seconds(4) + milliseconds(5) + microseconds(6) + nanoseconds(7));
  EXPECT_EQ(*parseDuration("30m1h"), minutes(90));  // any order, summed
  EXPECT_EQ(*parseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*parseDuration(".5s"), milliseconds(500));
  EXPECT_EQ(*parseDuration("0.5h"), minutes(30));
  EXPECT_EQ(*parseDuration("0.000000001s"), nanoseconds(1));
  EXPECT_EQ(*parseDuration("1.999ns"), nanoseconds(1));  // below a nanosecond: rounded down
  EXPECT_EQ(*parseDuration("0.1234567891234567891234s"), nanoseconds(123456789));
  EXPECT_EQ(*parseDuration("0005s"), seconds(5));
}

TEST(UnitsDurationTest, ZeroAndBoundaries) {
  EXPECT_EQ(*parseDuration("0"), nanoseconds(0));  // zero is zero in every unit
  EXPECT_EQ(*parseDuration("0s"), nanoseconds(0));
  EXPECT_EQ(*parseDuration("0.0ms"), nanoseconds(0));
  EXPECT_EQ(*parseDuration("9223372036854775807ns"), Duration::max());
  EXPECT_EQ(*parseDuration("106751d23h47m16.854775807s"), Duration::max());
  EXPECT_THAT(errorOf(parseDuration("9223372036854775808ns")),
              HasSubstr("is too large for a duration (at most 106751d23h47m16.854775807s)"));
  EXPECT_THAT(errorOf(parseDuration("106751d23h47m16.854775808s")), HasSubstr("too large"));
  EXPECT_THAT(errorOf(parseDuration("106752d")), HasSubstr("too large"));
  EXPECT_THAT(errorOf(parseDuration("99999999999999999999999h")), HasSubstr("too large"));
  EXPECT_THAT(errorOf(parseDuration("9223372036854775807ns1ns")), HasSubstr("too large"));
}

TEST(UnitsDurationTest, TrimsSurroundingWhitespace) {
  EXPECT_EQ(*parseDuration("  5s\t\n"), seconds(5));
  EXPECT_EQ(*parseDuration("\r\n1h30m "), minutes(90));
}

TEST(UnitsDurationTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parseDuration("5 parsecs")),
            "'5 parsecs' is not a duration (expected a number with a unit: 250ms, 1.5s, 5m, 1h)");
  EXPECT_EQ(errorOf(parseDuration("-5s")), "'-5s': a duration cannot be negative");
  EXPECT_EQ(errorOf(parseDuration("5 s")), "'5 s': a duration cannot contain spaces (write 5s)");
  EXPECT_EQ(errorOf(parseDuration("1h 30m")),
            "'1h 30m': a duration cannot contain spaces (write 1h30m)");
  EXPECT_EQ(errorOf(parseDuration("30")),
            "'30' is ambiguous as a duration (add a unit: 30s, 30ms, 30m)");
  EXPECT_EQ(errorOf(parseDuration("5x")),
            "'5x' has an unknown unit 'x' (expected ns, us, ms, s, m, h or d)");
  EXPECT_EQ(errorOf(parseDuration("1h30")),
            "'1h30' is missing a unit after 30 (expected ns, us, ms, s, m, h or d)");
  EXPECT_EQ(errorOf(parseDuration("")),
            "an empty value is not a duration (expected a number with a unit: 250ms, 1.5s, 5m, "
            "1h)");
  EXPECT_THAT(errorOf(parseDuration("   ")), StartsWith("an empty value is not a duration"));
}

TEST(UnitsDurationTest, RejectsMalformedNumbersAndUnits) {
  for (const char* text :
       {"s",   "-",  "--5s", "+5s",  "5.s",   ".s",  "5..5s",  "1.2.3s", "abc", "0x10s", "1e3s",
        "-0s", "5S", "5H",   "5sec", "5mins", "5hr", "1h-30m", "nan",    "inf", "5s,",   "1,5s"}) {
    auto result = parseDuration(text);
    EXPECT_FALSE(result.ok()) << text;
  }
  EXPECT_THAT(errorOf(parseDuration("-0s")), HasSubstr("cannot be negative"));
  EXPECT_THAT(errorOf(parseDuration("5sec")), HasSubstr("unknown unit 'sec'"));
}

TEST(UnitsDurationTest, NonAsciiGarbageIsQuotedSafely) {
  // Invalid UTF-8 and control characters are escaped; valid UTF-8 is shown as it is.
  EXPECT_THAT(errorOf(parseDuration("5\xff")), HasSubstr("'5\\xff'"));
  EXPECT_THAT(errorOf(parseDuration("5s\x01")), HasSubstr("'5s\\x01'"));
  EXPECT_THAT(errorOf(parseDuration(std::string_view("5\0s", 3))), HasSubstr("'5\\x00s'"));
  EXPECT_THAT(errorOf(parseDuration("5\xc2\x85s")), HasSubstr("\\xc2\\x85"));  // C1 control
  EXPECT_THAT(errorOf(parseDuration("5\xe2\x80")), HasSubstr("\\xe2\\x80"));   // cut short
  EXPECT_THAT(errorOf(parseDuration("5\xed\xa0\x80s")), HasSubstr("\\xed"));   // a surrogate
  EXPECT_THAT(errorOf(parseDuration("5\xe7\xa7\x92")), HasSubstr("unknown unit '\xe7\xa7\x92'"));
  EXPECT_FALSE(parseDuration("\xe2\x80\x8b"
                             "5s")
                   .ok());                         // zero-width space
  EXPECT_FALSE(parseDuration("5\xc2\xa0s").ok());  // no-break space is not trimmed
  std::string longText(1000, 'x');
  std::string message = errorOf(parseDuration(longText));
  EXPECT_THAT(message, HasSubstr("xxx...'"));
  EXPECT_LT(message.size(), 200u);
}

TEST(UnitsDurationTest, FormatsLargestUnitsFirst) {
  struct Case {
    Duration d;
    const char* text;
  };
  for (const auto& c : std::vector<Case>{
           {nanoseconds(0), "0s"},
           {nanoseconds(1), "1ns"},
           {nanoseconds(999), "999ns"},
           {microseconds(1), "1us"},
           {nanoseconds(1500), "1.5us"},
           {microseconds(250), "250us"},
           {microseconds(1500), "1.5ms"},
           {milliseconds(250), "250ms"},
           {milliseconds(1500), "1.5s"},
           {nanoseconds(1000000001), "1.000000001s"},
           {seconds(90), "1m30s"},
           {milliseconds(90500), "1m30.5s"},
           {minutes(90), "1h30m"},
           {hours(1), "1h"},
           {hours(1) + seconds(30), "1h30s"},
           {hours(1) + milliseconds(500), "1h500ms"},
           {hours(1) + nanoseconds(1), "1h1ns"},
           {hours(24), "1d"},
           {hours(36), "1d12h"},
           {hours(48) + minutes(1), "2d1m"},
           {Duration::max(), "106751d23h47m16.854775807s"},
           {-milliseconds(1500), "-1.5s"},
           {Duration::min(), "-106751d23h47m16.854775808s"},
       }) {
    EXPECT_EQ(formatDuration(c.d), c.text) << c.d.count();
    if (c.d.count() >= 0) {
      EXPECT_EQ(*parseDuration(c.text), c.d) << c.text;
    }
  }
}

TEST(UnitsDurationTest, FormatThenParseRoundTrips) {
  for (uint64_t v : spread(static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), 2000)) {
    Duration d(static_cast<int64_t>(v));
    auto back = parseDuration(formatDuration(d));
    ASSERT_TRUE(back.ok()) << formatDuration(d);
    EXPECT_EQ(*back, d) << formatDuration(d);
  }
}

// ---- Sizes -----------------------------------------------------------------------------------

TEST(UnitsSizeTest, ParsesEveryUnit) {
  EXPECT_EQ(*parseSize("4096"), 4096u);
  EXPECT_EQ(*parseSize("100B"), 100u);
  EXPECT_EQ(*parseSize("0"), 0u);
  EXPECT_EQ(*parseSize("2kB"), 2000u);
  EXPECT_EQ(*parseSize("2KB"), 2000u);
  EXPECT_EQ(*parseSize("2MB"), 2000000u);
  EXPECT_EQ(*parseSize("2GB"), 2000000000u);
  EXPECT_EQ(*parseSize("2TB"), 2000000000000u);
  EXPECT_EQ(*parseSize("2PB"), 2000000000000000u);
  EXPECT_EQ(*parseSize("512KiB"), 512u * 1024);
  EXPECT_EQ(*parseSize("512kiB"), 512u * 1024);
  EXPECT_EQ(*parseSize("3MiB"), 3u << 20);
  EXPECT_EQ(*parseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*parseSize("1TiB"), 1ull << 40);
  EXPECT_EQ(*parseSize("1PiB"), 1ull << 50);
  EXPECT_EQ(*parseSize("256Mi"), 256ull << 20);  // as Kubernetes writes it
  EXPECT_EQ(*parseSize(" 1GiB\n"), 1ull << 30);
}

TEST(UnitsSizeTest, FractionsRoundDown) {
  EXPECT_EQ(*parseSize("1.5GiB"), 1610612736u);
  EXPECT_EQ(*parseSize("1.1KB"), 1100u);
  EXPECT_EQ(*parseSize("0.1KiB"), 102u);  // 102.4
  EXPECT_EQ(*parseSize(".5MiB"), 512u * 1024);
  EXPECT_EQ(*parseSize("0.0000001KiB"), 0u);
  EXPECT_EQ(errorOf(parseSize("1.5")),
            "'1.5': a number of bytes must be whole (or use a larger unit: 1.5KiB, 1.5MB)");
  EXPECT_THAT(errorOf(parseSize("1.5B")), HasSubstr("must be whole"));
}

TEST(UnitsSizeTest, BitsAreNotBytes) {
  EXPECT_EQ(errorOf(parseSize("10Mb")),
            "'10Mb': 'Mb' means bits, but a size is in bytes (write 10MB or 10MiB)");
  EXPECT_EQ(errorOf(parseSize("10mb")),
            "'10mb': 'mb' means bits, but a size is in bytes (write 10MB or 10MiB)");
  EXPECT_EQ(errorOf(parseSize("1kb")),
            "'1kb': 'kb' means bits, but a size is in bytes (write 1kB or 1KiB)");
  EXPECT_EQ(errorOf(parseSize("1Gib")),
            "'1Gib': 'Gib' means bits, but a size is in bytes (write 1GiB)");
  EXPECT_EQ(errorOf(parseSize("100b")),
            "'100b': 'b' means bits, but a size is in bytes (write 100B)");
}

TEST(UnitsSizeTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parseSize("512M")),
            "'512M' is ambiguous as a size (write 512MB for powers of 1000 or 512MiB for powers "
            "of 1024)");
  EXPECT_EQ(errorOf(parseSize("5XB")),
            "'5XB' has an unknown unit 'XB' (expected B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB "
            "or PiB)");
  EXPECT_EQ(errorOf(parseSize("-1KiB")), "'-1KiB': a size cannot be negative");
  EXPECT_EQ(errorOf(parseSize("5 KiB")), "'5 KiB': a size cannot contain spaces (write 5KiB)");
  EXPECT_THAT(errorOf(parseSize("")), StartsWith("an empty value is not a size (expected"));
  EXPECT_THAT(errorOf(parseSize("big")), StartsWith("'big' is not a size (expected"));
  EXPECT_THAT(errorOf(parseSize("1EiB")), HasSubstr("unknown unit 'EiB'"));
  for (const char* text :
       {"KiB", "1KIB", "1kibibyte", "1e3", "0x10", "+1", "1..5KiB", "5.KiB", "1KiBB", "1\xff"}) {
    EXPECT_FALSE(parseSize(text).ok()) << text;
  }
}

TEST(UnitsSizeTest, Overflow) {
  EXPECT_EQ(*parseSize("18446744073709551615"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(errorOf(parseSize("18446744073709551616")),
            "'18446744073709551616' is too large for a size (at most 18446744073709551615 bytes)");
  EXPECT_EQ(*parseSize("16383PiB"), 16383ull << 50);
  EXPECT_THAT(errorOf(parseSize("16384PiB")), HasSubstr("too large"));
  EXPECT_THAT(errorOf(parseSize("18446744073709551.616kB")), HasSubstr("too large"));
  EXPECT_EQ(*parseSize("18446744073709551.615kB"), std::numeric_limits<uint64_t>::max());
}

TEST(UnitsSizeTest, FormatsIecWhenExact) {
  EXPECT_EQ(formatSize(0), "0B");
  EXPECT_EQ(formatSize(1000), "1000B");
  EXPECT_EQ(formatSize(1023), "1023B");
  EXPECT_EQ(formatSize(1024), "1KiB");
  EXPECT_EQ(formatSize(1536), "1.5KiB");
  EXPECT_EQ(formatSize(1280), "1.25KiB");
  EXPECT_EQ(formatSize(512 * 1024), "512KiB");
  EXPECT_EQ(formatSize(1ull << 30), "1GiB");
  EXPECT_EQ(formatSize(1610612736), "1.5GiB");
  EXPECT_EQ(formatSize((1ull << 30) + (1ull << 20)), "1025MiB");  // exact beats shorter
  EXPECT_EQ(formatSize(1152), "1.12KiB");                         // 1.125KiB: shown, not exact
  EXPECT_EQ(formatSize(1500000), "1.43MiB");
  EXPECT_EQ(formatSize(1ull << 50), "1PiB");
  EXPECT_EQ(formatSize(std::numeric_limits<uint64_t>::max()), "16383.99PiB");
}

TEST(UnitsSizeTest, ExactFormsRoundTrip) {
  for (uint64_t bytes : {0ull, 1ull, 1023ull, 1024ull, 1536ull, 1280ull, 524288ull, 1ull << 30,
                         1610612736ull, (1ull << 30) + (1ull << 20), 16383ull << 50}) {
    EXPECT_EQ(*parseSize(formatSize(bytes)), bytes) << formatSize(bytes);
  }
  // Every size parses back to at most itself: the display form is rounded down.
  for (uint64_t bytes : spread(std::numeric_limits<uint64_t>::max(), 500)) {
    auto back = parseSize(formatSize(bytes));
    ASSERT_TRUE(back.ok()) << formatSize(bytes);
    EXPECT_LE(*back, bytes);
  }
}

// ---- Rates -----------------------------------------------------------------------------------

TEST(UnitsRateTest, ParsesBitUnits) {
  EXPECT_EQ(*parseRate("100bit"), 100u);
  EXPECT_EQ(*parseRate("500kbit"), 500000u);
  EXPECT_EQ(*parseRate("10mbit"), 10000000u);
  EXPECT_EQ(*parseRate("1gbit"), 1000000000u);
  EXPECT_EQ(*parseRate("2tbit"), 2000000000000u);
  EXPECT_EQ(*parseRate("10Mbit"), 10000000u);
  EXPECT_EQ(*parseRate("10MBIT"), 10000000u);
  EXPECT_EQ(*parseRate("1.5gbit"), 1500000000u);
  EXPECT_EQ(*parseRate("0.5bit"), 0u);
  EXPECT_EQ(*parseRate("0bit"), 0u);
}

TEST(UnitsRateTest, BpsIsBitsAndUppercaseBIsBytes) {
  EXPECT_EQ(*parseRate("100bps"), 100u);
  EXPECT_EQ(*parseRate("1kbps"), 1000u);
  EXPECT_EQ(*parseRate("1Mbps"), 1000000u);
  EXPECT_EQ(*parseRate("1mbps"), 1000000u);
  EXPECT_EQ(*parseRate("1gbps"), 1000000000u);
  EXPECT_EQ(*parseRate("1Tbps"), 1000000000000u);
  EXPECT_EQ(*parseRate("100Bps"), 800u);
  EXPECT_EQ(*parseRate("1KBps"), 8000u);
  EXPECT_EQ(*parseRate("1kBps"), 8000u);
  EXPECT_EQ(*parseRate("10MBps"), 80000000u);
  EXPECT_EQ(*parseRate("1GBps"), 8000000000u);
  EXPECT_EQ(*parseRate("1.5MBps"), 12000000u);
}

TEST(UnitsRateTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parseRate("100")),
            "'100' is ambiguous as a rate (add a unit: 100mbit, 100kbit or 100bit)");
  EXPECT_EQ(errorOf(parseRate("10MB")),
            "'10MB' is a size, not a rate (write 10MBps for bytes per second)");
  EXPECT_EQ(errorOf(parseRate("10Mb")),
            "'10Mb' has an unknown unit 'Mb' (write 10Mbit or 10Mbps for bits per second)");
  EXPECT_THAT(errorOf(parseRate("10x")),
              StartsWith("'10x' has an unknown unit 'x' (expected bit, kbit, mbit"));
  EXPECT_EQ(errorOf(parseRate("-10mbit")), "'-10mbit': a rate cannot be negative");
  EXPECT_EQ(errorOf(parseRate("10 mbit")),
            "'10 mbit': a rate cannot contain spaces (write 10mbit)");
  EXPECT_THAT(errorOf(parseRate("fast")), StartsWith("'fast' is not a rate (expected"));
  EXPECT_THAT(errorOf(parseRate("")), StartsWith("an empty value is not a rate"));
  for (const char* text :
       {"1pbit", "1kibit", "1bit/s", "mbit", "1e6bit", "1mbitt", "1mbp", "1 0mbit", "1KiB"}) {
    EXPECT_FALSE(parseRate(text).ok()) << text;
  }
}

TEST(UnitsRateTest, Overflow) {
  EXPECT_EQ(*parseRate("18446744073709551615bit"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(errorOf(parseRate("18446744073709551616bit")),
            "'18446744073709551616bit' is too large for a rate (at most "
            "18446744.073709551615tbit)");
  EXPECT_THAT(errorOf(parseRate("3000000000GBps")), HasSubstr("too large"));
  EXPECT_THAT(errorOf(parseRate("20000000tbit")), HasSubstr("too large"));
}

TEST(UnitsRateTest, FormatsAndRoundTrips) {
  EXPECT_EQ(formatRate(0), "0bit");
  EXPECT_EQ(formatRate(800), "800bit");
  EXPECT_EQ(formatRate(1000), "1kbit");
  EXPECT_EQ(formatRate(1500), "1.5kbit");
  EXPECT_EQ(formatRate(10000000), "10mbit");
  EXPECT_EQ(formatRate(1234567), "1.234567mbit");
  EXPECT_EQ(formatRate(1500000000), "1.5gbit");
  EXPECT_EQ(formatRate(1000000000000), "1tbit");
  for (uint64_t bps : spread(std::numeric_limits<uint64_t>::max(), 1000)) {
    EXPECT_EQ(*parseRate(formatRate(bps)), bps) << formatRate(bps);
  }
  EXPECT_EQ(*parseRate(formatRate(std::numeric_limits<uint64_t>::max())),
            std::numeric_limits<uint64_t>::max());
}

// ---- Percentages -----------------------------------------------------------------------------

TEST(UnitsPercentTest, PercentSignMeansZeroToHundred) {
  EXPECT_DOUBLE_EQ(*parsePercent("25%"), 0.25);
  EXPECT_DOUBLE_EQ(*parsePercent("0.5%"), 0.005);
  EXPECT_DOUBLE_EQ(*parsePercent("100%"), 1.0);
  EXPECT_DOUBLE_EQ(*parsePercent("0%"), 0.0);
  EXPECT_EQ(*parsePercent("33.3%"), 0.333);  // exactly the double nearest 0.333
  EXPECT_EQ(*parsePercent("0.7%"), 0.007);
  EXPECT_DOUBLE_EQ(*parsePercent(" 50% "), 0.5);
}

TEST(UnitsPercentTest, BareNumberIsAFraction) {
  EXPECT_DOUBLE_EQ(*parsePercent("0.25"), 0.25);
  EXPECT_DOUBLE_EQ(*parsePercent(".5"), 0.5);
  EXPECT_DOUBLE_EQ(*parsePercent("0"), 0.0);
  EXPECT_DOUBLE_EQ(*parsePercent("0.999"), 0.999);
  // Closer to zero than any double: zero, not an error.
  EXPECT_EQ(*parsePercent("0." + std::string(400, '0') + "1"), 0.0);
  EXPECT_EQ(*parsePercent("0." + std::string(400, '0') + "1%"), 0.0);
}

TEST(UnitsPercentTest, BareOneIsAmbiguous) {
  // `loss: 1` must not silently mean total loss.
  EXPECT_EQ(errorOf(parsePercent("1")),
            "'1' is ambiguous as a percentage (write 1% for a percentage or 0.01 for a fraction)");
  EXPECT_FALSE(parsePercent("1.0").ok());
  EXPECT_DOUBLE_EQ(*parsePercent("100%"), 1.0);
}

TEST(UnitsPercentTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parsePercent("25")),
            "'25' is ambiguous as a percentage (write 25% for a percentage or 0.25 for a "
            "fraction)");
  EXPECT_EQ(errorOf(parsePercent("1.5")),
            "'1.5' is ambiguous as a percentage (write 1.5% for a percentage or 0.015 for a "
            "fraction)");
  EXPECT_EQ(errorOf(parsePercent("100")),
            "'100' is ambiguous as a percentage (write 100% for a percentage or 1 for a "
            "fraction)");
  EXPECT_THAT(errorOf(parsePercent("050")), HasSubstr("write 050% for a percentage or 0.5 for"));
  EXPECT_EQ(errorOf(parsePercent("150")),
            "'150' is out of range (expected a fraction 0..1 or a percentage 0%..100%)");
  EXPECT_EQ(errorOf(parsePercent("100.5%")), "'100.5%' is more than 100% (expected 0%..100%)");
  EXPECT_EQ(errorOf(parsePercent("-5%")), "'-5%': a percentage cannot be negative");
  EXPECT_EQ(errorOf(parsePercent("-0.5")), "'-0.5': a percentage cannot be negative");
  EXPECT_EQ(errorOf(parsePercent("25 %")),
            "'25 %': a percentage cannot contain spaces (write 25%)");
  EXPECT_THAT(errorOf(parsePercent("")), StartsWith("an empty value is not a percentage"));
  EXPECT_THAT(errorOf(parsePercent(std::string(400, '9'))), HasSubstr("out of range"));
  for (const char* text : {"%", "25%%", "%25", "abc", "1e-3", "nan", "inf", "0x10", "+0.5", "5.%",
                           "25\xef\xbc\x85"}) {  // the last is a fullwidth percent sign
    EXPECT_FALSE(parsePercent(text).ok()) << text;
  }
}

TEST(UnitsPercentTest, FormatsAndRoundTrips) {
  EXPECT_EQ(formatPercent(0.25), "25%");
  EXPECT_EQ(formatPercent(0.005), "0.5%");
  EXPECT_EQ(formatPercent(1.0), "100%");
  EXPECT_EQ(formatPercent(0.0), "0%");
  EXPECT_EQ(formatPercent(-0.0), "0%");
  EXPECT_EQ(formatPercent(0.07), "7%");  // not 7.000000000000001%
  EXPECT_EQ(formatPercent(0.333), "33.3%");
  EXPECT_EQ(formatPercent(0.007), "0.7%");
  EXPECT_EQ(formatPercent(1e-9), "0.0000001%");
  EXPECT_EQ(formatPercent(1.0 / 3), "33.33333333333333%");
  EXPECT_EQ(formatPercent(-0.05), "-5%");  // not parseable back, but still readable
  std::vector<double> fractions{1.0 / 3, 2.0 / 3, 1e-9, 0.123456789, 0.999999};
  for (int i = 0; i <= 1000; ++i) fractions.push_back(i / 1000.0);
  for (double f : fractions) {
    auto back = parsePercent(formatPercent(f));
    ASSERT_TRUE(back.ok()) << formatPercent(f);
    EXPECT_EQ(*back, f) << formatPercent(f);
  }
}

// ---- Signals ---------------------------------------------------------------------------------

TEST(UnitsSignalTest, ParsesNamesAndNumbers) {
  EXPECT_EQ(*parseSignal("KILL"), SIGKILL);
  EXPECT_EQ(*parseSignal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*parseSignal("sigterm"), SIGTERM);
  EXPECT_EQ(*parseSignal("Term"), SIGTERM);
  EXPECT_EQ(*parseSignal("9"), 9);
  EXPECT_EQ(*parseSignal("09"), 9);
  EXPECT_EQ(*parseSignal("1"), 1);
  EXPECT_EQ(*parseSignal("64"), 64);
  EXPECT_EQ(*parseSignal(" INT "), SIGINT);
  EXPECT_EQ(*parseSignal("STOP"), SIGSTOP);
  EXPECT_EQ(*parseSignal("IOT"), SIGABRT);
  EXPECT_EQ(*parseSignal("SIGIO"), SIGIO);
  EXPECT_EQ(*parseSignal("CLD"), SIGCHLD);
  EXPECT_EQ(*parseSignal("SIG32"), 32);
}

TEST(UnitsSignalTest, ParsesRealtimeSignals) {
  EXPECT_EQ(*parseSignal("RTMIN"), SIGRTMIN);
  EXPECT_EQ(*parseSignal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(*parseSignal("rtmax"), SIGRTMAX);
  EXPECT_EQ(*parseSignal("RTMAX-2"), SIGRTMAX - 2);
  EXPECT_EQ(*parseSignal("RTMIN+0"), SIGRTMIN);
  EXPECT_FALSE(parseSignal("RTMIN-1").ok());
  EXPECT_FALSE(parseSignal("RTMAX+1").ok());
  EXPECT_FALSE(parseSignal("RTMIN+31").ok());
  EXPECT_FALSE(parseSignal("RTMIN+").ok());
  EXPECT_FALSE(parseSignal("RTMIN+99999999999").ok());
}

TEST(UnitsSignalTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parseSignal("0")), "'0' is not a signal number (expected 1..64)");
  EXPECT_EQ(errorOf(parseSignal("65")), "'65' is not a signal number (expected 1..64)");
  EXPECT_EQ(errorOf(parseSignal("99999999999999999999")),
            "'99999999999999999999' is not a signal number (expected 1..64)");
  EXPECT_EQ(errorOf(parseSignal("-9")), "'-9': a signal cannot be negative");
  EXPECT_EQ(errorOf(parseSignal("SIGFOO")),
            "'SIGFOO' is not a signal (expected a name like TERM, KILL, SIGINT or a number 1..64)");
  EXPECT_EQ(errorOf(parseSignal("SIG KILL")),
            "'SIG KILL': a signal cannot contain spaces (write SIGKILL)");
  for (const char* text :
       {"", "SIG", "SIGSIGKILL", "KILL9", "9KILL", "SIG0", "SIG65", "+9", "9.0", "K\xc4\xb0LL"}) {
    EXPECT_FALSE(parseSignal(text).ok()) << text;
  }
}

TEST(UnitsSignalTest, NamesAndRoundTrips) {
  EXPECT_EQ(signalName(SIGKILL), "SIGKILL");
  EXPECT_EQ(signalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(signalName(SIGHUP), "SIGHUP");
  EXPECT_EQ(signalName(SIGRTMIN), "SIGRTMIN");
  EXPECT_EQ(signalName(SIGRTMIN + 1), "SIGRTMIN+1");
  EXPECT_EQ(signalName(SIGRTMAX), "SIGRTMAX");
  EXPECT_EQ(signalName(SIGRTMAX - 1), "SIGRTMAX-1");
  EXPECT_EQ(signalName(0), "SIG0");
  EXPECT_EQ(signalName(65), "SIG65");
  EXPECT_EQ(signalName(-1), "SIG-1");
  for (int signal = 1; signal <= SIGRTMAX; ++signal) {
    EXPECT_EQ(*parseSignal(signalName(signal)), signal) << signalName(signal);
  }
}

// ---- Addresses -------------------------------------------------------------------------------

TEST(UnitsCidrTest, ParsesAddressesAndNetworks) {
  auto host = parseCidr("10.0.0.2");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->family, AF_INET);
  EXPECT_EQ(host->prefix, 32);
  EXPECT_EQ(host->str(), "10.0.0.2/32");
  EXPECT_EQ(parseCidr("10.0.0.0/24")->str(), "10.0.0.0/24");
  EXPECT_EQ(parseCidr("0.0.0.0/0")->str(), "0.0.0.0/0");
  EXPECT_EQ(parseCidr("10.0.0.2/32")->str(), "10.0.0.2/32");
  EXPECT_EQ(parseCidr("10.0.0.128/25")->str(), "10.0.0.128/25");
  auto v6 = parseCidr("fd00::/64");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->str(), "fd00::/64");
  EXPECT_EQ(parseCidr("FD00:0:0:0::/64")->str(), "fd00::/64");  // canonical form
  EXPECT_EQ(parseCidr("fd00::1")->str(), "fd00::1/128");
  EXPECT_EQ(parseCidr("::/0")->str(), "::/0");
  EXPECT_EQ(parseCidr("::1/128")->str(), "::1/128");
  EXPECT_EQ(parseCidr("::ffff:10.0.0.1")->str(), "::ffff:10.0.0.1/128");
  EXPECT_EQ(parseCidr("  10.0.0.0/8\n")->str(), "10.0.0.0/8");
  EXPECT_EQ(*parseCidr("10.0.0.2"), *parseCidr("10.0.0.2/32"));
  EXPECT_FALSE(*parseCidr("10.0.0.0/24") == *parseCidr("10.0.0.0/25"));
  EXPECT_EQ(Cidr{}.str(), "<unset>");
}

TEST(UnitsCidrTest, HostBitsNameTheNetwork) {
  EXPECT_EQ(errorOf(parseCidr("10.0.0.1/24")),
            "'10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)");
  EXPECT_EQ(errorOf(parseCidr("10.0.0.1/0")),
            "'10.0.0.1/0' has host bits set (did you mean 0.0.0.0/0?)");
  EXPECT_EQ(errorOf(parseCidr("10.0.0.129/25")),
            "'10.0.0.129/25' has host bits set (did you mean 10.0.0.128/25?)");
  EXPECT_EQ(errorOf(parseCidr("fd00::1/64")),
            "'fd00::1/64' has host bits set (did you mean fd00::/64?)");
  EXPECT_EQ(errorOf(parseCidr("fd00::1/127")),
            "'fd00::1/127' has host bits set (did you mean fd00::/127?)");
}

TEST(UnitsCidrTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parseCidr("10.0.0.0/33")),
            "'10.0.0.0/33': prefix length '33' is out of range for IPv4 (expected 0..32)");
  EXPECT_EQ(errorOf(parseCidr("fd00::/129")),
            "'fd00::/129': prefix length '129' is out of range for IPv6 (expected 0..128)");
  EXPECT_THAT(errorOf(parseCidr("fd00::/99999999999")), HasSubstr("out of range for IPv6"));
  EXPECT_EQ(errorOf(parseCidr("10.0.0.0/")),
            "'10.0.0.0/': the prefix length must be a number 0..32");
  EXPECT_EQ(errorOf(parseCidr("10.0.0.0/-1")),
            "'10.0.0.0/-1': the prefix length must be a number 0..32");
  EXPECT_EQ(errorOf(parseCidr("10.0.0.256")),
            "'10.0.0.256' is not an IP address or network (expected an address or network like "
            "10.0.0.2, 10.0.0.0/24 or fd00::/64)");
  EXPECT_EQ(errorOf(parseCidr("10.0.0.0 /24")),
            "'10.0.0.0 /24': an IP address or network cannot contain spaces (write 10.0.0.0/24)");
  for (const char* text : {"", "10.0.0", "10.0.0.0.0", "010.0.0.1", "10.0.0.0/24/8", "/24",
                           "10.0.0.0/x", "fe80::1%eth0", "[fd00::1]", "fd00:::1", "1.2.3.4:80",
                           "localhost", "10.0.0.0/+24", "10.0.0.\xff", "-10.0.0.0"}) {
    EXPECT_FALSE(parseCidr(text).ok()) << text;
  }
  // inet_pton stops at a NUL; the whole text must still be an address.
  EXPECT_FALSE(parseCidr(std::string_view("10.0.0.1\0junk", 13)).ok());
  EXPECT_FALSE(parseCidr(std::string(100, '1')).ok());
}

TEST(UnitsCidrTest, ParseIpRejectsAPrefix) {
  auto ip = parseIp("10.0.0.2");
  ASSERT_TRUE(ip.ok());
  EXPECT_EQ(ip->prefix, 32);
  EXPECT_EQ(ip->str(), "10.0.0.2/32");
  EXPECT_EQ(parseIp("fd00::1")->prefix, 128);
  EXPECT_EQ(errorOf(parseIp("10.0.0.0/24")),
            "'10.0.0.0/24': an IP address is expected here, not a network (write 10.0.0.0)");
  EXPECT_THAT(errorOf(parseIp("10.0.0.1/32")), HasSubstr("(write 10.0.0.1)"));
  EXPECT_EQ(errorOf(parseIp("host")),
            "'host' is not an IP address (expected an address like 10.0.0.2 or fd00::1)");
  EXPECT_FALSE(parseIp("").ok());
}

// ---- Ports -----------------------------------------------------------------------------------

TEST(UnitsPortTest, ParsesPorts) {
  EXPECT_EQ(*parsePort("1"), 1);
  EXPECT_EQ(*parsePort("5432"), 5432);
  EXPECT_EQ(*parsePort("65535"), 65535);
  EXPECT_EQ(*parsePort(" 80 "), 80);
  EXPECT_EQ(*parsePort("080"), 80);
}

TEST(UnitsPortTest, RejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parsePort("0")), "'0' is out of range for a port (expected 1..65535)");
  EXPECT_EQ(errorOf(parsePort("65536")), "'65536' is out of range for a port (expected 1..65535)");
  EXPECT_EQ(errorOf(parsePort("99999999999999999999")),
            "'99999999999999999999' is out of range for a port (expected 1..65535)");
  EXPECT_EQ(errorOf(parsePort("-1")), "'-1': a port cannot be negative");
  EXPECT_EQ(errorOf(parsePort("http")), "'http' is not a port (expected a number 1..65535)");
  EXPECT_EQ(errorOf(parsePort("80 80")), "'80 80': a port cannot contain spaces (write 8080)");
  for (const char* text : {"", "80.5", "+80", "0x50", "80a", "8080-8081", "\xd9\xa8"}) {
    EXPECT_FALSE(parsePort(text).ok()) << text;
  }
}

TEST(UnitsPortTest, ParsesRanges) {
  EXPECT_EQ(*parsePortRange("8080"), (PortRange{8080, 8080}));
  EXPECT_EQ(*parsePortRange("8000-8100"), (PortRange{8000, 8100}));
  EXPECT_EQ(*parsePortRange("1-65535"), (PortRange{1, 65535}));
  EXPECT_EQ(*parsePortRange("8080-8080"), (PortRange{8080, 8080}));
  EXPECT_EQ(*parsePortRange(" 8000-8100\t"), (PortRange{8000, 8100}));
  EXPECT_EQ((PortRange{8080, 8080}).str(), "8080");
  EXPECT_EQ((PortRange{8000, 8100}).str(), "8000-8100");
  for (const char* text : {"1", "65535", "8000-8100", "1-65535"}) {
    EXPECT_EQ(parsePortRange(text)->str(), text);
  }
}

TEST(UnitsPortTest, RangeRejectsWithPreciseMessages) {
  EXPECT_EQ(errorOf(parsePortRange("8100-8000")),
            "'8100-8000' is reversed (the first port must not be above the last; did you mean "
            "8000-8100?)");
  EXPECT_EQ(errorOf(parsePortRange("8000-70000")),
            "'8000-70000': '70000' is out of range for a port (expected 1..65535)");
  EXPECT_EQ(errorOf(parsePortRange("0-10")),
            "'0-10': '0' is out of range for a port (expected 1..65535)");
  EXPECT_EQ(errorOf(parsePortRange("8000-")),
            "'8000-': an empty value is not a port (expected a number 1..65535)");
  EXPECT_EQ(errorOf(parsePortRange("8000 - 8100")),
            "'8000 - 8100': a port range cannot contain spaces (write 8000-8100)");
  EXPECT_EQ(errorOf(parsePortRange("-8000")), "'-8000': a port cannot be negative");
  for (const char* text : {"", "-", "a-b", "1-2-3", "8000--8100", "8000-8100-", "8000..8100"}) {
    EXPECT_FALSE(parsePortRange(text).ok()) << text;
  }
}

}  // namespace
}  // namespace chaosd::units
