#pragma once

// Helpers for the report tests: the fixture report.json, golden files, the report.json of a
// run chaosctl made, and running a command to capture its output and exit status (runCommand,
// from Shell.h).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/Shell.h"

namespace chaosd::testing {

inline std::string reportDataPath(const std::string& name) {
  return std::string(CHAOSD_SOURCE_DIR) + "/tests/data/reports/" + name;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The hand-written report of a run that deviated, failed a rollback and left something
// behind (tests/data/reports/deviated-leftovers.json).
inline nlohmann::json fixtureReport() {
  return nlohmann::json::parse(readFile(reportDataPath("deviated-leftovers.json")));
}

// The run directory `chaosctl run --report-dir` wrote under `reportDir` (the last listed: for
// a test that made one run there). Throws when `reportDir` does not exist.
inline std::filesystem::path runDirIn(const std::string& reportDir) {
  std::filesystem::path runDir;
  for (const auto& e : std::filesystem::directory_iterator(reportDir)) runDir = e.path();
  return runDir;
}

// The report.json of a run directory, parsed; is_discarded() when it is missing or not JSON.
inline nlohmann::json readReport(const std::filesystem::path& runDir) {
  return nlohmann::json::parse(readFile((runDir / "report.json").string()), nullptr, false);
}

// CHAOSD_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing with them.
inline bool updateGoldens() {
  const char* v = std::getenv("CHAOSD_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

// A fresh directory under TMPDIR (or /tmp), removed by the caller.
inline std::string makeTempDir(const char* prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  return made ? std::string(made) : std::string();
}

}  // namespace chaosd::testing
