// The syscall fault types (seccomp user notification on a process the experiment starts) and
// their arguments; the supervisor plugs in here.
#include <seccomp.h>

#include <cstdlib>
#include <memory>
#include <set>

#include "chaosd/base/Quote.h"
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/syscall/SyscallInjector.h"
#include "injectors/syscall/SyscallRecords.h"
#include "injectors/syscall/SyscallSupervisor.h"

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
    const std::string item = "syscalls[" + std::to_string(i) + "]";  // the error points at it
    if (seccomp_syscall_resolve_name(name.c_str()) == __NR_SCMP_ERROR) {
      return ArgProblem{item, quoteText(name) + " is not a system call on this architecture"};
    }
    // The started child makes these after its filter is loaded and before anyone answers.
    if (name == "execve" || name == "execveat" || name == "sendmsg") {
      return ArgProblem{item, quoteText(name) +
                                  " cannot be intercepted: the started process needs it to "
                                  "hand over its filter and exec"};
    }
  }
  return std::nullopt;
}

// Syscall faults need their calls sent to a listener, which only a filter installed before
// exec can do: every syscall any fault of the method names for the target is filtered, and a
// supervisor answers the listener (CONTINUE outside a fault) for as long as the process runs.
class SyscallExecContribution final : public ExecContribution {
 public:
  SyscallExecContribution(std::set<int> syscalls, std::shared_ptr<SupervisorRegistry> supervisors)
      : syscalls_(std::move(syscalls)), supervisors_(std::move(supervisors)) {}
  // Unfindable before it stops: an injector never reaches a supervisor being destroyed.
  ~SyscallExecContribution() override {
    if (supervisor_) supervisors_->remove(supervisor_->pid(), *supervisor_);
  }
  SyscallExecContribution(const SyscallExecContribution&) = delete;
  SyscallExecContribution& operator=(const SyscallExecContribution&) = delete;

  void beforeExec(ExecOptions& options) override {
    std::set<int> all(options.notifySyscalls.begin(), options.notifySyscalls.end());
    all.insert(syscalls_.begin(), syscalls_.end());
    options.notifySyscalls.assign(all.begin(), all.end());
  }

  void started(StartedExec& process, nlohmann::json& observed) override {
    if (!process.listener) return;
    supervisor_ = std::make_unique<SyscallSupervisor>(process.pid, process.startTime,
                                                      std::move(process.listener));
    supervisor_->setFiltered(syscalls_);
    supervisors_->add(process.pid, *supervisor_);
    observed["syscallFilter"] = nlohmann::json::array();
    for (int nr : syscalls_) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
      observed["syscallFilter"].push_back(name != nullptr ? name : std::to_string(nr));
      std::free(name);
    }
    observed["syncWakeUp"] = supervisor_->syncWakeUp();
  }

 private:
  std::set<int> syscalls_;
  std::shared_ptr<SupervisorRegistry> supervisors_;
  std::unique_ptr<SyscallSupervisor> supervisor_;
};

std::unique_ptr<ExecContribution> syscallExecHook(
    const std::vector<ExecStep>& steps, const std::shared_ptr<SupervisorRegistry>& supervisors) {
  std::set<int> syscalls;
  for (const auto& step : steps) {
    if (step.faultType == "file.corrupt") {
      for (const auto& name : fileCorruptSyscalls()) {
        const int nr = seccomp_syscall_resolve_name(name.c_str());
        if (nr != __NR_SCMP_ERROR) syscalls.insert(nr);
      }
      continue;
    }
    if (!step.faultType.starts_with("syscall.")) continue;
    auto args = SyscallArgs::fromJson(step.args);
    if (!args) continue;  // the parser refuses such args; prepare reports them
    for (const auto& name : args->syscalls) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr != __NR_SCMP_ERROR) syscalls.insert(nr);
    }
  }
  if (syscalls.empty()) return nullptr;
  return std::make_unique<SyscallExecContribution>(std::move(syscalls), supervisors);
}

