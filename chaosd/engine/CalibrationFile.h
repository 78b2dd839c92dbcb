#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/engine/CalibrationRuns.h"

// The calibration file `chaosctl calibrate` writes and `chaosctl run --calibration` reads: what
// an A/A calibration of one experiment measured, per probe and phase.
namespace chaosd {

inline constexpr std::string_view kCalibrationSchema = "chaosd.calibration/v1";

struct CalibrationFile {
  std::string experiment;        // metadata.name
  std::string experimentFile;    // the file calibrated, as given
  std::string experimentSha256;  // its bytes' digest ("" when it could not be read)
  std::string created;           // UTC, "2024-05-01T10:00:00Z"
  size_t runs = 0;               // calibration runs completed
  std::vector<PhaseCalibration> phases;
  // Every probe phase's false alarms within what its nominal rate allows.
  bool withinAlpha() const;
};

nlohmann::json calibrationJson(const CalibrationFile& file);

// The document back; kInvalid naming the first field that is missing or of the wrong type, or
// when the schema is not kCalibrationSchema.
Result<CalibrationFile> calibrationFromJson(const nlohmann::json& doc);

// Writes the document (through a temporary file and a rename); kIo on failure.
Result<void> writeCalibrationFile(const CalibrationFile& file, const std::string& path);

// Reads `path` for a run of `experiment`: an error naming the file and what is wrong when it
// cannot be read, is not JSON, is of another schema or malformed, or calibrated another
// experiment.
Result<CalibrationFile> loadCalibrationFile(const std::string& path, const std::string& experiment);

}  // namespace chaosd
