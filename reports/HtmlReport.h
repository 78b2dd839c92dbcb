#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace chaosd::report {

// report.html from a report.json document: one self-contained page (no script, no network:
// a Content-Security-Policy forbids both; styles inline) that is also well-formed XML. The
// verdict at the top, the timeline as inline SVG (timelineSvg), tables of faults and probes,
// the statistical baseline verdicts in words, the rollbacks and the audit. Every string from
// the report is escaped.
std::string htmlReport(const nlohmann::json& report);

}  // namespace chaosd::report
