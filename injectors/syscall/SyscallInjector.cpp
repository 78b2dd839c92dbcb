#include "injectors/syscall/SyscallInjector.h"

#include <seccomp.h>

#include <cerrno>
#include <random>

#include "experiments/model/Experiment.h"
#include "injectors/syscall/SyscallSupervisor.h"

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

struct Plan {
  pid_t pid = 0;
  uint64_t startTime = 0;
  SyscallRule rule;
};

Result<Plan> planFrom(const nlohmann::json& undo, const std::string& faultId) {
  if (!undo.is_object() || !undo.contains("pid") || !undo.contains("numbers") ||
      !undo.contains("faultId")) {
    return Error(ErrorCode::kInvalid, "not a syscall undo record: " + undo.dump());
  }
  Plan p;
  p.pid = undo["pid"].get<pid_t>();
  p.startTime = undo.value("startTime", uint64_t{0});
  p.rule.faultId = undo["faultId"].get<std::string>();
  if (!faultId.empty() && p.rule.faultId != faultId) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to fault " + p.rule.faultId);
  }
  for (const auto& n : undo["numbers"]) p.rule.syscalls.insert(n.get<int>());
  p.rule.errnoValue = undo.value("errnoValue", 0);
  p.rule.delay = std::chrono::nanoseconds(undo.value("delayNs", int64_t{0}));
  p.rule.probability = undo.value("probability", 1.0);
  p.rule.pathGlob = undo.value("path", std::string());
  p.rule.first = undo.value("first", uint64_t{0});
  p.rule.after = undo.value("after", uint64_t{0});
  p.rule.seed = undo.value("seed", uint64_t{0});
  return p;
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

Result<PreparedFault> SyscallInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kProcess || !target->process.pid) {
    return Error(ErrorCode::kInvalid,
                 request.faultType + " needs an exec target the engine has started");
  }
  const pid_t pid = *target->process.pid;
  SyscallSupervisor* sup = SyscallSupervisor::find(pid);
  if (sup == nullptr) {
    return Error(ErrorCode::kUnsupported, "pid " + std::to_string(pid) + " (target " +
                                              target->name +
                                              ") was started without a syscall filter");
  }
  const nlohmann::json& args = request.args;
  nlohmann::json undo{{"faultId", request.faultId},
                      {"pid", pid},
                      {"startTime", sup->startTime()},
                      {"syscalls", nlohmann::json::array()},
                      {"numbers", nlohmann::json::array()}};
  for (const auto& s : args.value("syscalls", nlohmann::json::array())) {
    const std::string name = s.get<std::string>();
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return Error(ErrorCode::kInvalid, "'" + name + "' is not a system call here");
    }
    if (!sup->filtered().contains(nr)) {
      return Error(ErrorCode::kInternal, "the filter of target " + target->name +
                                             " does not send " + name + " to the supervisor");
    }
    undo["syscalls"].push_back(name);
    undo["numbers"].push_back(nr);
  }
  std::string what;
  if (request.faultType == "syscall.error") {
    const std::string name = args.value("errno", std::string("EIO"));
    auto value = errnoByName(name);
    if (!value) return Error(ErrorCode::kInvalid, "unknown errno " + name);
    undo["errno"] = name;
    undo["errnoValue"] = *value;
    what = name;
  } else {
    undo["delayNs"] = args.value("delay", int64_t{0});
    what = "+" + std::to_string(args.value("delay", int64_t{0}) / 1000000) + "ms";
  }
  undo["probability"] = args.value("probability", 1.0);
  if (args.contains("path")) undo["path"] = args["path"].get<std::string>();
  if (args.contains("first")) undo["first"] = args["first"].get<uint64_t>();
  if (args.contains("after")) undo["after"] = args["after"].get<uint64_t>();
  undo["seed"] = freshSeed();
  PreparedFault out;
  out.undo = undo;
  std::string calls;
  for (const auto& s : undo["syscalls"]) calls += (calls.empty() ? "" : ",") + s.get<std::string>();
  out.description =
      what + " on " + calls + " of pid " + std::to_string(pid) + " (target " + target->name + ")";
  out.resources = {"syscall:" + std::to_string(pid) + ":" + request.faultId};
  return out;
}

Result<AppliedFault> SyscallInjector::apply(const std::string& faultId,
                                            const nlohmann::json& undo) {
  auto plan = planFrom(undo, faultId);
  if (!plan) return std::move(plan).error();
  SyscallSupervisor* sup = SyscallSupervisor::find(plan->pid);
  if (sup == nullptr || sup->startTime() != plan->startTime) {
    return Error(ErrorCode::kNotFound, "no supervisor for pid " + std::to_string(plan->pid));
  }
  CHAOSD_TRY(sup->addRule(plan->rule));
  return AppliedFault{"seccomp-notify",
                      {{"syncWakeUp", sup->syncWakeUp()}, {"seed", plan->rule.seed}}};
}

Result<nlohmann::json> SyscallInjector::revert(const std::string& faultId,
                                               const nlohmann::json& undo) {
  auto plan = planFrom(undo, faultId);
  if (!plan) return std::move(plan).error();
  SyscallSupervisor* sup = SyscallSupervisor::find(plan->pid);
  if (sup == nullptr || sup->startTime() != plan->startTime) {
    return nlohmann::json{{"note",
                           "no supervisor in this process: the target is stopped with its "
                           "experiment"}};
  }
  auto stats = sup->removeRule(plan->rule.faultId);
  if (!stats) return nlohmann::json::object();  // a second revert
  return nlohmann::json{
      {"matched", stats->matched}, {"hit", stats->hit}, {"passed", stats->passed}};
}

Result<std::vector<std::string>> SyscallInjector::audit(const nlohmann::json& undo) {
  auto plan = planFrom(undo, "");
  if (!plan) return std::move(plan).error();
  SyscallSupervisor* sup = SyscallSupervisor::find(plan->pid);
  if (sup != nullptr && sup->hasRule(plan->rule.faultId)) {
    return std::vector<std::string>{"syscall rule of " + plan->rule.faultId +
                                    " still applied to pid " + std::to_string(plan->pid)};
  }
  return std::vector<std::string>{};
}

}  // namespace chaosd
