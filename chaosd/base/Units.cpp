#include "chaosd/base/Units.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "chaosd/base/Quote.h"

// Rules that the header leaves open, chosen here and relied on by the tests:
// - Numbers are plain decimals ("5", "1.5", ".5"); no sign, exponent, hex or inner spaces.
//   Fractions are computed exactly and rounded down to the base unit (ns, byte, bit/s).
// - Durations accept "0" without a unit (zero is the same in every unit); any other bare
//   number is an error. Components may come in any order and are summed ("1h30m").
// - formatDuration: d, h, m as whole components, largest first, zeros omitted; what is left
//   below a minute is one number in the largest of s, ms, us, ns that keeps it >= 1, with an
//   exact decimal fraction: "1d12h", "1h30s", "1m30.5s", "1h500ms", "1.5us", "0s".
// - formatSize: bytes below 1KiB; else the largest IEC unit in which the size is exact with
//   at most two decimals ("1.5GiB", "1025MiB"); else, for display only, two decimals rounded
//   down in the largest unit ("1.43MiB"). formatSizeExact never rounds: the shorter of an exact IEC
//   form and a whole number of SI units ("1.5KiB", "2GB"), else bytes ("1500B").
// - Percentages: with '%' the number is 0..100, without it a fraction 0..1; a bare number in
//   [1, 100] is ambiguous and rejected with both spellings suggested (a bare 1 included:
//   write 100% or 1%).
namespace chaosd::units {
namespace {

Error invalid(std::string message) { return Error(ErrorCode::kInvalid, std::move(message)); }

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isDigit);
}
char toLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char toUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool equalsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return toLower(x) == toLower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The user's text in quotes, escaped and bounded (chaosd/base/Quote.h).
std::string quote(std::string_view s) { return quoteText(s); }

// What a parser reads, in the words of its error messages.
struct Kind {
  std::string_view noun;      // "a duration"
  std::string_view expected;  // "a number with a unit: 250ms, 1.5s, 5m, 1h"
  bool numeric;               // a leading '-' means "negative" rather than garbage
};

std::string notA(std::string_view s, const Kind& kind) {
  std::string what = s.empty() ? std::string("an empty value") : quote(s);
  return what + " is not " + std::string(kind.noun) + " (expected " + std::string(kind.expected) +
         ")";
}

// The checks every parser shares, done before `body` reads the text: surrounding whitespace
// is trimmed; spaces inside, a minus sign and emptiness get messages of their own.
template <typename T, typename Body>
Result<T> parseWith(std::string_view text, const Kind& kind, Body body) {
  std::string_view s = trim(text);
  if (s.empty()) return invalid(notA(s, kind));
  std::string noun(kind.noun);
  if (kind.numeric && s.front() == '-') {
    if (s.size() > 1 && body(s.substr(1)).ok())
      return invalid(quote(s) + ": " + noun + " cannot be negative");
    return invalid(notA(s, kind));
  }
  if (std::any_of(s.begin(), s.end(), isSpace)) {
    std::string joined;
    std::copy_if(s.begin(), s.end(), std::back_inserter(joined),
                 [](char c) { return !isSpace(c); });
    // Suggest the joined form only when it is right; otherwise the text is simply wrong.
    if (body(joined).ok())
      return invalid(quote(s) + ": " + noun + " cannot contain spaces (write " + joined + ")");
    return invalid(notA(s, kind));
  }
  return body(s);
}

// A plain decimal at the front of a string: "5", "1.5", ".5" (not "5." nor "-5").
struct Decimal {
  std::string_view whole;     // digits before the point, maybe empty
  std::string_view fraction;  // digits after the point, maybe empty
  std::string_view text;      // all of it
};

std::optional<Decimal> scanDecimal(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && isDigit(s[i])) ++i;
  Decimal d;
  d.whole = s.substr(0, i);
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && isDigit(s[j])) ++j;
    if (j == i + 1) return std::nullopt;
    d.fraction = s.substr(i + 1, j - i - 1);
    i = j;
  } else if (i == 0) {
    return std::nullopt;
  }
  d.text = s.substr(0, i);
  return d;
}

