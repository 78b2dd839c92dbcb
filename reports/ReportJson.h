#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "chaosd/base/Result.h"
#include "chaosd/engine/RunResult.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// report.json: the complete record of a run, from which every other report is written.
// Schema: docs/report-json.md; "schema" names its version.
inline constexpr const char* kReportSchema = "chaosd.report/v1";

// The experiment as run: variables substituted, secret config values replaced by "***"
// wherever they appear.
nlohmann::json experimentJson(const Experiment& experiment);

nlohmann::json reportJson(const Experiment& experiment, const RunResult& result);

// Replaces every occurrence of each secret in every string of `doc` by "***".
void redactSecrets(nlohmann::json& doc, const Experiment& experiment);

// The same for plain text (plan output, logs).
std::string redactText(std::string text, const Experiment& experiment);

// Writes report.json into dir (created with parents), atomically (temp file + rename).
Result<std::string> writeReportJson(const nlohmann::json& report, const std::string& dir);

std::string isoTime(std::chrono::system_clock::time_point t);

}  // namespace chaosd
