#include "chaosd/engine/States.h"

#include <string>

#include "chaosd/base/ExitCode.h"

namespace chaosd {

std::string_view faultStateName(FaultState state) {
  switch (state) {
    case FaultState::kNotStarted:
      return "not-started";
    case FaultState::kIntent:
      return "intent";
    case FaultState::kApplyFailed:
      return "apply-failed";
    case FaultState::kApplied:
      return "applied";
    case FaultState::kReverted:
      return "reverted";
    case FaultState::kRevertFailed:
      return "revert-failed";
    case FaultState::kSkipped:
      return "skipped";
  }
  return "unknown";
}

Result<FaultState> parseFaultState(std::string_view name) {
  for (auto s : {FaultState::kNotStarted, FaultState::kIntent, FaultState::kApplyFailed,
                 FaultState::kApplied, FaultState::kReverted, FaultState::kRevertFailed,
                 FaultState::kSkipped}) {
    if (faultStateName(s) == name) return s;
  }
  return Error(ErrorCode::kInvalid, "unknown fault state '" + std::string(name) + "'");
}

std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kDeviated:
      return "deviated";
    case Outcome::kAborted:
      return "aborted";
    case Outcome::kLeftovers:
      return "leftovers";
    case Outcome::kError:
      return "error";
  }
  return "unknown";
}

int exitCodeOf(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return kExitOk;
    case Outcome::kDeviated:
      return kExitDeviated;
    case Outcome::kAborted:
      return kExitAborted;
    case Outcome::kLeftovers:
      return kExitLeftovers;
    case Outcome::kError:
      return kExitRuntimeError;
  }
  return kExitRuntimeError;
}

Outcome worse(Outcome a, Outcome b) {
  auto rank = [](Outcome o) {
    switch (o) {
      case Outcome::kOk:
        return 0;
      case Outcome::kDeviated:
        return 1;
      case Outcome::kAborted:
        return 2;
      case Outcome::kError:
        return 3;
      case Outcome::kLeftovers:
        return 4;
    }
    return 4;
  };
  return rank(a) >= rank(b) ? a : b;
}

std::optional<Outcome> outcomeOfRunEnd(std::string_view journalled) {
  for (Outcome o : kAllOutcomes) {
    if (outcomeName(o) == journalled) return o;
  }
  if (journalled == "owner-died" || journalled == "recovered") return Outcome::kAborted;
  if (journalled == "recovery-failed") return Outcome::kLeftovers;
  return std::nullopt;
}

}  // namespace chaosd
