#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/GuardianName.h"
#include "chaosd/base/Result.h"
#include "injectors/FaultRegistry.h"

// The guardian (DESIGN.md 2.2): a separate process, started by the owner of a run before it
// applies anything, that reverts the run's faults from the journal when the owner dies (kill -9
// included), and any fault whose deadline (+ a grace) passed while the owner is alive but hung.
//
// Protocol. The owner forks and execs its own binary (/proc/self/exe) as
//   <argv0> __guardian --journal PATH --run ID --owner-pid N --owner-start T
//                      --control-fd 3 [--grace-ms G] [--log-level L]
// with one end of a socketpair as fd 3. The guardian starts a session of its own, ignores the
// terminal's signals, opens a pidfd of the owner, checks the owner's start time and its
// parent, opens the journal and writes 'R'. The owner's finish() writes 'D' ("done, touch
// nothing") and closes its end. The end closing without 'D' means nothing by itself (a dying
// owner's files close before its pidfd fires): only the pidfd decides that the owner died.
//
// Deadlines are wall-clock times (the journal is shared between processes): a clock stepped
// forward makes the guardian revert a fault early.
namespace chaosd {

struct GuardianConfig {
  std::string journalPath;
  std::string runId;
  // The program to run and the arguments before the guardian's flags: argv[0] and the hidden
  // subcommand. The owner's own binary by default.
  std::string executable = "/proc/self/exe";
  std::vector<std::string> leadingArgs{"chaosctl", std::string(kGuardianSubcommand)};
  // How long past a fault's deadline the guardian lets a live owner be late before it
  // reverts the fault itself.
  std::chrono::milliseconds deadlineGrace{3000};
  // How long startGuardian waits for the guardian to report ready.
  std::chrono::milliseconds startTimeout{10000};
  std::string logLevel = "info";
};

// The owner's side of a running guardian. Destroying the handle without finish() leaves the
// guardian watching: the faults of an owner that forgot to finish are still reverted when it
// dies.
class GuardianHandle {
 public:
  GuardianHandle(pid_t pid, Fd pidfd, Fd control)
      : pid_(pid), pidfd_(std::move(pidfd)), control_(std::move(control)) {}

  pid_t pid() const { return pid_; }
  // Whether the guardian still runs. The owner checks it before applying each fault and
  // applies nothing when it is false.
  bool alive() const;
  // Tells the guardian the owner is done (it exits at once, touching nothing) and reaps it.
  // Call only after every fault was reverted or handed on. kTimeout (after killing it) when it
  // does not exit in time; an error when it had died or exited non-zero.
  Result<void> finish(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  pid_t pid_;
  Fd pidfd_;
  Fd control_;
};

// Starts the guardian of config.runId for the calling process (the run must be in the journal)
// and waits until it watches. Never leaves a half-started guardian behind.
Result<GuardianHandle> startGuardian(const GuardianConfig& config);

// The guardian's main: argv as given to the program (argv[1] may be "__guardian"). The
// registry is built by registerFaults. Exit codes: 0 nothing left to do (owner finished, or
// every fault reverted), 1 some revert failed, 2 bad arguments, 3 journal or setup error.
int runGuardian(int argc, char** argv,
                const std::function<void(FaultRegistry&)>& registerFaults = registerBuiltinFaults);

}  // namespace chaosd
