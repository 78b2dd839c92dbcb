#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

struct CommandRequest {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH; no shell
  std::map<std::string, std::string> env;  // added to (overriding) our environment
  Duration timeout = std::chrono::seconds(1);
  size_t maxStdout = size_t{64} * 1024;  // kept; the rest is read and dropped
  // Who the command runs as (the daemon's non-root caller): groups, gid and uid switched and
  // no_new_privs set in the child before exec, HOME/USER/LOGNAME set from its passwd entry.
  // Unset: as this process.
  std::optional<Credentials> runAs;
};

struct CommandOutcome {
  pid_t pid = 0;
  bool timedOut = false;        // the deadline passed; the process group was killed
  std::optional<int> exitCode;  // set when it exited
  std::optional<int> signal;    // set when a signal ended it (SIGKILL after a timeout)
  std::string stdoutText;
  bool stdoutTruncated = false;
};

// Runs a command to completion or to its deadline, whichever comes first, and never leaves a
// process behind:
// - the child runs in a new process group, stdin and stderr on /dev/null, stdout on a pipe,
//   default signal dispositions and an empty signal mask, no other descriptors;
// - at the deadline the whole group gets SIGKILL and the child is reaped;
// - when the child exits first, whatever it left running in its group (`sleep 60 &`) is
//   killed too, before the child is reaped (so the group id cannot have been reused).
// Returns within the timeout plus a few milliseconds. Errors are for a command that could not
// be started (kNotFound "spawn foo: No such file or directory", ...). Relies on nobody else
// reaping our children (no waitpid(-1) elsewhere, SIGCHLD not ignored).
Result<CommandOutcome> runBoundedCommand(const CommandRequest& request);

}  // namespace chaosd
