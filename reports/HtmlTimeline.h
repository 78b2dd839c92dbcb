#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace chaosd::report {

// The run's timeline as an inline SVG element: x is time from the run's start; one lane per
// probe with a dot per sample at its latency (scaled to the lane's slowest sample; failures in
// red); every applied fault's window shaded as <rect class="fault-window" data-step="...">
// and labelled with its step; phase boundaries as lines with the phase's name.
std::string timelineSvg(const nlohmann::json& report);

}  // namespace chaosd::report
