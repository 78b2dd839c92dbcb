#pragma once

#include <optional>
#include <string_view>

#include "chaosd/base/Result.h"

// The two vocabularies every layer above the engine shares: where a fault stands, and how a
// run ended. The journal, the engine's record of a run, the daemon and the reports use these
// enums; their names are what report.json, the journal and the API write.
namespace chaosd {

// Where a fault stands. The journal holds intent to skipped; a run's record adds the states
// of faults that never reached the journal (not-started) or the kernel (apply-failed).
enum class FaultState {
  kNotStarted,
  kIntent,
  kApplyFailed,
  kApplied,
  kReverted,
  kRevertFailed,
  kSkipped
};
std::string_view faultStateName(FaultState state);
Result<FaultState> parseFaultState(std::string_view name);

// How a run ended (DESIGN.md section 5). When several apply, the most serious wins:
// leftovers > error > aborted > deviated > ok.
enum class Outcome { kOk, kDeviated, kAborted, kLeftovers, kError };
inline constexpr Outcome kAllOutcomes[] = {Outcome::kOk, Outcome::kDeviated, Outcome::kAborted,
                                           Outcome::kLeftovers, Outcome::kError};
std::string_view outcomeName(Outcome outcome);
int exitCodeOf(Outcome outcome);
Outcome worse(Outcome a, Outcome b);

// The outcome a run's end in the journal counts as: an outcome's name, or how a run whose
// owner died was ended for it ("owner-died", "recovered": aborted; "recovery-failed":
// leftovers). nullopt for a run still open ("") or a word it does not know.
std::optional<Outcome> outcomeOfRunEnd(std::string_view journalled);

}  // namespace chaosd
