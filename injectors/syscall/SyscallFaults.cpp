// The syscall fault types (seccomp user notification on a process the experiment starts) and
// their arguments; the supervisor plugs in here.
#include <seccomp.h>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"

namespace chaosd {
namespace {

const std::vector<std::string> kErrnos = {
    "EPERM",        "ENOENT",        "EINTR",        "EIO",          "ENXIO",        "E2BIG",
    "EBADF",        "EAGAIN",        "ENOMEM",       "EACCES",       "EFAULT",       "EBUSY",
    "EEXIST",       "ENODEV",        "ENOTDIR",      "EISDIR",       "EINVAL",       "ENFILE",
    "EMFILE",       "ETXTBSY",       "EFBIG",        "ENOSPC",       "ESPIPE",       "EROFS",
    "EMLINK",       "EPIPE",         "EDQUOT",       "ENAMETOOLONG", "ENOSYS",       "ENOTEMPTY",
    "ECONNREFUSED", "ECONNRESET",    "ECONNABORTED", "ETIMEDOUT",    "EHOSTUNREACH", "ENETUNREACH",
    "EADDRINUSE",   "EADDRNOTAVAIL", "ENOBUFS"};

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
  err.schema.args.push_back(
      arg::withDefault(arg::oneOf("errno", kErrnos, "the error the calls fail with"), "EIO"));
  err.schema.constraints.push_back(knownSyscalls);
  (void)registry.add(std::move(err));

  FaultType delay;
  delay.name = "syscall.delay";
  delay.summary = "delay system calls of a started process";
  delay.targetKinds = {TargetKind::kExec};
  delay.schema.args = commonArgs();
  delay.schema.args.push_back(arg::required(
      arg::range(arg::make("delay", ArgType::kDuration, "added to each call hit"), 1e3, 600e9)));
  delay.schema.constraints.push_back(knownSyscalls);
  (void)registry.add(std::move(delay));
}

}  // namespace chaosd
