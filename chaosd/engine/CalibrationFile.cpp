#include "chaosd/engine/CalibrationFile.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <type_traits>

namespace chaosd {
namespace {

using Json = nlohmann::json;

Json phaseJson(const PhaseCalibration& c) {
  return Json{{"probe", c.probe},
              {"phase", c.phase},
              {"test", calibrationTestName(c.test)},
              {"quantile", c.quantile},
              {"alpha", c.alpha},
              {"minRelative", c.minRelative},
              {"minAbsoluteNs", c.minAbsolute.count()},
              {"minEffectBy", c.minEffectBy == MinEffectBy::kBound ? "bound" : "estimate"},
              {"control", c.control},
              {"nominal", c.nominal},
              {"runs", c.runs},
              {"falseAlarms", c.falseAlarms},
              {"notHeld", c.notHeld},
              {"rate", c.rate},
              {"interval", {c.interval.low, c.interval.high}},
              {"drift", {{"median", c.driftMedian}, {"max", c.driftMax}}},
              {"allowedFalseAlarms", c.allowed},
              {"exceeded", c.exceeded}};
}

// Reads the fields of one JSON object; the first missing or mistyped one is the error.
class FieldReader {
 public:
  FieldReader(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  template <typename T>
  void get(const char* key, T& out) {
    if (error_) return;
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      error_ = Error(ErrorCode::kInvalid, where_ + key + ": missing");
      return;
    }
    if (!fits<T>(*it)) {
      error_ = Error(ErrorCode::kInvalid, where_ + key + ": of the wrong type");
      return;
    }
    out = it->template get<T>();
  }
  bool has(const char* key) const { return obj_.contains(key); }
  void fail(const std::string& key, const std::string& what) {
    if (!error_) error_ = Error(ErrorCode::kInvalid, where_ + key + ": " + what);
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  template <typename T>
  static bool fits(const Json& v) {
    if constexpr (std::is_same_v<T, std::string>) return v.is_string();
    if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
    if constexpr (std::is_floating_point_v<T>) return v.is_number();
    if constexpr (std::is_same_v<T, int64_t>) return v.is_number_integer();
    if constexpr (std::is_same_v<T, size_t>) {
      return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    }
    return false;
  }

  const Json& obj_;
  std::string where_;
  std::optional<Error> error_;
};

void readConfigured(FieldReader& r, PhaseCalibration& c) {
  std::string test;
  int64_t minAbsolute = 0;
  r.get("test", test);
  if (test != "blocks" && test != "exceedance") r.fail("test", "not blocks or exceedance");
  c.test = test == "exceedance" ? BaselineTest::kExceedance : BaselineTest::kBlocks;
  r.get("quantile", c.quantile);
  r.get("alpha", c.alpha);
  r.get("minRelative", c.minRelative);
  r.get("minAbsoluteNs", minAbsolute);
  c.minAbsolute = Duration(minAbsolute);
  // Files written before minEffectBy compared the minimum effect with the bound.
  std::string by = "bound";
  if (r.has("minEffectBy")) r.get("minEffectBy", by);
  if (by != "estimate" && by != "bound") r.fail("minEffectBy", "not estimate or bound");
  c.minEffectBy = by == "estimate" ? MinEffectBy::kEstimate : MinEffectBy::kBound;
  r.get("control", c.control);
}

Result<PhaseCalibration> phaseFromJson(const Json& j, const std::string& where) {
  if (!j.is_object()) return Error(ErrorCode::kInvalid, where + ": not an object");
  PhaseCalibration c;
  FieldReader r(j, where + ".");
  r.get("probe", c.probe);
  r.get("phase", c.phase);
  if (c.phase != "during" && c.phase != "after" && c.phase != "both") {
    r.fail("phase", "'" + c.phase + "' is not during, after or both");
  }
  readConfigured(r, c);
  r.get("nominal", c.nominal);
  r.get("runs", c.runs);
  r.get("falseAlarms", c.falseAlarms);
  if (c.falseAlarms > c.runs) r.fail("falseAlarms", "more than runs");
  r.get("notHeld", c.notHeld);
  r.get("rate", c.rate);
  auto interval = j.find("interval");
  if (interval == j.end() || !interval->is_array() || interval->size() != 2 ||
      !(*interval)[0].is_number() || !(*interval)[1].is_number()) {
    r.fail("interval", "not [low, high]");
  } else {
    c.interval = {(*interval)[0].get<double>(), (*interval)[1].get<double>()};
  }
  auto drift = j.find("drift");
  if (drift == j.end() || !drift->is_object()) {
    r.fail("drift", "missing or not an object");
  } else {
    FieldReader d(*drift, where + ".drift.");
    d.get("median", c.driftMedian);
    d.get("max", c.driftMax);
    if (d.error()) return *d.error();
  }
  r.get("allowedFalseAlarms", c.allowed);
  r.get("exceeded", c.exceeded);
  if (r.error()) return *r.error();
  return c;
}

}  // namespace

bool CalibrationFile::withinAlpha() const {
  for (const auto& c : phases) {
    if (c.phase != "both" && c.exceeded) return false;
  }
  return true;
}

Json calibrationJson(const CalibrationFile& file) {
  Json phases = Json::array();
  for (const auto& c : file.phases) phases.push_back(phaseJson(c));
  return Json{{"schema", kCalibrationSchema},
              {"experiment", file.experiment},
              {"experimentFile", file.experimentFile},
              {"experimentSha256", file.experimentSha256},
              {"created", file.created},
              {"runs", file.runs},
              {"withinAlpha", file.withinAlpha()},
              {"phases", phases}};
}

Result<CalibrationFile> calibrationFromJson(const Json& doc) {
  if (!doc.is_object()) return Error(ErrorCode::kInvalid, "not a JSON object");
  FieldReader r(doc, "");
  std::string schema;
  r.get("schema", schema);
  if (r.error()) return *r.error();
  if (schema != kCalibrationSchema) {
    return Error(ErrorCode::kInvalid,
                 "schema '" + schema + "' is not " + std::string(kCalibrationSchema));
  }
  CalibrationFile file;
  r.get("experiment", file.experiment);
  r.get("experimentFile", file.experimentFile);
  r.get("experimentSha256", file.experimentSha256);
  r.get("created", file.created);
  r.get("runs", file.runs);
  if (r.error()) return *r.error();
  auto phases = doc.find("phases");
  if (phases == doc.end() || !phases->is_array()) {
    return Error(ErrorCode::kInvalid, "phases: missing or not a list");
  }
  for (size_t i = 0; i < phases->size(); ++i) {
    auto c = phaseFromJson((*phases)[i], "phases[" + std::to_string(i) + "]");
    if (!c) return std::move(c).error();
    file.phases.push_back(std::move(*c));
  }
  return file;
}

Result<void> writeCalibrationFile(const CalibrationFile& file, const std::string& path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot create " + parent.string() + ": " + ec.message());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << calibrationJson(file).dump(2) << "\n";
    out.flush();
    if (!out) return Error(ErrorCode::kIo, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error::fromErrno("rename " + tmp + " to " + path, errno);
  }
  return success();
}

Result<CalibrationFile> loadCalibrationFile(const std::string& path,
                                            const std::string& experiment) {
  auto problem = [&path](ErrorCode code, const std::string& what) {
    return Error(code, "calibration file " + path + ": " + what);
  };
  std::ifstream in(path);
  if (!in) return problem(ErrorCode::kNotFound, "cannot be read");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return problem(ErrorCode::kInvalid, "is not JSON");
  auto file = calibrationFromJson(doc);
  if (!file) return problem(ErrorCode::kInvalid, file.error().message());
  if (file->experiment != experiment) {
    return problem(ErrorCode::kInvalid,
                   "calibrates experiment '" + file->experiment + "', not '" + experiment + "'");
  }
  return file;
}

}  // namespace chaosd
