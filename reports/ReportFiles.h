#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// Writing the reports derived from report.json into a run folder.
namespace chaosd::report {

enum class ReportFormat { kJunit, kHtml, kMarkdown };

// "junit" -> junit.xml, "html" -> report.html, "markdown" -> summary.md.
const char* fileNameOf(ReportFormat format);
// The formats a --format value names: junit, html, markdown or all; nullopt for others.
std::optional<std::vector<ReportFormat>> parseFormats(const std::string& value);
std::string render(ReportFormat format, const nlohmann::json& report);

// A run folder's report.json, or a report.json named directly, checked for its schema
// (chaosd.report/v1). Errors (kNotFound, kInvalid) name the file.
Result<nlohmann::json> loadReportFile(const std::string& runDirOrFile);
// The same checks on a report's text; `path` names it in errors.
Result<nlohmann::json> parseReportText(std::string_view text, const std::string& path);

// Writes `text` to path atomically: a temporary file beside it, then a rename.
Result<void> writeFileAtomically(const std::string& path, const std::string& text);

struct WrittenFile {
  ReportFormat format;
  std::string path;
  std::optional<Error> error;  // why it was not written; nullopt when it was
};

// Writes each format's file into dir (which must exist); one failure does not stop the
// others. Rendering errors (a malformed report) are reported as errors of that file.
std::vector<WrittenFile> writeReportFiles(const nlohmann::json& report, const std::string& dir,
                                          const std::vector<ReportFormat>& formats);

inline const std::vector<ReportFormat>& allFormats() {
  static const std::vector<ReportFormat> kAll = {ReportFormat::kJunit, ReportFormat::kMarkdown,
                                                 ReportFormat::kHtml};
  return kAll;
}

}  // namespace chaosd::report
