// time.skew of the host's clock: CLOCK_REALTIME stepped (clock_adjtime ADJ_SETOFFSET) to the
// true time plus the offset and back, the true time computed from the (realtime, monotonic)
// pair recorded before the step, and the NTP clients paused meanwhile. docs/faults/time.md.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "chaosd/base/Log.h"
#include "experiments/model/Experiment.h"
#include "injectors/RecordFields.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/time/NtpClients.h"
#include "injectors/time/TimeRecords.h"
#include "injectors/time/TimeSkewInjector.h"

namespace chaosd {
namespace {

// Revert leaves a clock this close to the true time as it is: a second revert does not step
// it again (each step adds the error of reading the pair, microseconds).
constexpr int64_t kAlreadyTrueNs = 100'000;  // 100 us
// Audit calls a clock further than this from the true time a leftover.
constexpr int64_t kAuditToleranceNs = 10'000'000;  // 10 ms

std::string millis(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%+.3f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

Result<HostClockUndo> hostRecordOf(const nlohmann::json& undo, std::string_view faultId) {
  auto u = HostClockUndo::fromJson(undo);
  if (!u) return u;
  CHAOSD_TRY(checkRecordOwner("the time.skew undo record", u->faultId, faultId));
  return u;
}

}  // namespace

Result<PreparedFault> TimeSkewInjector::prepareHost(const FaultRequest& request) {
  if (request.guardrails == nullptr || !request.guardrails->allowHostClock) {
    return Error(ErrorCode::kPermission,
                 "time.skew without a target steps the host's clock for every process: refused; "
                 "set guardrails.allowHostClock: true to allow it");
  }
  auto args = TimeSkewArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  auto ntp = findNtpClients(*processes_);
  if (!ntp) return std::move(ntp).error();
  HostClockUndo undo;
  undo.faultId = request.faultId;
  undo.offset = args->offset;
  undo.bootId = clock_->bootId();
  undo.before = clock_->now();
  undo.ntpPaused = ntp->running;
  undo.ntpAlreadyStopped = ntp->alreadyStopped;
  PreparedFault out;
  out.undo = undo.toJson();
  out.description = "host clock (CLOCK_REALTIME) " + formatClockOffset(args->offset) +
                    " for every process; NTP clients paused: " +
                    (ntp->running.empty() ? "none running" : describeVictims(ntp->running));
  if (!ntp->alreadyStopped.empty()) {
    out.description +=
        "; already stopped by someone else, left alone: " + describeVictims(ntp->alreadyStopped);
  }
  out.resources = {"clock:host"};
  return out;
}

Result<AppliedFault> TimeSkewInjector::applyHost(const std::string& faultId,
                                                 const nlohmann::json& undo) {
  auto record = hostRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (clock_->bootId() != record->bootId) {
    return Error(ErrorCode::kConflict,
                 "time.skew of the host clock: the machine rebooted since the fault was prepared");
  }
  // NTP first: a client running while the clock is stepped could step it back.
  auto paused = pauseNtpClients(*processes_, record->ntpPaused, options_.ntpWait);
  if (!paused) return std::move(paused).error().withContext("time.skew of the host clock");
  // The step is relative (ADJ_SETOFFSET): the deviation measured now stays what it is until
  // someone steps the clock, however long the call takes to land.
  const int64_t deviation = record->deviationNs(clock_->now());
  if (auto set = clock_->stepRealtime(record->offset.count() - deviation); !set) {
    return std::move(set).error().withContext("time.skew of the host clock");
  }
  AppliedFault out;
  out.backend = "clock_adjtime";
  out.observed = {{"offset", formatClockOffset(record->offset)},
                  {"offsetNs", record->offset.count()},
                  {"offTrueBefore", millis(deviation)},
                  {"ntp", *paused}};
  if (!record->ntpAlreadyStopped.empty()) {
    nlohmann::json already = nlohmann::json::array();
    for (const Victim& v : record->ntpAlreadyStopped) already.push_back(v.toJson());
    out.observed["ntp"]["alreadyStopped"] = already;
  }
  log::get("time")->info("host clock stepped fault={} offset={} ntp_paused={}", faultId,
                         formatClockOffset(record->offset), (*paused)["paused"].size());
  return out;
}

Result<nlohmann::json> TimeSkewInjector::revertHost(const std::string& faultId,
                                                    const nlohmann::json& undo) {
  auto record = hostRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (clock_->bootId() != record->bootId) {
    // The recorded monotonic reading is of another boot, and the NTP clients are gone with it.
    return nlohmann::json{
        {"note", "the machine rebooted since the fault: its clock and processes were left alone"}};
  }
  nlohmann::json out;
  std::string clockError;
  const int64_t deviation = record->deviationNs(clock_->now());
  out["offTrueFound"] = millis(deviation);
  if (std::llabs(deviation) > kAlreadyTrueNs) {
    if (auto set = clock_->stepRealtime(-deviation); !set) {
      clockError = set.error().describe();
    }
    out["stepped"] = clockError.empty();
  } else {
    out["stepped"] = false;  // at the true time already: an apply that never ran, a 2nd revert
  }
  // The clock first, then NTP: a client resumed on a skewed clock would start correcting it.
  // Resumed even when the clock could not be set, so NTP is not left stopped for good.
  auto resumed = resumeNtpClients(*processes_, record->ntpPaused, options_.ntpWait);
  if (!clockError.empty()) {
    return Error(ErrorCode::kKernel, "time.skew revert of the host clock: " + clockError +
                                         (resumed ? "" : "; " + resumed.error().describe()));
  }
  if (!resumed) return std::move(resumed).error().withContext("time.skew revert");
  out["ntp"] = *resumed;
  log::get("time")->info("host clock restored fault={} off_true_found={} stepped={}", faultId,
                         millis(deviation), out["stepped"].get<bool>());
  return out;
}

Result<std::vector<std::string>> TimeSkewInjector::auditHost(const nlohmann::json& undo) {
  auto record = hostRecordOf(undo, "");
  if (!record) return std::move(record).error();
  std::vector<std::string> left;
  if (clock_->bootId() != record->bootId) return left;
  const int64_t deviation = record->deviationNs(clock_->now());
  if (std::llabs(deviation) > kAuditToleranceNs) {
    left.push_back("host clock still off the true time by " + millis(deviation));
  }
  for (auto& line : ntpClientsStillStopped(*processes_, record->ntpPaused)) {
    left.push_back(std::move(line));
  }
  return left;
}

}  // namespace chaosd
