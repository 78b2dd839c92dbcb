#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "reports/FleetTopology.h"

// The fleet report: the report.json of each host of one game day merged into one document
// (schema chaosd.fleet-report/v1, docs/reports.md "Fleet report"): each host's outcome and
// faults, the probes (the control node's too), time to detect and to recover across the fleet,
// what was left behind anywhere, and, given a topology, the reliability the seed's models
// predict from each replica's measured availability beside what the front end observed.
namespace chaosd::report {

inline constexpr const char* kFleetReportSchema = "chaosd.fleet-report/v1";

struct FleetMember {
  std::string host;    // the name the fleet report uses for it
  std::string source;  // where its report.json was read from
  nlohmann::json report;
};

struct FleetInputs {
  std::vector<FleetMember> hosts;
  // A report from the control node (typically probes only, of the front end); its experiment
  // may differ from the hosts'.
  std::optional<FleetMember> control;
  std::optional<Topology> topology;
  // Hosts that should have a report (besides the topology's): one without is a partial failure.
  std::vector<std::string> expectedHosts;
};

// Merges the reports. Bad input (kInvalid, naming the host and file): no hosts, a host named
// twice, the same run given twice, hosts running different experiments, a topology naming a
// probe a report lacks. A host expected (--expect-hosts, or in the topology) without a report
// is not bad input but a partial failure: listed in missingHosts, and the fleet's outcome is
// an error (exit 5) unless something was left behind (4): what that host did is unknown.
Result<nlohmann::json> buildFleetReport(const FleetInputs& inputs);

// The fleet's exit code: 4 if anything was left behind on any host (or the control node), else
// 5 if a run ended in an error, 3 if one was aborted, 1 if one deviated, else 0.
int fleetExitCode(const nlohmann::json& fleet);

}  // namespace chaosd::report
