#pragma once

#include <string>
#include <vector>

#include "chaosd/app/cli/Cli.h"
#include "reports/ReportFiles.h"

// chaosctl report --fleet: the reports of one game day's hosts merged into one
// (reports/FleetReport.h; docs/reports.md, "Fleet report").
namespace chaosd::cli {

struct FleetOptions {
  bool fleet = false;
  std::string control;      // the control node's run folder or report.json
  std::string topology;     // the topology file (YAML or JSON)
  std::string out;          // where the fleet files go
  std::string expectHosts;  // "web1,web2,web3": hosts that must have a report
  bool given() const {
    return !control.empty() || !topology.empty() || !out.empty() || !expectHosts.empty();
  }
};
void addFleetOptions(po::options_description& desc, FleetOptions& fleet);

// Each input is HOST=PATH, a run folder or report.json (the host named after its folder), or a
// folder of per-host folders (each holding one report.json somewhere below). Writes
// fleet-report.json and the formats' files into --out; exits with the fleet's code (4 when
// anything was left behind anywhere), 2 on bad input, 5 when a file cannot be written.
int fleetReport(const std::vector<std::string>& inputs, const FleetOptions& options,
                const std::vector<report::ReportFormat>& formats, const CommonOptions& common);

}  // namespace chaosd::cli
