#include "injectors/syscall/SyscallInjector.h"

#include <seccomp.h>

#include <cerrno>
#include <random>

#include "chaosd/base/Units.h"
#include "experiments/model/Experiment.h"
#include "injectors/RecordFields.h"
#include "injectors/syscall/SyscallRecords.h"

namespace chaosd {
namespace {

const std::vector<std::pair<std::string, int>>& errnoTable() {
  static const std::vector<std::pair<std::string, int>> table = {{"EPERM", EPERM},
                                                                 {"ENOENT", ENOENT},
                                                                 {"EINTR", EINTR},
                                                                 {"EIO", EIO},
                                                                 {"ENXIO", ENXIO},
                                                                 {"E2BIG", E2BIG},
                                                                 {"EBADF", EBADF},
                                                                 {"EAGAIN", EAGAIN},
                                                                 {"ENOMEM", ENOMEM},
                                                                 {"EACCES", EACCES},
                                                                 {"EFAULT", EFAULT},
                                                                 {"EBUSY", EBUSY},
                                                                 {"EEXIST", EEXIST},
                                                                 {"ENODEV", ENODEV},
                                                                 {"ENOTDIR", ENOTDIR},
                                                                 {"EISDIR", EISDIR},
                                                                 {"EINVAL", EINVAL},
                                                                 {"ENFILE", ENFILE},
                                                                 {"EMFILE", EMFILE},
                                                                 {"ETXTBSY", ETXTBSY},
                                                                 {"EFBIG", EFBIG},
                                                                 {"ENOSPC", ENOSPC},
                                                                 {"ESPIPE", ESPIPE},
                                                                 {"EROFS", EROFS},
                                                                 {"EMLINK", EMLINK},
                                                                 {"EPIPE", EPIPE},
                                                                 {"EDQUOT", EDQUOT},
                                                                 {"ENAMETOOLONG", ENAMETOOLONG},
                                                                 {"ENOSYS", ENOSYS},
                                                                 {"ENOTEMPTY", ENOTEMPTY},
                                                                 {"ECONNREFUSED", ECONNREFUSED},
                                                                 {"ECONNRESET", ECONNRESET},
                                                                 {"ECONNABORTED", ECONNABORTED},
                                                                 {"ETIMEDOUT", ETIMEDOUT},
                                                                 {"EHOSTUNREACH", EHOSTUNREACH},
                                                                 {"ENETUNREACH", ENETUNREACH},
                                                                 {"EADDRINUSE", EADDRINUSE},
                                                                 {"EADDRNOTAVAIL", EADDRNOTAVAIL},
                                                                 {"ENOBUFS", ENOBUFS}};
  return table;
}

uint64_t freshSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// The record, when it belongs to faultId ("" for any: the audit).
Result<SyscallUndo> recordOf(const nlohmann::json& undo, std::string_view faultId) {
  auto u = SyscallUndo::fromJson(undo);
  if (!u) return u;
  CHAOSD_TRY(checkRecordOwner("the syscall undo record", u->faultId, faultId));
  return u;
}

}  // namespace

std::optional<int> errnoByName(const std::string& name) {
  for (const auto& [n, v] : errnoTable()) {
    if (n == name) return v;
  }
  return std::nullopt;
}

const std::vector<std::string>& knownErrnoNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [n, v] : errnoTable()) out.push_back(n);
    return out;
  }();
  return names;
}

SyscallInjector::SyscallInjector(std::shared_ptr<SupervisorRegistry> supervisors)
    : supervisors_(std::move(supervisors)) {}

Result<PreparedFault> SyscallInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kProcess || !target->process.pid) {
    return Error(ErrorCode::kInvalid,
                 request.faultType + " needs an exec target the engine has started");
  }
  const pid_t pid = *target->process.pid;
  RuleSupervisor* sup = supervisors_->find(pid);
  if (sup == nullptr) {
    return Error(ErrorCode::kUnsupported, "pid " + std::to_string(pid) + " (target " +
                                              target->name +
                                              ") was started without a syscall filter");
  }
  if (request.faultType == "file.corrupt") return prepareCorrupt(request, *sup, pid);
  auto args = SyscallArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  SyscallUndo undo;
  undo.faultId = request.faultId;
  undo.pid = pid;
  undo.startTime = sup->startTime();
  for (const std::string& name : args->syscalls) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return Error(ErrorCode::kInvalid, "'" + name + "' is not a system call here");
    }
    if (!sup->filtered().contains(nr)) {
      return Error(ErrorCode::kInternal, "the filter of target " + target->name +
                                             " does not send " + name + " to the supervisor");
    }
    undo.syscalls.push_back(name);
    undo.numbers.push_back(nr);
  }
  std::string what;
  if (request.faultType == "syscall.error") {
    const std::string name = args->errnoName.value_or("EIO");
    auto value = errnoByName(name);
    if (!value) return Error(ErrorCode::kInvalid, "unknown errno " + name);
    undo.action = SyscallErrno{name, *value};
    what = name;
  } else {
    const std::chrono::nanoseconds delay = args->delay.value_or(std::chrono::nanoseconds{0});
    undo.action = SyscallDelay{delay};
    // As written: a 350us delay is "+350us", not "+0ms".
    what = "+" + units::formatDuration(delay);
  }
  undo.probability = args->probability;
  undo.path = args->path;
  undo.first = args->first;
  undo.after = args->after;
  undo.seed = freshSeed();
  PreparedFault out;
  out.undo = undo.toJson();
  std::string calls;
  for (const auto& name : undo.syscalls) calls += (calls.empty() ? "" : ",") + name;
  out.description =
      what + " on " + calls + " of pid " + std::to_string(pid) + " (target " + target->name + ")";
  out.resources = {"syscall:" + std::to_string(pid) + ":" + request.faultId};
  return out;
}

