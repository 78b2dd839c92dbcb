// libFuzzer target for the report reader: a hostile report.json, as `chaosctl report RUN_DIR`
// and `chaosctl report --compare OLD NEW` read it. The input is the file's bytes.
//
// What each step promises:
// - parseReportText (loadReportFile's checks): never throws; a report or an error.
// - rendering (junit, HTML, Markdown): writeReportFiles turns a malformed report's JSON errors
//   (nlohmann::json::exception) into an error of that file, so those are allowed; anything
//   else escaping (std::out_of_range, std::length_error, ...) or a crash is a finding.
// - compareRuns: the report against itself and against a small valid report, both ways. It is
//   not wrapped by its caller, so nothing may escape it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reports/ReportFiles.h"
#include "reports/RunComparison.h"

namespace {

// The smallest report the writers accept: the other side of a comparison.
const nlohmann::json& minimalReport() {
  static const nlohmann::json kReport = nlohmann::json::parse(R"({
    "schema": "chaosd.report/v1", "runId": "fuzz", "outcome": "ok", "exitCode": 0,
    "experiment": {"name": "fuzz"}, "probes": [], "faults": [], "phases": [],
    "verdicts": [], "timeline": []
  })");
  return kReport;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = chaosd::report::parseReportText(text, "fuzz/report.json");
  if (!doc) {
    if (doc.error().describe().empty()) __builtin_trap();
    return 0;
  }
  for (auto format : chaosd::report::allFormats()) {
    try {
      (void)chaosd::report::render(format, *doc);
    } catch (const nlohmann::json::exception&) {  // reported as that file's error
    }
  }
  const nlohmann::json* sides[][2] = {
      {&*doc, &*doc}, {&minimalReport(), &*doc}, {&*doc, &minimalReport()}};
  for (const auto& side : sides) {
    const auto comparison = chaosd::report::compareRuns(*side[0], *side[1]);
    (void)chaosd::report::comparisonJson(comparison).dump();
    (void)chaosd::report::comparisonText(comparison);
  }
  return 0;
}