// floor(number * scale), exactly, or nullopt when it does not fit in 64 bits.
std::optional<uint64_t> scaleDecimal(const Decimal& number, uint64_t scale) {
  uint64_t whole = 0;
  for (char c : number.whole)
    if (__builtin_mul_overflow(whole, 10u, &whole) ||
        __builtin_add_overflow(whole, static_cast<uint64_t>(c - '0'), &whole))
      return std::nullopt;
  if (__builtin_mul_overflow(whole, scale, &whole)) return std::nullopt;
  // From the last digit back, floor((d * scale + floor(rest)) / 10) == floor(0.d... * scale),
  // so no precision is lost however many digits there are; fraction < scale throughout.
  uint64_t fraction = 0;
  for (auto it = number.fraction.rbegin(); it != number.fraction.rend(); ++it)
    fraction = (static_cast<uint64_t>(*it - '0') * scale + fraction) / 10;
  if (__builtin_add_overflow(whole, fraction, &whole)) return std::nullopt;
  return whole;
}

constexpr uint64_t power(uint64_t base, int exponent) {
  uint64_t result = 1;
  for (int i = 0; i < exponent; ++i) result *= base;
  return result;
}

// value / scale as a decimal with no trailing zeros; scale is a power of ten.
std::string decimalString(uint64_t value, uint64_t scale) {
  std::string out = std::to_string(value / scale);
  uint64_t rest = value % scale;
  if (rest == 0) return out;
  size_t width = 0;
  for (uint64_t s = scale; s > 1; s /= 10) ++width;
  std::string digits = std::to_string(rest);
  digits.insert(0, width - digits.size(), '0');
  digits.erase(digits.find_last_not_of('0') + 1);
  return out + "." + digits;
}

// ---- Durations -------------------------------------------------------------------------------

struct NamedScale {
  std::string_view name;
  uint64_t scale;
};

constexpr uint64_t kNs = 1;
constexpr uint64_t kUs = 1000 * kNs;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint64_t kSecond = 1000 * kMs;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;

constexpr std::array kDurationUnits{
    NamedScale{"ns", kNs},        NamedScale{"us", kUs},
    NamedScale{"\xC2\xB5s", kUs},  // U+00B5 MICRO SIGN
    NamedScale{"\xCE\xBCs", kUs},  // U+03BC GREEK SMALL LETTER MU, what many keyboards give
    NamedScale{"ms", kMs},        NamedScale{"s", kSecond},
    NamedScale{"m", kMinute},     NamedScale{"h", kHour},
    NamedScale{"d", kDay}};
// What formatDuration writes: whole days, hours and minutes, then the rest as one decimal.
constexpr std::array kWholeDurationUnits{NamedScale{"d", kDay}, NamedScale{"h", kHour},
                                         NamedScale{"m", kMinute}};
constexpr std::array kSubMinuteUnits{NamedScale{"s", kSecond}, NamedScale{"ms", kMs},
                                     NamedScale{"us", kUs}, NamedScale{"ns", kNs}};
constexpr std::string_view kDurationUnitList = "ns, us, ms, s, m, h or d";
constexpr Kind kDurationKind{"a duration", "a number with a unit: 250ms, 1.5s, 5m, 1h", true};

std::optional<uint64_t> durationScale(std::string_view unit) {
  for (const auto& u : kDurationUnits)
    if (u.name == unit) return u.scale;
  return std::nullopt;
}

