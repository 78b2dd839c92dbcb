// The syscall fault types (seccomp user notification on a process the experiment starts) and
// their arguments; the supervisor plugs in here.
#include <seccomp.h>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/syscall/SyscallInjector.h"

namespace chaosd {
namespace {

std::vector<ArgSpec> commonArgs() {
  return {
      arg::required(arg::listOf("syscalls", arg::make("syscall", ArgType::kString, "a name"),
                                "the system calls to intercept, by name (openat, write, fsync)")),
      arg::withDefault(
          arg::range(arg::make("probability", ArgType::kPercent, "share of matching calls hit"), 0,
                     1),
          1.0),
      arg::make("path", ArgType::kString,
                "only calls on paths matching this glob (path arguments, or an fd's path)"),
      arg::range(arg::make("first", ArgType::kInt, "hit only the first N matching calls"), 1, 1e12),
      arg::range(arg::make("after", ArgType::kInt, "let the first N matching calls through"), 0,
                 1e12)};
}

std::optional<ArgProblem> knownSyscalls(const ArgContext& ctx) {
  if (!ctx.args.contains("syscalls")) return std::nullopt;
  const auto& list = ctx.args["syscalls"];
  for (size_t i = 0; i < list.size(); ++i) {
    auto name = list[i].get<std::string>();
    if (seccomp_syscall_resolve_name(name.c_str()) == __NR_SCMP_ERROR) {
      return ArgProblem{"syscalls", "'" + name + "' is not a system call on this architecture"};
    }
    // The started child makes these after its filter is loaded and before anyone answers.
    if (name == "execve" || name == "execveat" || name == "sendmsg") {
      return ArgProblem{"syscalls", "'" + name +
                                        "' cannot be intercepted: the started process needs it to "
                                        "hand over its filter and exec"};
    }
  }
  return std::nullopt;
}

}  // namespace

void registerSyscallFaults(FaultRegistry& registry) {
  FaultType err;
  err.name = "syscall.error";
  err.summary = "make system calls of a started process fail with an errno";
  err.targetKinds = {TargetKind::kExec};
  err.schema.args = commonArgs();
  err.schema.args.push_back(arg::withDefault(
      arg::oneOf("errno", knownErrnoNames(), "the error the calls fail with"), "EIO"));
  err.schema.constraints.push_back(knownSyscalls);
  err.factory = [] { return std::make_unique<SyscallInjector>(); };
  (void)registry.add(std::move(err));

  FaultType delay;
  delay.name = "syscall.delay";
  delay.summary = "delay system calls of a started process";
  delay.targetKinds = {TargetKind::kExec};
  delay.schema.args = commonArgs();
  delay.schema.args.push_back(arg::required(
      arg::range(arg::make("delay", ArgType::kDuration, "added to each call hit"), 1e3, 600e9)));
  delay.schema.constraints.push_back(knownSyscalls);
  delay.factory = [] { return std::make_unique<SyscallInjector>(); };
  (void)registry.add(std::move(delay));
}

}  // namespace chaosd
