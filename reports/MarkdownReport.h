#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace chaosd::report {

// summary.md from a report.json document: a short summary for a pull-request comment: the
// verdict with outcome, exit code and resilience score, the reasons, a table of faults with
// time to detect and to recover, a table of probes (availability and p95 per phase), the
// rollbacks and the audit.
std::string markdownSummary(const nlohmann::json& report);

}  // namespace chaosd::report
