#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "reports/FleetReport.h"

// The measurements the fleet report makes across hosts (reports/FleetReport.h): the fault
// window, samples inside it, the front end's time to detect and recover, the spread of the
// hosts' times to detect and recover, and the reliability model beside the observation.
namespace chaosd::report {

// The span the fleet's availability is measured over (wall clock, ns since the epoch).
struct FleetWindow {
  struct Edge {
    int64_t ns = 0;
    std::string host;
    std::string step;
  };
  int64_t start = 0;
  int64_t end = 0;
  std::string source;  // "faults": first apply to last revert; "runs": no fault was applied
  std::optional<Edge> firstApply;
  std::optional<Edge> lastRevert;
  // The spread of the hosts' first applies (the latest host's first apply minus the earliest
  // host's): how synchronised the game day's start was. nullopt with fewer than two hosts
  // applying.
  std::optional<int64_t> applySpreadNs;
};

nlohmann::json windowJson(const FleetWindow& window);

// ns since the epoch as report.json writes times: "2026-11-26T15:13:16.854Z".
std::string isoNanos(int64_t ns);

struct SampleCount {
  int count = 0;
  int passed = 0;
  double availability() const { return count > 0 ? static_cast<double>(passed) / count : 0; }
};
// The probe's samples that started inside the window.
SampleCount samplesIn(const nlohmann::json& probe, const FleetWindow& window);

// The front end's view of the game day (a probe of the control node's report): its first
// failure after the fleet's first apply (time to detect) and its first 3 passing samples in a
// row after the last revert (time to recover). `probe` names it; "" picks the only one.
nlohmann::json frontEndImpact(const nlohmann::json& controlReport, const FleetWindow& window,
                              const std::string& probe);

// min, median and max of the hosts' times to detect (recovery false) or to recover, over every
// host, fault and probe that detected it, with which host, step and probe; and those that did
// not detect (or did not recover).
nlohmann::json impactSpread(const std::vector<FleetMember>& hosts, bool recovery);

// The topology's model from each replica's availability in the window, beside the front end's
// observed availability. Errors (kInvalid) when the topology names a host or probe the reports
// do not have.
Result<nlohmann::json> reliabilityJson(const Topology& topology,
                                       const std::vector<FleetMember>& hosts,
                                       const FleetMember* control, const FleetWindow& window);

}  // namespace chaosd::report