Result<Duration> durationBody(std::string_view s) {
  if (s.empty()) return invalid(notA(s, kDurationKind));
  if (s == "0") return Duration::zero();
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  for (std::string_view rest = s; !rest.empty();) {
    auto number = scanDecimal(rest);
    if (!number) return invalid(notA(s, kDurationKind));
    rest.remove_prefix(number->text.size());
    size_t unitLength = 0;
    while (unitLength < rest.size() && !isDigit(rest[unitLength]) && rest[unitLength] != '.')
      ++unitLength;
    std::string_view unit = rest.substr(0, unitLength);
    rest.remove_prefix(unitLength);
    std::string n(number->text);
    if (unit.empty() && number->text.size() == s.size())
      return invalid(quote(s) + " is ambiguous as a duration (add a unit: " + n + "s, " + n +
                     "ms, " + n + "m)");
    if (unit.empty())
      return invalid(quote(s) + " is missing a unit after " + n + " (expected " +
                     std::string(kDurationUnitList) + ")");
    auto scale = durationScale(unit);
    if (!scale)
      return invalid(quote(s) + " has an unknown unit " + quote(unit) + " (expected " +
                     std::string(kDurationUnitList) + ")");
    auto value = scaleDecimal(*number, *scale);
    if (!value || __builtin_add_overflow(total, *value, &total) || total > kMax)
      return invalid(quote(s) + " is too large for a duration (at most " +
                     formatDuration(Duration::max()) + ")");
  }
  return Duration(static_cast<int64_t>(total));
}

// ---- Sizes -----------------------------------------------------------------------------------

constexpr Kind kSizeKind{
    "a size", "a number of bytes or a number with a unit: 4096, 512KiB, 2GB, 1.5GiB", true};
constexpr std::string_view kSizeUnitList = "B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB";
constexpr std::array<std::string_view, 6> kIecUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};

// k/K, m/M, g/G, t/T, p/P -> 1..5; anything else -> 0.
int prefixPower(char c) {
  switch (toLower(c)) {
    case 'k':
      return 1;
    case 'm':
      return 2;
    case 'g':
      return 3;
    case 't':
      return 4;
    case 'p':
      return 5;
    default:
      return 0;
  }
}

std::string siPrefix(int power) { return power == 1 ? "k" : std::string(1, "KMGTP"[power - 1]); }

Result<uint64_t> sizeBody(std::string_view s) {
  auto number = scanDecimal(s);
  if (!number) return invalid(notA(s, kSizeKind));
  std::string n(number->text);
  std::string_view unit = s.substr(number->text.size());
  uint64_t scale = 0;
  if (unit.empty() || unit == "B") {
    if (!number->fraction.empty())
      return invalid(quote(s) + ": a number of bytes must be whole (or use a larger unit: " + n +
                     "KiB, " + n + "MB)");
    scale = 1;
  } else if (unit == "b") {
    return invalid(quote(s) + ": 'b' means bits, but a size is in bytes (write " + n + "B)");
  } else if (int p = prefixPower(unit.front()); p != 0) {
    std::string_view tail = unit.substr(1);
    std::string si = n + siPrefix(p) + "B";
    std::string iec = n + std::string(1, "KMGTP"[p - 1]) + "iB";
    if (tail == "B") {
      scale = power(1000, p);
    } else if (tail == "iB" || tail == "i") {  // "Mi" as Kubernetes writes it
      scale = power(1024, p);
    } else if (tail == "b") {
      return invalid(quote(s) + ": " + quote(unit) + " means bits, but a size is in bytes (write " +
                     si + " or " + iec + ")");
    } else if (tail == "ib") {
      return invalid(quote(s) + ": " + quote(unit) + " means bits, but a size is in bytes (write " +
                     iec + ")");
    } else if (tail.empty()) {
      return invalid(quote(s) + " is ambiguous as a size (write " + si + " for powers of 1000 or " +
                     iec + " for powers of 1024)");
    }
  }
  if (scale == 0)
    return invalid(quote(s) + " has an unknown unit " + quote(unit) + " (expected " +
                   std::string(kSizeUnitList) + ")");
  auto value = scaleDecimal(*number, scale);
  if (!value)
    return invalid(quote(s) + " is too large for a size (at most " +
                   std::to_string(std::numeric_limits<uint64_t>::max()) + " bytes)");
  return *value;
}

