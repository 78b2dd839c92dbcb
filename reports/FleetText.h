#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// The fleet report's sentences and table rows as plain text, shared by its Markdown, HTML and
// JUnit writers (each escapes them for its format). Inputs are a fleet-report.json document.
namespace chaosd::report {

using Row = std::vector<std::string>;

// A fraction with up to two decimals of a percent: 0.99875 -> "99.88%", 1 -> "100%".
std::string finePercent(double fraction);

// "leftovers (exit 4) across 3 hosts"
std::string fleetVerdict(const nlohmann::json& fleet);
// "faults held from 2026-...Z (web1, step kill) to 2026-...Z (web3, step kill), 12.3s"
std::string windowText(const nlohmann::json& fleet);

// host, outcome, score, faults, probes in the window, report file.
inline const Row kHostHeader = {"host",  "outcome", "score", "faults", "probes in the window",
                                "report"};
Row hostRow(const nlohmann::json& host);

// "time to detect"/"time to recover", measured, min, median, max, not detected/recovered.
inline const Row kSpreadHeader = {"", "measured", "min", "median", "max", "missing"};
std::vector<Row> spreadRows(const nlohmann::json& fleet);

// The control node's front end: "" when no control report was given.
std::string frontEndText(const nlohmann::json& fleet);

// tier, k of n, replicas (availability in the window), tier reliability.
inline const Row kTierHeader = {"tier", "k of n", "replicas (availability in the window)",
                                "tier reliability"};
std::vector<Row> tierRows(const nlohmann::json& fleet);
// "model 93.75% (tiers in series); observed 88% by probe front (44 of 50 samples, 95% interval
// 76% to 94%); gap +5.75 points"
std::string modelText(const nlohmann::json& fleet);

}  // namespace chaosd::report
