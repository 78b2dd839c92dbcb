#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// Lenient reads of a report.json document (docs/report-json.md) for the writers: a report may
// come from an older chaosd or be written by hand, so a missing or null field reads as empty,
// zero or nullopt instead of throwing.
namespace chaosd::report {

using Json = nlohmann::json;

std::string text(const Json& j, const char* key);
double number(const Json& j, const char* key, double fallback = 0);
bool flag(const Json& j, const char* key, bool fallback = false);
std::optional<int64_t> nanos(const Json& j, const char* key);
// The array under key; an empty array when it is missing or not an array.
const Json& list(const Json& j, const char* key);
std::string experimentName(const Json& report);

// "2026-11-26T15:13:16.854Z" as nanoseconds since the epoch; nullopt when not a UTC time.
std::optional<int64_t> parseIsoTime(const std::string& iso);
// A wall time field as an offset from the run's start (startedAt), in nanoseconds.
std::optional<int64_t> wallOffset(const Json& report, const Json& j, const char* key);

// Durations for people: "850us", "3.1ms", "1.5s" (formatLatency); "-" for nullopt.
std::string duration(std::optional<int64_t> ns);
// Seconds with three decimals, for JUnit time attributes: "1.250".
std::string seconds(int64_t ns);
// A fraction as a percentage without trailing zeros: 0.625 -> "62.5%", 1 -> "100%".
std::string percent(double fraction);
// A number with up to three significant digits: 0.62, 1.5, 0.0031, 3.1e-12.
std::string significant(double value);

// A verdict's streamed-response figures in words ("12 of 12 samples streamed; first event p50
// 105ms, p95 130ms; gap between events p50 20ms, p99 45ms; 48.1 events/s (median)"); "" when
// the verdict has none.
std::string streamWords(const Json& verdict);

// The load's table (report.json "load"): a header row, then one row per phase: offered λ,
// sent per second, throughput, errors, latency percentiles from the intended send time, L, λ·W
// and their ratio, the verdict. Empty when the run had no load.
std::vector<std::vector<std::string>> loadTable(const Json& report);
// "load chat: POST http://... at 50/s (12,000 requests; the generator's own lateness p99 80us)"
std::string loadHeadline(const Json& report);
// The capacity ramp's table (report.json "load"."capacity"): a header row, then one row per
// step: the rate asked, achieved, ok/s, p50, p99, errors, held or broke and why. Empty without
// a ramp.
std::vector<std::vector<std::string>> capacityTable(const Json& report);
// "μ ≈ 48/s: the last step that held (broke at 60/s) ...", or "" without a ramp.
std::string capacityHeadline(const Json& report);

// The phase samples, verdicts and reports talk about, in order.
inline constexpr const char* kPhases[] = {"before", "during", "after"};

// The verdict of `probe` for `phase`; nullptr when it did not run in that phase.
const Json* verdictOf(const Json& probe, const std::string& phase);
// The phase entry of the report for `phase`; nullptr when absent.
const Json* phaseOf(const Json& report, const std::string& phase);

}  // namespace chaosd::report