// whole.hh with the hundredths trimmed of trailing zeros.
std::string withHundredths(uint64_t whole, uint64_t hundredths) {
  std::string out = std::to_string(whole);
  if (hundredths == 0) return out;
  out += '.';
  out += static_cast<char>('0' + hundredths / 10);
  if (hundredths % 10 != 0) out += static_cast<char>('0' + hundredths % 10);
  return out;
}

// ---- Rates -----------------------------------------------------------------------------------

constexpr Kind kRateKind{"a rate", "a number with a unit: 10mbit, 1gbit, 500kbit, 1MBps", true};
constexpr std::string_view kRateUnitList =
    "bit, kbit, mbit, gbit, tbit or bps, kbps, mbps, gbps, tbps for bits per second; Bps, "
    "KBps, MBps, GBps, TBps for bytes per second";
constexpr std::array kRateUnits{NamedScale{"tbit", power(1000, 4)},
                                NamedScale{"gbit", power(1000, 3)},
                                NamedScale{"mbit", power(1000, 2)}, NamedScale{"kbit", 1000}};

// Bits per second in one unit; case does not matter except for the b of "bps": "Bps" is bytes.
std::optional<uint64_t> rateScale(std::string_view unit) {
  if (unit.size() < 3) return std::nullopt;
  std::string_view prefix = unit.substr(0, unit.size() - 3);
  uint64_t bitsPer = 1;
  if (equalsNoCase(unit.substr(unit.size() - 3), "bit")) {
    bitsPer = 1;
  } else if (equalsNoCase(unit.substr(unit.size() - 3), "bps")) {
    bitsPer = unit[unit.size() - 3] == 'B' ? 8 : 1;
  } else {
    return std::nullopt;
  }
  if (prefix.empty()) return bitsPer;
  int p = prefix.size() == 1 ? prefixPower(prefix.front()) : 0;
  if (p == 0 || p > 4) return std::nullopt;
  return bitsPer * power(1000, p);
}

Result<uint64_t> rateBody(std::string_view s) {
  auto number = scanDecimal(s);
  if (!number) return invalid(notA(s, kRateKind));
  std::string n(number->text);
  std::string_view unit = s.substr(number->text.size());
  if (unit.empty())
    return invalid(quote(s) + " is ambiguous as a rate (add a unit: " + n + "mbit, " + n +
                   "kbit or " + n + "bit)");
  auto scale = rateScale(unit);
  if (!scale) {
    int p = prefixPower(unit.front());
    bool prefixed = p != 0 && p <= 4 && unit.size() == 2;
    if (unit == "B" || (prefixed && unit.back() == 'B'))
      return invalid(quote(s) + " is a size, not a rate (write " + n + std::string(unit) +
                     "ps for bytes per second)");
    if (unit == "b" || (prefixed && unit.back() == 'b'))
      return invalid(quote(s) + " has an unknown unit " + quote(unit) + " (write " + n +
                     std::string(unit.substr(0, unit.size() - 1)) + "bit or " + n +
                     std::string(unit) + "ps for bits per second)");
    return invalid(quote(s) + " has an unknown unit " + quote(unit) + " (expected " +
                   std::string(kRateUnitList) + ")");
  }
  auto value = scaleDecimal(*number, *scale);
  if (!value)
    return invalid(quote(s) + " is too large for a rate (at most " +
                   formatRate(std::numeric_limits<uint64_t>::max()) + ")");
  return *value;
}

// ---- Percentages -----------------------------------------------------------------------------

constexpr Kind kPercentKind{"a percentage", "a percentage like 25% or a fraction like 0.25", true};

