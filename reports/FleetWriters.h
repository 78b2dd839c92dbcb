#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reports/ReportFiles.h"

// The fleet report's files, written from its JSON document (reports/FleetReport.h) the way a
// run's are from report.json: fleet-report.json, fleet-junit.xml, fleet-summary.md and
// fleet-report.html (docs/reports.md, "Fleet report").
namespace chaosd::report {

std::string fleetMarkdown(const nlohmann::json& fleet);
std::string fleetJunit(const nlohmann::json& fleet);
std::string fleetHtml(const nlohmann::json& fleet);

// "fleet-junit.xml", "fleet-report.html", "fleet-summary.md".
std::string fleetFileNameOf(ReportFormat format);
inline constexpr const char* kFleetJsonName = "fleet-report.json";

// Writes fleet-report.json and each format's file into dir (which must exist), atomically; one
// failure does not stop the others.
std::vector<WrittenFile> writeFleetFiles(const nlohmann::json& fleet, const std::string& dir,
                                         const std::vector<ReportFormat>& formats);

}  // namespace chaosd::report