Result<PreparedFault> SyscallInjector::prepareCorrupt(const FaultRequest& request,
                                                      const RuleSupervisor& sup, pid_t pid) {
  auto args = FileCorruptArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  SyscallUndo undo;
  undo.faultId = request.faultId;
  undo.pid = pid;
  undo.startTime = sup.startTime();
  for (const std::string& name : fileCorruptSyscalls()) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR || !sup.filtered().contains(nr)) {
      return Error(ErrorCode::kInternal, "the filter of target " + request.target->name +
                                             " does not send " + name + " to the supervisor");
    }
    undo.syscalls.push_back(name);
    undo.numbers.push_back(nr);
  }
  FileCorruption c;
  c.maxSize = args->maxSize;
  if (args->mode == "flip") {
    c.mode = FileCorruption::Mode::kFlip;
    c.rate = args->rate.value_or(0);
    c.flips = args->flips.value_or(0);
    c.seed = args->seed.value_or(freshSeed());
  } else if (args->mode == "truncate") {
    c.mode = FileCorruption::Mode::kTruncate;
    c.keep = args->size.value_or(0);
  } else if (args->mode == "zero") {
    c.mode = FileCorruption::Mode::kZero;
    c.offset = args->offset.value_or(0);
    c.length = args->length.value_or(0);
  } else {
    return Error(ErrorCode::kInvalid, "unknown file.corrupt mode " + args->mode);
  }
  undo.action = c;
  undo.probability = args->probability;
  undo.path = args->path;
  undo.first = args->first;
  undo.after = args->after;
  undo.seed = freshSeed();
  PreparedFault out;
  out.undo = undo.toJson();
  out.description = c.describe() + " of files matching " + args->path + " opened by pid " +
                    std::to_string(pid) + " (target " + request.target->name + ")";
  out.resources = {"syscall:" + std::to_string(pid) + ":" + request.faultId};
  return out;
}

const std::vector<std::string>& fileCorruptSyscalls() {
  static const std::vector<std::string> names = {"openat", "open"};
  return names;
}

Result<AppliedFault> SyscallInjector::apply(const std::string& faultId,
                                            const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  RuleSupervisor* sup = supervisors_->find(record->pid);
  if (sup == nullptr || sup->startTime() != record->startTime) {
    return Error(ErrorCode::kNotFound, "no supervisor for pid " + std::to_string(record->pid));
  }
  CHAOSD_TRY(sup->addRule(record->rule()));
  return AppliedFault{"seccomp-notify",
                      {{"syncWakeUp", sup->syncWakeUp()}, {"seed", record->seed}}};
}

Result<nlohmann::json> SyscallInjector::revert(const std::string& faultId,
                                               const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  RuleSupervisor* sup = supervisors_->find(record->pid);
  if (sup == nullptr || sup->startTime() != record->startTime) {
    return nlohmann::json{{"note",
                           "no supervisor in this process: the target is stopped with its "
                           "experiment"}};
  }
  auto stats = sup->removeRule(record->faultId);
  if (!stats) return nlohmann::json::object();  // a second revert
  nlohmann::json observed{
      {"matched", stats->matched}, {"hit", stats->hit}, {"passed", stats->passed}};
  if (std::holds_alternative<FileCorruption>(record->action)) {
    observed["corrupted"] = stats->corrupted;
    observed["notReadOnly"] = stats->notReadOnly;
    observed["copyFailed"] = stats->copyFailed;
  }
  return observed;
}

Result<std::vector<std::string>> SyscallInjector::audit(const nlohmann::json& undo) {
  auto record = recordOf(undo, "");
  if (!record) return std::move(record).error();
  RuleSupervisor* sup = supervisors_->find(record->pid);
  if (sup != nullptr && sup->hasRule(record->faultId)) {
    return std::vector<std::string>{"syscall rule of " + record->faultId +
                                    " still applied to pid " + std::to_string(record->pid)};
  }
  return std::vector<std::string>{};
}

}  // namespace chaosd