// The decimal whole.fraction with its point moved `shift` places right (left when negative),
// without leading or trailing zeros: ("25", "", -2) -> "0.25", ("0", "333", 2) -> "33.3".
// Percentages are converted in text so that "33.3%" is the double nearest 0.333, which
// 33.3 / 100 is not.
std::string movePoint(std::string_view whole, std::string_view fraction, int shift) {
  std::string digits = std::string(whole) + std::string(fraction);
  long point = static_cast<long>(whole.size()) + shift;
  if (point < 0) {
    digits.insert(0, static_cast<size_t>(-point), '0');
    point = 0;
  }
  if (static_cast<size_t>(point) > digits.size()) digits.resize(static_cast<size_t>(point), '0');
  std::string intPart = digits.substr(0, static_cast<size_t>(point));
  std::string fracPart = digits.substr(static_cast<size_t>(point));
  intPart.erase(0, std::min(intPart.find_first_not_of('0'), intPart.size()));
  fracPart.erase(fracPart.find_last_not_of('0') + 1);
  if (intPart.empty()) intPart = "0";
  return fracPart.empty() ? intPart : intPart + "." + fracPart;
}

// A plain decimal as the nearest double. The grammar has no exponent, so out of range means
// a huge number or one closer to zero than any double.
double toDouble(const std::string& decimal) {
  double value = 0;
  auto [end, ec] = std::from_chars(decimal.data(), decimal.data() + decimal.size(), value);
  if (ec == std::errc::result_out_of_range)
    return decimal.starts_with("0") ? 0 : std::numeric_limits<double>::infinity();
  return value;
}

Result<double> percentBody(std::string_view s) {
  if (s.empty()) return invalid(notA(s, kPercentKind));
  bool withSign = s.back() == '%';
  std::string_view text = withSign ? s.substr(0, s.size() - 1) : s;
  auto number = scanDecimal(text);
  if (!number || number->text.size() != text.size()) return invalid(notA(s, kPercentKind));
  std::string fraction = movePoint(number->whole, number->fraction, withSign ? -2 : 0);
  double value = toDouble(fraction);
  if (withSign) {
    if (value > 1) return invalid(quote(s) + " is more than 100% (expected 0%..100%)");
    return value;
  }
  // A bare 1 is the fraction 1.0 = 100%, but people who write `loss: 1` mostly mean 1%:
  // rejected as ambiguous like 25, so nobody gets total loss by accident.
  if (value < 1) return value;
  std::string n(text);
  if (value <= 100)
    return invalid(quote(s) + " is ambiguous as a percentage (write " + n +
                   "% for a percentage or " + movePoint(number->whole, number->fraction, -2) +
                   " for a fraction)");
  return invalid(quote(s) + " is out of range (expected a fraction 0..1 or a percentage 0%..100%)");
}

// ---- Signals ---------------------------------------------------------------------------------

constexpr Kind kSignalKind{"a signal", "a name like TERM, KILL, SIGINT or a number 1..64", true};

struct SignalAlias {
  std::string_view name;
  int number;
};
// Other names Linux gives the same signals; glibc's sigabbrev_np knows one name each.
constexpr std::array kSignalAliases{SignalAlias{"IOT", SIGABRT}, SignalAlias{"IO", SIGIO},
                                    SignalAlias{"POLL", SIGPOLL}, SignalAlias{"CLD", SIGCHLD}};

// "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (already upper case) -> the number, if in range.
std::optional<int> realtimeSignal(std::string_view name) {
  bool fromMin = name.starts_with("RTMIN");
  if (!fromMin && !name.starts_with("RTMAX")) return std::nullopt;
  int base = fromMin ? SIGRTMIN : SIGRTMAX;
  int direction = fromMin ? 1 : -1;
  std::string_view rest = name.substr(5);
  if (rest.empty()) return base;
  if (rest.front() != (direction > 0 ? '+' : '-') || !allDigits(rest.substr(1)) || rest.size() > 3)
    return std::nullopt;
  int offset = 0;
  std::from_chars(rest.data() + 1, rest.data() + rest.size(), offset);
  int signal = base + direction * offset;
  if (signal < SIGRTMIN || signal > SIGRTMAX) return std::nullopt;
  return signal;
}

