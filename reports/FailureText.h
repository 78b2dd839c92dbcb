#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// Sentences about a run that several writers share, so a failure reads the same in JUnit,
// Markdown and HTML. Inputs are parts of a report.json document.
namespace chaosd::report {

// "network.delay on api"
std::string faultWhat(const nlohmann::json& fault);

// The strings of a JSON array joined by `sep` (non-strings as JSON).
std::string joined(const nlohmann::json& array, const std::string& sep);

// "first failure 1.2s after fault latency was applied: status 503"; "" when the verdict has
// no failure. The fault is the last one applied at or before the failure.
std::string firstFailureText(const nlohmann::json& report, const nlohmann::json& verdict);

// "probe health failed in the during phase: availability 0.62 < 1 (...); first failure ..."
std::string probeFailureMessage(const nlohmann::json& report, const nlohmann::json& probe,
                                const nlohmann::json& verdict);

// Several lines: the reasons, the counts and percentiles, the baseline check in words.
std::string verdictDetails(const nlohmann::json& verdict);

// The statistical baseline check of a verdict in words; "" when the verdict has none.
std::string baselineWords(const nlohmann::json& verdict);

// "rollback restore failed (exit 3): permission denied"
std::string rollbackFailureMessage(const nlohmann::json& rollback);

// One line per thing the audit found: "fault fill (disk.fill on data): /data/.chaosd-fill".
std::vector<std::string> leftoverLines(const nlohmann::json& report);

// "verdict: deviated (exit 1), resilience score 40/100" and a line per reason.
std::string verdictText(const nlohmann::json& report);

}  // namespace chaosd::report