// The args of file.corrupt that belong to one mode only, by mode.
std::optional<ArgProblem> corruptModeArgs(const ArgContext& ctx) {
  const std::string mode = ctx.args.value("mode", "");
  const std::vector<std::pair<std::string, std::string>> owner = {
      {"rate", "flip"},     {"flips", "flip"},  {"seed", "flip"},
      {"size", "truncate"}, {"offset", "zero"}, {"length", "zero"}};
  for (const auto& [name, of] : owner) {
    if (ctx.args.contains(name) && of != mode) {
      return ArgProblem{name, "'" + name + "' belongs to mode " + of + ", not " + mode};
    }
  }
  if (mode == "flip" && ctx.args.contains("rate") == ctx.args.contains("flips")) {
    return ArgProblem{"", "mode flip needs exactly one of rate and flips"};
  }
  if (ctx.args.contains("rate") && !(ctx.args["rate"].get<double>() > 0)) {
    return ArgProblem{"rate", "a rate of 0 flips nothing (a share above 0, up to 1)"};
  }
  if (mode == "truncate" && !ctx.args.contains("size")) {
    return ArgProblem{"", "mode truncate needs size (the bytes kept)"};
  }
  return std::nullopt;
}

FaultType fileCorruptType(const std::shared_ptr<SupervisorRegistry>& supervisors) {
  FaultType t;
  t.name = "file.corrupt";
  t.summary = "a started process reads corrupted copies of files (the files stay intact)";
  t.targetKinds = {TargetKind::kExec};
  t.schema.args = {
      arg::required(arg::make("path", ArgType::kString,
                              "opens of paths matching this glob get a corrupted copy")),
      arg::required(arg::oneOf("mode", {"flip", "truncate", "zero"},
                               "flip bits, cut the file short, or zero a range")),
      arg::range(arg::make("rate", ArgType::kNumber, "flip: the share of bits flipped (above 0)"),
                 0, 1),
      arg::range(arg::make("flips", ArgType::kInt, "flip: exactly this many bits flipped"), 1,
                 1e12),
      arg::range(arg::make("seed", ArgType::kInt,
                           "flip: where the flips fall (drawn and recorded when absent)"),
                 0, 1e15),
      arg::range(arg::make("size", ArgType::kSize, "truncate: the bytes kept"), 0, 1e15),
      arg::range(arg::make("offset", ArgType::kSize, "zero: the first byte zeroed"), 0, 1e15),
      arg::range(
          arg::make("length", ArgType::kSize, "zero: how many bytes (to the end when absent)"), 1,
          1e15),
      arg::withDefault(
          arg::range(arg::make("maxSize", ArgType::kSize,
                               "a larger file is let through whole (the copy is held in memory)"),
                     1, 64e9),
          uint64_t{1} << 30),
      arg::withDefault(
          arg::range(arg::make("probability", ArgType::kPercent, "share of matching opens hit"), 0,
                     1),
          1.0),
      arg::range(arg::make("first", ArgType::kInt, "hit only the first N matching opens"), 1, 1e12),
      arg::range(arg::make("after", ArgType::kInt, "let the first N matching opens through"), 0,
                 1e12)};
  t.schema.constraints.push_back(corruptModeArgs);
  t.factory = [supervisors] { return std::make_unique<SyscallInjector>(supervisors); };
  return t;
}

}  // namespace

void registerSyscallFaults(FaultRegistry& registry) {
  // The supervisors the exec hook starts and the injectors hand rules to: shared by the two
  // fault types and the hook of this registry only.
  auto supervisors = std::make_shared<SupervisorRegistry>();
  FaultType err;
  err.name = "syscall.error";
  err.summary = "make system calls of a started process fail with an errno";
  err.targetKinds = {TargetKind::kExec};
  err.schema.args = commonArgs();
  err.schema.args.push_back(arg::withDefault(
      arg::oneOf("errno", knownErrnoNames(), "the error the calls fail with"), "EIO"));
  err.schema.constraints.push_back(knownSyscalls);
  err.factory = [supervisors] { return std::make_unique<SyscallInjector>(supervisors); };
  (void)registry.add(std::move(err));

  FaultType delay;
  delay.name = "syscall.delay";
  delay.summary = "delay system calls of a started process";
  delay.targetKinds = {TargetKind::kExec};
  delay.schema.args = commonArgs();
  delay.schema.args.push_back(arg::required(
      arg::range(arg::make("delay", ArgType::kDuration, "added to each call hit"), 1e3, 600e9)));
  delay.schema.constraints.push_back(knownSyscalls);
  delay.factory = [supervisors] { return std::make_unique<SyscallInjector>(supervisors); };
  (void)registry.add(std::move(delay));
  (void)registry.add(fileCorruptType(supervisors));
  registry.addExecHook([supervisors](const std::vector<ExecStep>& steps) {
    return syscallExecHook(steps, supervisors);
  });
}

}  // namespace chaosd