std::optional<int> signalNumber(std::string_view digits) {
  int value = 0;
  if (!allDigits(digits) || digits.size() > 3) return std::nullopt;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (value < 1 || value > SIGRTMAX) return std::nullopt;
  return value;
}

Result<int> signalBody(std::string_view s) {
  if (allDigits(s)) {
    if (auto number = signalNumber(s)) return *number;
    return invalid(quote(s) + " is not a signal number (expected 1.." + std::to_string(SIGRTMAX) +
                   ")");
  }
  std::string name;
  std::transform(s.begin(), s.end(), std::back_inserter(name), toUpper);
  std::string_view bare = name;
  if (bare.starts_with("SIG")) bare.remove_prefix(3);
  if (auto number = allDigits(bare) ? signalNumber(bare) : std::nullopt) return *number;  // SIG32
  for (int i = 1; i < SIGRTMIN; ++i)
    if (const char* abbrev = sigabbrev_np(i); abbrev != nullptr && bare == abbrev) return i;
  for (const auto& alias : kSignalAliases)
    if (bare == alias.name) return alias.number;
  if (auto realtime = realtimeSignal(bare)) return *realtime;
  return invalid(notA(s, kSignalKind));
}

// ---- Addresses and ports ---------------------------------------------------------------------

constexpr Kind kCidrKind{"an IP address or network",
                         "an address or network like 10.0.0.2, 10.0.0.0/24 or fd00::/64", false};
constexpr Kind kIpKind{"an IP address", "an address like 10.0.0.2 or fd00::1", false};
constexpr Kind kPortKind{"a port", "a number 1..65535", true};
constexpr Kind kPortRangeKind{"a port range", "a port like 8080 or a range like 8000-8100", false};

int maxPrefix(int family) { return family == AF_INET ? 32 : 128; }

// An address alone, as a host route (/32 or /128).
std::optional<Cidr> parseAddress(std::string_view text) {
  char buffer[INET6_ADDRSTRLEN];
  // inet_pton stops at a NUL, which would let "10.0.0.1\0junk" through.
  if (text.empty() || text.size() >= sizeof(buffer) || text.find('\0') != std::string_view::npos)
    return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  Cidr cidr;
  cidr.family = text.find(':') != std::string_view::npos ? AF_INET6 : AF_INET;
  cidr.prefix = maxPrefix(cidr.family);
  if (inet_pton(cidr.family, buffer, cidr.addr) != 1) return std::nullopt;
  return cidr;
}

void clearHostBits(Cidr& cidr) {
  for (int i = 0; i < 16; ++i) {
    int bits = std::clamp(cidr.prefix - 8 * i, 0, 8);
    cidr.addr[i] &= static_cast<unsigned char>(0xFF00u >> bits);
  }
}

Result<Cidr> cidrBody(std::string_view s) {
  size_t slash = s.find('/');
  auto address = parseAddress(s.substr(0, slash));
  if (!address) return invalid(notA(s, kCidrKind));
  if (slash == std::string_view::npos) return *address;
  std::string_view prefixText = s.substr(slash + 1);
  int max = maxPrefix(address->family);
  std::string range = "0.." + std::to_string(max);
  if (!allDigits(prefixText))
    return invalid(quote(s) + ": the prefix length must be a number " + range);
  int prefix = max + 1;
  if (prefixText.size() <= 3)
    std::from_chars(prefixText.data(), prefixText.data() + prefixText.size(), prefix);
  if (prefix > max)
    return invalid(quote(s) + ": prefix length " + quote(prefixText) + " is out of range for " +
                   (address->family == AF_INET ? "IPv4" : "IPv6") + " (expected " + range + ")");
  Cidr network = *address;
  network.prefix = prefix;
  clearHostBits(network);
  if (std::memcmp(network.addr, address->addr, sizeof(network.addr)) != 0)
    return invalid(quote(s) + " has host bits set (did you mean " + network.str() + "?)");
  return network;
}

