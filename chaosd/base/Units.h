#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// Parsing and printing of the units an experiment is written in. Every parser takes the
// trimmed text of one YAML scalar and returns the value in a base unit, or an Error of code
// kInvalid whose message says what was wrong and what was expected, e.g.
//   "'5 parsecs' is not a duration (expected a number with a unit: 250ms, 1.5s, 5m, 1h)".
namespace chaosd::units {

using Duration = std::chrono::nanoseconds;

// "250ms", "1.5s", "5m", "1h", "100us", "10ns", "1h30m", "2m30.5s". Units: ns us µs ms s m h d.
// A bare number is an error (ambiguous); negative values are an error; overflow is an error.
Result<Duration> parseDuration(std::string_view text);
// Shortest exact form: 1500ms -> "1.5s", 90s -> "1m30s", 0 -> "0s", 250000ns -> "250us".
std::string formatDuration(Duration d);

// Bytes. "512KiB", "2GB", "1GiB", "100B", "4096" (a bare integer is bytes), "1.5GiB".
// SI (kB/KB, MB, GB, TB, PB = powers of 1000) and IEC (KiB, MiB, GiB, TiB, PiB = 1024).
// Fractions allowed and rounded down to whole bytes. Negative or overflow -> error.
Result<uint64_t> parseSize(std::string_view text);
// IEC when exact ("1GiB", "512KiB"), else bytes ("1000B" -> "1000B", 1500000 -> "1.43MiB").
std::string formatSize(uint64_t bytes);
// Exact, for a bound or a value the user wrote: "1500B", "2kB", "1.5GiB"; never rounded.
std::string formatSizeExact(uint64_t bytes);

// Bits per second. "10mbit", "1gbit", "500kbit", "100bit", "1Mbps" (megabits), "10MBps"
// (megabytes: uppercase B), also "kbps", "gbps". SI multipliers. A bare number is an error.
Result<uint64_t> parseRate(std::string_view text);
std::string formatRate(uint64_t bitsPerSecond);  // "10mbit", "1.5gbit", "800bit"

// A fraction in [0, 1]. "25%" -> 0.25 and "0.5%" -> 0.005 (a percentage, 0..100 with '%'),
// "0.25" -> 0.25 (a bare number is a fraction 0..1). "25" is an error that suggests "25%".
Result<double> parsePercent(std::string_view text);
std::string formatPercent(double fraction);  // 0.25 -> "25%", 0.005 -> "0.5%"

// A signal by name or number: "KILL", "SIGKILL", "sigterm", "9", "TERM". Returns the number.
Result<int> parseSignal(std::string_view text);
std::string signalName(int signal);  // 9 -> "SIGKILL"; unknown -> "SIG<n>"

// IP addresses and CIDRs, v4 and v6. An address without a prefix is a /32 or /128.
struct Cidr {
  int family = 0;            // AF_INET or AF_INET6
  unsigned char addr[16]{};  // network byte order, host bits cleared
  int prefix = 0;
  std::string str() const;  // canonical: "10.0.0.0/24", "fd00::/64", "10.0.0.2/32"
  bool operator==(const Cidr&) const = default;
};
// "10.0.0.2", "10.0.0.0/24", "fd00::1/64". Host bits set ("10.0.0.1/24") are an error that
// names the network it probably meant.
Result<Cidr> parseCidr(std::string_view text);
// An address only (no prefix allowed); returns it as a /32 or /128 Cidr.
Result<Cidr> parseIp(std::string_view text);

// A port 1..65535 ("5432").
Result<uint16_t> parsePort(std::string_view text);
// "8080", "8000-8100" (inclusive, first <= last).
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  std::string str() const;  // "8080" or "8000-8100"
  bool operator==(const PortRange&) const = default;
};
Result<PortRange> parsePortRange(std::string_view text);

}  // namespace chaosd::units
