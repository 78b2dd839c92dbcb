#include "injectors/time/TimeSkewInjector.h"

#include "experiments/model/Experiment.h"
#include "injectors/RecordFields.h"
#include "injectors/time/TimeRecords.h"

namespace chaosd {
namespace {

constexpr const char* kTrueTime = "+0";

Result<FakeTimeUndo> execRecordOf(const nlohmann::json& undo, std::string_view faultId) {
  auto u = FakeTimeUndo::fromJson(undo);
  if (!u) return u;
  CHAOSD_TRY(checkRecordOwner("the time.skew undo record", u->faultId, faultId));
  return u;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

TimeSkewInjector::TimeSkewInjector(std::shared_ptr<FakeTimeTargets> targets,
                                   std::shared_ptr<ClockKernel> clock)
    : TimeSkewInjector(std::move(targets), std::move(clock), systemProcessKernel(), Options{}) {}

TimeSkewInjector::TimeSkewInjector(std::shared_ptr<FakeTimeTargets> targets,
                                   std::shared_ptr<ClockKernel> clock,
                                   std::shared_ptr<ProcessKernel> processes, Options options)
    : targets_(std::move(targets)),
      clock_(std::move(clock)),
      processes_(std::move(processes)),
      options_(options) {}

Result<PreparedFault> TimeSkewInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target != nullptr && target->kind == TargetKind::kProcess && target->process.pid) {
    return prepareExec(request, *target->process.pid);
  }
  if (target != nullptr) {
    return Error(ErrorCode::kInvalid, "time.skew needs an exec target the engine has started");
  }
  return prepareHost(request);
}

Result<AppliedFault> TimeSkewInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto mode = timeRecordMode(undo);
  if (!mode) return std::move(mode).error();
  if (*mode == "exec") return applyExec(faultId, undo);
  return applyHost(faultId, undo);
}

Result<nlohmann::json> TimeSkewInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  auto mode = timeRecordMode(undo);
  if (!mode) return std::move(mode).error();
  if (*mode == "exec") return revertExec(faultId, undo);
  return revertHost(faultId, undo);
}

Result<std::vector<std::string>> TimeSkewInjector::audit(const nlohmann::json& undo) {
  auto mode = timeRecordMode(undo);
  if (!mode) return std::move(mode).error();
  if (*mode == "exec") return auditExec(undo);
  return auditHost(undo);
}

Result<PreparedFault> TimeSkewInjector::prepareExec(const FaultRequest& request, pid_t pid) {
  auto started = targets_->find(pid);
  if (!started) {
    return Error(ErrorCode::kUnsupported,
                 "pid " + std::to_string(pid) + " (target " + request.target->name +
                     ") was not started with libfaketime: time.skew reaches exec targets only "
                     "from their start");
  }
  auto args = TimeSkewArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  FakeTimeUndo undo;
  undo.faultId = request.faultId;
  undo.pid = pid;
  undo.startTime = started->startTime;
  undo.controlFile = started->controlFile;
  undo.offset = args->offset;
  undo.execRealtimeNs = started->execRealtimeNs;
  PreparedFault out;
  out.undo = undo.toJson();
  out.description = "clock " + formatClockOffset(args->offset) + " for pid " + std::to_string(pid) +
                    " (target " + request.target->name + ") and its children, through libfaketime";
  out.resources = {"clock:pid:" + std::to_string(pid)};
  return out;
}

Result<AppliedFault> TimeSkewInjector::applyExec(const std::string& faultId,
                                                 const nlohmann::json& undo) {
  auto record = execRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(targets_->claim(record->pid, faultId));
  const std::string spec = fakeTimeSpec(record->offset);
  if (auto w = writeControlFile(record->controlFile, spec); !w) {
    targets_->release(record->pid, faultId);
    return std::move(w).error().withContext("time.skew of pid " + std::to_string(record->pid));
  }
  AppliedFault out;
  out.backend = "libfaketime";
  out.observed = {{"spec", spec}, {"controlFile", record->controlFile}};
  if (auto t = targets_->find(record->pid)) out.observed["library"] = t->library;
  return out;
}

Result<nlohmann::json> TimeSkewInjector::revertExec(const std::string& faultId,
                                                    const nlohmann::json& undo) {
  auto record = execRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  auto current = readControlFile(record->controlFile);
  if (!current && current.error().code() == ErrorCode::kNotFound) {
    targets_->release(record->pid, faultId);
    return nlohmann::json{{"note", "the control file is gone with its process"}};
  }
  if (!current) return std::move(current).error();
  if (!looksLikeFakeTimeSpec(*current)) {
    return Error(ErrorCode::kInvalid,
                 record->controlFile + " does not hold a libfaketime offset: left as it is");
  }
  if (trimmed(*current) != kTrueTime) CHAOSD_TRY(writeControlFile(record->controlFile, kTrueTime));
  targets_->release(record->pid, faultId);
  return nlohmann::json{{"was", trimmed(*current)}, {"restored", kTrueTime}};
}

Result<std::vector<std::string>> TimeSkewInjector::auditExec(const nlohmann::json& undo) {
  auto record = execRecordOf(undo, "");
  if (!record) return std::move(record).error();
  auto current = readControlFile(record->controlFile);
  if (!current || trimmed(*current) == kTrueTime) return std::vector<std::string>{};
  return std::vector<std::string>{"clock of pid " + std::to_string(record->pid) +
                                  " still skewed: " + record->controlFile + " holds '" +
                                  trimmed(*current) + "'"};
}

}  // namespace chaosd