Result<Cidr> ipBody(std::string_view s) {
  size_t slash = s.find('/');
  auto address = parseAddress(s.substr(0, slash));
  if (!address) return invalid(notA(s, kIpKind));
  if (slash != std::string_view::npos)
    return invalid(quote(s) + ": an IP address is expected here, not a network (write " +
                   std::string(s.substr(0, slash)) + ")");
  return *address;
}

Result<uint16_t> portBody(std::string_view s) {
  if (!allDigits(s)) return invalid(notA(s, kPortKind));
  unsigned value = 0;
  if (s.size() <= 5) std::from_chars(s.data(), s.data() + s.size(), value);
  if (value < 1 || value > 65535 || s.size() > 5)
    return invalid(quote(s) + " is out of range for a port (expected 1..65535)");
  return static_cast<uint16_t>(value);
}

Result<PortRange> portRangeBody(std::string_view s) {
  size_t dash = s.find('-');
  if (dash == std::string_view::npos || dash == 0) {
    auto port = parsePort(s);
    if (!port) return std::move(port).error();
    return PortRange{*port, *port};
  }
  auto first = parsePort(s.substr(0, dash));
  if (!first) return invalid(quote(s) + ": " + first.error().message());
  auto last = parsePort(s.substr(dash + 1));
  if (!last) return invalid(quote(s) + ": " + last.error().message());
  if (*first > *last) {
    PortRange meant{*last, *first};
    return invalid(quote(s) +
                   " is reversed (the first port must not be above the last; did you "
                   "mean " +
                   meant.str() + "?)");
  }
  return PortRange{*first, *last};
}

}  // namespace

Result<Duration> parseDuration(std::string_view text) {
  return parseWith<Duration>(text, kDurationKind, durationBody);
}

std::string formatDuration(Duration d) {
  int64_t count = d.count();
  if (count == 0) return "0s";
  std::string out = count < 0 ? "-" : "";
  // Through unsigned so that the most negative value has a magnitude too.
  uint64_t rest = count < 0 ? 0 - static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
  for (const auto& unit : kWholeDurationUnits) {
    if (rest >= unit.scale) out += std::to_string(rest / unit.scale) + std::string(unit.name);
    rest %= unit.scale;
  }
  if (rest == 0) return out;
  for (const auto& unit : kSubMinuteUnits)
    if (rest >= unit.scale) return out + decimalString(rest, unit.scale) + std::string(unit.name);
  return out;  // unreachable: the last sub-minute unit is 1ns
}

Result<uint64_t> parseSize(std::string_view text) {
  return parseWith<uint64_t>(text, kSizeKind, sizeBody);
}

std::string formatSize(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  size_t top = 1;
  while (top + 1 < kIecUnits.size() && bytes >= (uint64_t{1} << (10 * (top + 1)))) ++top;
  for (size_t u = top; u >= 1; --u) {
    uint64_t scale = uint64_t{1} << (10 * u);
    uint64_t rest = bytes % scale;  // < 2^50, so rest * 100 fits
    if (rest * 100 % scale == 0)
      return withHundredths(bytes / scale, rest * 100 / scale) + std::string(kIecUnits[u]);
  }
  uint64_t scale = uint64_t{1} << (10 * top);
  return withHundredths(bytes / scale, bytes % scale * 100 / scale) + std::string(kIecUnits[top]);
}

Result<uint64_t> parseRate(std::string_view text) {
  return parseWith<uint64_t>(text, kRateKind, rateBody);
}

