#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

// The resilience score: one number, 0 to 100, to follow a system's resilience from run to run
// (docs/reports.md). It is the weighted mean of the phases' pass rates over the phases that
// ran: before 0.2, during 0.5, after 0.3 (the weights of the phases that did not run are left
// out, the rest renormalised). A phase's pass rate is the mean of its probes' availability
// (passed samples / samples), so each probe counts the same however often it samples. A run
// that left something behind (outcome leftovers, a leftover, an unclean audit) or ended in an
// error scores 0, as does a run in which no phase has samples.
namespace chaosd::report {

inline constexpr double kBeforeWeight = 0.2;
inline constexpr double kDuringWeight = 0.5;
inline constexpr double kAfterWeight = 0.3;

struct ScoreInputs {
  // Mean probe availability per phase, 0..1; nullopt when the phase has no samples.
  std::optional<double> before;
  std::optional<double> during;
  std::optional<double> after;
  bool leftovers = false;
  bool error = false;
};

// The pure formula: 0..100, rounded to the nearest integer.
int resilienceScore(const ScoreInputs& inputs);

// The inputs as read from a report.json document.
ScoreInputs scoreInputsOf(const nlohmann::json& report);

inline int resilienceScore(const nlohmann::json& report) {
  return resilienceScore(scoreInputsOf(report));
}

// Why the score is 0 when the formula did not decide it: " (something was left behind)",
// " (the run ended in an error)", " (no probe samples)"; "" otherwise.
std::string scoreNote(const ScoreInputs& inputs);
inline std::string scoreNote(const nlohmann::json& report) {
  return scoreNote(scoreInputsOf(report));
}

}  // namespace chaosd::report
