// The process fault types and their arguments; the injectors (pidfd signals) plug in here.
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/process/ExecTarget.h"
#include "injectors/process/KillInjector.h"
#include "injectors/process/PauseInjector.h"

namespace chaosd {

void registerProcessFaults(FaultRegistry& registry) {
  // The kernel every process injector acts through: the real one (tests build the injectors
  // with a process table in memory instead).
  std::shared_ptr<ProcessKernel> kernel = systemProcessKernel();

  FaultType kill;
  kill.name = "process.kill";
  kill.summary = "send a signal (default SIGKILL) to the selected processes";
  kill.targetKinds = {TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer};
  kill.revertible = false;
  kill.needsDuration = false;
  kill.schema.args = {
      arg::withDefault(arg::make("signal", ArgType::kSignal, "the signal, by name or number"), 9),
      arg::range(arg::make("interval", ArgType::kDuration,
                           "keep killing: one selected target each interval, for the step's "
                           "duration"),
                 1e6, 3600e9)};
  kill.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    if (ctx.args.contains("interval") && !ctx.duration) {
      return ArgProblem{"interval",
                        "an interval needs the step's duration (how long to keep "
                        "killing)"};
    }
    return std::nullopt;
  });
  kill.factory = [kernel] {
    return std::make_unique<KillInjector>(kernel, KillInjector::Options{});
  };
  (void)registry.add(std::move(kill));

  FaultType pause;
  pause.name = "process.pause";
  pause.summary = "stop the selected processes (SIGSTOP) for the duration, then SIGCONT";
  pause.targetKinds = {TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer};
  pause.factory = [kernel] { return std::make_unique<PauseInjector>(kernel); };
  (void)registry.add(std::move(pause));

  FaultType exec;
  exec.name = std::string(kExecFaultType);
  exec.summary = "a process an exec target started; stopped (TERM, then KILL) at revert";
  exec.internal = true;
  exec.factory = [kernel] { return std::make_unique<ExecTargetInjector>(kernel); };
  (void)registry.add(std::move(exec));
}

}  // namespace chaosd
