#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/FleetReportCommand.h"
#include "chaosd/base/ExitCode.h"
#include "reports/ReportFiles.h"
#include "reports/ReportJson.h"
#include "reports/RunComparison.h"

namespace chaosd::cli {
namespace {

using report::loadReportFile;

int compare(const std::string& oldDir, const std::string& newDir, const CommonOptions& common) {
  auto oldReport = loadReportFile(oldDir);
  auto newReport = loadReportFile(newDir);
  for (const auto* r : {&oldReport, &newReport}) {
    if (!*r) {
      std::cerr << "chaosctl report: " << r->error().describe() << "\n";
      return kExitInvalid;
    }
  }
  auto comparison = report::compareRuns(*oldReport, *newReport);
  if (!comparison.sameExperiment()) {
    std::cerr << "chaosctl report: --compare: " << oldDir << " is a run of '"
              << comparison.oldExperiment << "', " << newDir << " of '" << comparison.newExperiment
              << "': compare runs of the same experiment\n";
    return kExitInvalid;
  }
  if (common.json()) {
    std::cout << report::comparisonJson(comparison).dump(2) << "\n";
  } else {
    std::cout << report::comparisonText(comparison);
  }
  return kExitOk;
}

}  // namespace

int reportCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl report options");
  CommonOptions common;
  std::vector<std::string> runDirs;
  std::string format;
  std::string compareWith;
  FleetOptions fleet;
  desc.add_options()("run-dir", po::value(&runDirs)->required(),
                     "a run folder holding report.json (or the report.json itself); with "
                     "--fleet, several")(
      "format", po::value(&format)->default_value("all"),
      "which files to write into the run folder: junit, html, markdown or all")(
      "compare", po::value(&compareWith),
      "OLD_RUN_DIR: instead of writing files, print what got better or worse from the run "
      "OLD_RUN_DIR to RUN_DIR (a run of the same experiment); --output json for JSON");
  addFleetOptions(desc, fleet);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("run-dir", -1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl report RUN_DIR [--format junit|html|markdown|all] "
                 "[--compare OLD_RUN_DIR]\n       chaosctl report --fleet [HOST=]RUN_DIR... "
                 "[--control RUN_DIR] [--topology FILE] [--out DIR] [--format ...]",
                 desc, pos, args, vm, code)) {
    return code;
  }
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto formats = report::parseFormats(format);
  if (!formats) {
    std::cerr << "chaosctl report: --format '" << format
              << "' is not junit, html, markdown or all\n";
    return kExitInvalid;
  }
  if (fleet.fleet && vm.count("compare")) {
    std::cerr << "chaosctl report: --fleet and --compare do not go together\n";
    return kExitInvalid;
  }
  if (fleet.fleet) return fleetReport(runDirs, fleet, *formats, common);
  if (runDirs.size() != 1) {
    std::cerr << "chaosctl report: give one RUN_DIR (several only with --fleet)\n";
    return kExitInvalid;
  }
  if (fleet.given()) {
    std::cerr << "chaosctl report: --control, --topology and --out go with --fleet\n";
    return kExitInvalid;
  }
  const std::string& runDir = runDirs.front();
  if (vm.count("compare")) return compare(compareWith, runDir, common);

  auto doc = loadReportFile(runDir);
  if (!doc) {
    std::cerr << "chaosctl report: " << doc.error().describe() << "\n";
    return kExitInvalid;
  }
  std::error_code ec;
  const std::string dir = std::filesystem::is_directory(runDir, ec)
                              ? runDir
                              : std::filesystem::path(runDir).parent_path().string();
  int exit = kExitOk;
  nlohmann::json written = nlohmann::json::array();
  for (const auto& w : report::writeReportFiles(*doc, dir.empty() ? "." : dir, *formats)) {
    if (w.error) {
      std::cerr << "chaosctl report: cannot write " << w.path << ": " << w.error->describe()
                << "\n";
      exit = kExitRuntimeError;
      continue;
    }
    if (common.json()) {
      written.push_back(w.path);
    } else {
      std::cout << "wrote " << w.path << "\n";
    }
  }
  if (common.json()) std::cout << nlohmann::json{{"written", written}}.dump(2) << "\n";
  return exit;
}

}  // namespace chaosd::cli