std::string formatSizeExact(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  // The shorter of an exact IEC form (at most two decimals) and a whole number of SI units,
  // IEC on a tie; else bytes: 1536 -> "1.5KiB", 2000000000 -> "2GB", 1500 -> "1500B", as a
  // bound like tbf's minimum burst is written.
  std::string best = std::to_string(bytes) + "B";
  for (size_t u = kIecUnits.size() - 1; u >= 1; --u) {
    uint64_t scale = uint64_t{1} << (10 * u);
    uint64_t rest = bytes % scale;
    if (bytes >= scale && rest * 100 % scale == 0) {
      best = withHundredths(bytes / scale, rest * 100 / scale) + std::string(kIecUnits[u]);
      break;
    }
  }
  constexpr std::array<std::pair<uint64_t, std::string_view>, 5> kSi{{{power(1000, 5), "PB"},
                                                                      {power(1000, 4), "TB"},
                                                                      {power(1000, 3), "GB"},
                                                                      {power(1000, 2), "MB"},
                                                                      {1000, "kB"}}};
  for (const auto& [scale, name] : kSi) {
    if (bytes >= scale && bytes % scale == 0) {
      std::string si = std::to_string(bytes / scale) + std::string(name);
      if (si.size() < best.size()) best = si;
      break;
    }
  }
  return best;
}

std::string formatRate(uint64_t bitsPerSecond) {
  for (const auto& unit : kRateUnits)
    if (bitsPerSecond >= unit.scale)
      return decimalString(bitsPerSecond, unit.scale) + std::string(unit.name);
  return std::to_string(bitsPerSecond) + "bit";
}

Result<double> parsePercent(std::string_view text) {
  return parseWith<double>(text, kPercentKind, percentBody);
}

std::string formatPercent(double fraction) {
  if (fraction == 0) return "0%";  // also -0.0
  char buffer[400];                // fixed notation of any double fits
  // The shortest decimal that reads back as this very fraction, then moved two places: 0.07
  // is "7%", not the "7.000000000000001%" that fraction * 100 holds.
  auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof(buffer), fraction, std::chars_format::fixed);
  std::string_view text(buffer, ec == std::errc() ? static_cast<size_t>(end - buffer) : 0);
  if (!std::isfinite(fraction)) return std::string(text) + "%";
  std::string sign = text.starts_with('-') ? "-" : "";
  text.remove_prefix(sign.size());
  size_t point = std::min(text.find('.'), text.size());
  std::string_view decimals = point < text.size() ? text.substr(point + 1) : std::string_view();
  return sign + movePoint(text.substr(0, point), decimals, 2) + "%";
}

Result<int> parseSignal(std::string_view text) {
  return parseWith<int>(text, kSignalKind, signalBody);
}

std::string signalName(int signal) {
  if (signal >= 1 && signal < SIGRTMIN)
    if (const char* abbrev = sigabbrev_np(signal)) return std::string("SIG") + abbrev;
  // Realtime signals are named as kill -l names them: from RTMIN up to the middle, then
  // down from RTMAX.
  if (signal >= SIGRTMIN && signal <= SIGRTMAX) {
    int fromMin = signal - SIGRTMIN;
    int fromMax = SIGRTMAX - signal;
    if (fromMin == 0) return "SIGRTMIN";
    if (fromMax == 0) return "SIGRTMAX";
    if (fromMin <= (SIGRTMAX - SIGRTMIN) / 2) return "SIGRTMIN+" + std::to_string(fromMin);
    return "SIGRTMAX-" + std::to_string(fromMax);
  }
  return "SIG" + std::to_string(signal);
}

std::string Cidr::str() const {
  if (family != AF_INET && family != AF_INET6) return "<unset>";
  char buffer[INET6_ADDRSTRLEN];
  if (inet_ntop(family, addr, buffer, sizeof(buffer)) == nullptr) return "<invalid>";
  return std::string(buffer) + "/" + std::to_string(prefix);
}

Result<Cidr> parseCidr(std::string_view text) { return parseWith<Cidr>(text, kCidrKind, cidrBody); }

Result<Cidr> parseIp(std::string_view text) { return parseWith<Cidr>(text, kIpKind, ipBody); }

Result<uint16_t> parsePort(std::string_view text) {
  return parseWith<uint16_t>(text, kPortKind, portBody);
}

std::string PortRange::str() const {
  if (first == last) return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(last);
}

Result<PortRange> parsePortRange(std::string_view text) {
  return parseWith<PortRange>(text, kPortRangeKind, portRangeBody);
}

}  // namespace chaosd::units
