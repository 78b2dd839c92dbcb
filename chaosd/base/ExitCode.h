#pragma once

namespace chaosd {

// Exit codes of chaosctl and of a run's outcome (DESIGN.md section 5).
enum ExitCode : int {
  kExitOk = 0,            // the hypothesis held before, during and after
  kExitDeviated = 1,      // the steady state broke
  kExitInvalid = 2,       // invalid experiment or arguments; nothing was done
  kExitAborted = 3,       // a stop condition, a guardrail or a signal; faults reverted
  kExitLeftovers = 4,     // a rollback failed or something was left behind
  kExitRuntimeError = 5,  // permissions, the kernel refused
};

}  // namespace chaosd
