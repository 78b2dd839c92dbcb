#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessKernel.h"
#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"
#include "injectors/Injector.h"
#include "injectors/process/ProcessRecords.h"

// `exec` targets: a process the experiment starts itself (the service under test, a demo
// front), in a process group of its own, and stops at the end. The started process is
// journalled like a fault (type `process.exec`, internal: no experiment can name it), so
// whoever reverts faults (the owner, the guardian after a crash, `chaosctl recover`) also
// stops it: an experiment never leaves its own service running. docs/faults/process.md.
namespace chaosd {

inline constexpr std::string_view kExecFaultType = "process.exec";

struct StartedExec {
  pid_t pid = 0;  // also the process group id
  uint64_t startTime = 0;
  std::string program;  // the resolved executable
  // The seccomp user-notification listener when syscalls were to be intercepted (the filter
  // is installed in the child before exec); invalid otherwise. Close-on-exec: it never
  // reaches the target.
  Fd listener;
};

// What startExec installs in the child before exec, beyond the process group.
struct ExecOptions {
  // System call numbers whose every call is sent to the listener (SCMP_ACT_NOTIFY); empty:
  // no filter. The filter is permanent; a supervisor answers CONTINUE outside a fault.
  std::vector<int> notifySyscalls;
  // Libraries preloaded into the process (libfaketime), put before any LD_PRELOAD the
  // environment or the target's env already has.
  std::vector<std::string> preload;
  // Set in the process's environment, over the target's env; `unsetEnv` are removed.
  std::map<std::string, std::string> env;
  std::vector<std::string> unsetEnv;
  // Input to the hooks, set by the engine before they run: the run's folder, where a hook may
  // keep a file the process reads (a control file); "" when the run has none.
  std::string runDir;
  // Who the process runs as (the daemon's non-root caller): groups, gid and uid switched and
  // no_new_privs set in the child after the go and before the cwd, the filter and exec;
  // HOME/USER/LOGNAME from its passwd entry under the target's env. Unset: as this process.
  std::optional<Credentials> runAs;
};

// Where an argv[0] without a slash is found on PATH, as execvp would; kNotFound otherwise.
Result<std::string> findExecutable(const std::string& program);

// Called between fork and exec with the child's pid and start time (which exec keeps): the
// place to journal it. When it fails the child is killed before it ever runs the program.
using BeforeExec = std::function<Result<void>(const StartedExec&)>;

// Starts spec.argv (no shell) with the environment plus spec.env, in spec.cwd, with stdin
// from /dev/null and stdout and stderr appended to logPath ("" for /dev/null), as the leader
// of a new process group. The forked child waits until beforeExec has returned, then execs.
// The child gets SIGKILL if its parent dies (PR_SET_PDEATHSIG); the journal and the guardian
// stop the rest of its group. Fails when the exec fails (reported through a close-on-exec
// pipe, so "no such file" is an error here, not a dead child).
Result<StartedExec> startExec(const ExecSpec& spec, const std::string& logPath,
                              const BeforeExec& beforeExec = nullptr,
                              const ExecOptions& options = {});

// The last line a started process wrote to its log (logPath of startExec), read from the
// log's last 4 KiB, without its line end; "" when there is none or the log cannot be read.
// What a service prints as it dies ("OSError: [Errno 98] Address already in use") tells a
// user more than its exit code.
std::string lastLogLine(const std::string& logPath);

// The undo record of a started process: ExecUndo's JSON,
// {"pid", "startTime", "program", "graceMs"}.
nlohmann::json execUndo(const StartedExec& started, std::chrono::milliseconds grace);

// Stops the group an exec undo record names: SIGTERM to the leader (through a pidfd proven
// to be the recorded process) and to every member of its group started after it, waits up
// to the grace period for them to exit, then SIGKILL to whatever is left. Reaps the leader
// when it is our child. Idempotent: a group already gone is success. Observed:
// {"exited": "term"|"kill"|"gone", "stopMs": ...}. The JSON form parses the record first
// (kInvalid when it is not one).
// Without a kernel: the real one.
Result<nlohmann::json> stopExec(ProcessKernel& kernel, const ExecUndo& undo);
Result<nlohmann::json> stopExec(const ExecUndo& undo);
Result<nlohmann::json> stopExec(const nlohmann::json& undo);

// Members of the recorded group still running: "pid 1234 (python3) of exec group 1234".
Result<std::vector<std::string>> execLeftovers(ProcessKernel& kernel, const ExecUndo& undo);
Result<std::vector<std::string>> execLeftovers(const ExecUndo& undo);
Result<std::vector<std::string>> execLeftovers(const nlohmann::json& undo);

// The injector the journal's reverters use for `process.exec` records. prepare and apply are
// refused: the engine starts exec targets itself (startExec) and journals them.
class ExecTargetInjector final : public Injector {
 public:
  ExecTargetInjector();  // the real kernel
  explicit ExecTargetInjector(std::shared_ptr<ProcessKernel> kernel);

  Result<PreparedFault> prepare(const FaultRequest& request) override;
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<ProcessKernel> kernel_;
};

}  // namespace chaosd
