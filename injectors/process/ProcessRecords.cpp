#include "injectors/process/ProcessRecords.h"

#include <cmath>
#include <limits>
#include <utility>

namespace chaosd {
namespace {

using Json = nlohmann::json;

// For messages only: a record's text, never throwing on invalid UTF-8 (a corrupt record may
// hold anything).
std::string shown(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Error invalid(std::string message) { return Error(ErrorCode::kInvalid, std::move(message)); }

// The member `key` of an object; nullptr when it has none (or is no object).
const Json* member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// The readers below leave `out` as it is when the key is absent (the default of every
// release), and fail on a value of the wrong type.

template <typename T>
Result<void> readNumber(const Json& j, const char* key, T& out) {
  const Json* v = member(j, key);
  if (v == nullptr) return success();
  if (!v->is_number()) return invalid(std::string("'") + key + "' is not a number: " + shown(*v));
  if (v->is_number_float()) {
    // A float outside T's range would make the conversion undefined.
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < static_cast<double>(std::numeric_limits<T>::lowest()) ||
        d > static_cast<double>(std::numeric_limits<T>::max())) {
      return invalid(std::string("'") + key + "' is out of range: " + shown(*v));
    }
  }
  out = v->get<T>();
  return success();
}

Result<void> readString(const Json& j, const char* key, std::string& out) {
  const Json* v = member(j, key);
  if (v == nullptr) return success();
  if (!v->is_string()) return invalid(std::string("'") + key + "' is not a string: " + shown(*v));
  out = v->get<std::string>();
  return success();
}

Result<void> readBool(const Json& j, const char* key, bool& out) {
  const Json* v = member(j, key);
  if (v == nullptr) return success();
  if (!v->is_boolean()) return invalid(std::string("'") + key + "' is not a boolean: " + shown(*v));
  out = v->get<bool>();
  return success();
}

// An integer that fits an int (a pid, a signal number); nullopt for anything else.
std::optional<int> intOf(const Json* v) {
  using Limits = std::numeric_limits<int>;
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(Limits::max())) return std::nullopt;
    return static_cast<int>(u);
  }
  const int64_t i = v->get<int64_t>();
  if (i < Limits::min() || i > Limits::max()) return std::nullopt;
  return static_cast<int>(i);
}

// ---- the selector and the selection (parts of ProcessPlan's record) ----------------------

std::string_view modeName(SelectionMode mode) {
  switch (mode) {
    case SelectionMode::kAll:
      return "all";
    case SelectionMode::kOne:
      return "one";
    case SelectionMode::kCount:
      return "count";
    case SelectionMode::kPercent:
      return "percent";
  }
  return "all";
}

SelectionMode modeFromName(std::string_view name) {
  for (auto mode : {SelectionMode::kOne, SelectionMode::kCount, SelectionMode::kPercent}) {
    if (modeName(mode) == name) return mode;
  }
  return SelectionMode::kAll;  // "all", and a name this release does not know
}

Json selectorToJson(const ProcessSelector& s) {
  Json j = {{"name", s.name},
            {"cmdline", s.cmdline},
            {"cgroup", s.cgroup},
            {"user", s.user},
            {"pidFile", s.pidFile}};
  if (s.pid) j["pid"] = *s.pid;
  if (!s.exceptPids.empty()) j["exceptPids"] = s.exceptPids;     // a container's protected init
  if (!s.moreCgroups.empty()) j["moreCgroups"] = s.moreCgroups;  // several containers' groups
  return j;
}

// Lenient, as in every release: a field of the wrong type reads as absent.
ProcessSelector selectorFromJson(const Json& j) {
  ProcessSelector s;
  s.pid = intOf(member(j, "pid"));
  auto text = [&](const char* key, std::string& out) {
    const Json* v = member(j, key);
    if (v != nullptr && v->is_string()) out = v->get<std::string>();
  };
  text("name", s.name);
  text("cmdline", s.cmdline);
  text("cgroup", s.cgroup);
  text("user", s.user);
  text("pidFile", s.pidFile);
  if (const Json* e = member(j, "exceptPids"); e != nullptr && e->is_array()) {
    for (const auto& p : *e) {
      if (p.is_number_integer()) s.exceptPids.push_back(p.get<int>());
    }
  }
  if (const Json* m = member(j, "moreCgroups"); m != nullptr && m->is_array()) {
    for (const auto& g : *m) {
      if (g.is_string()) s.moreCgroups.push_back(g.get<std::string>());
    }
  }
  return s;
}

Json selectionToJson(const Selection& s) {
  return {{"mode", modeName(s.mode)}, {"count", s.count}, {"fraction", s.fraction}};
}

Result<Selection> selectionFromJson(const Json& j) {
  Selection s;
  std::string mode = "all";
  CHAOSD_TRY(readString(j, "mode", mode));
  s.mode = modeFromName(mode);
  CHAOSD_TRY(readNumber(j, "count", s.count));
  CHAOSD_TRY(readNumber(j, "fraction", s.fraction));
  return s;
}

Json victimsToJson(const std::vector<Victim>& victims) {
  Json a = Json::array();
  for (const Victim& v : victims) a.push_back(v.toJson());
  return a;
}

// The list under `key`: absent is empty; anything but a list of victims is an error.
Result<void> readVictims(const Json& undo, const char* key, std::vector<Victim>& out) {
  const Json* list = member(undo, key);
  if (list == nullptr) return success();
  if (!list->is_array()) return invalid(std::string("'") + key + "' is not a list");
  for (const Json& entry : *list) {
    auto victim = Victim::fromJson(entry);
    if (!victim) return std::move(victim).error().withContext(std::string("'") + key + "'");
    out.push_back(std::move(*victim));
  }
  return success();
}

// Everything of ProcessPlan's record but its faultId and faultType.
Result<void> readPlanFields(const Json& undo, ProcessPlan& p) {
  CHAOSD_TRY(readString(undo, "selectorText", p.selectorText));
  if (const Json* s = member(undo, "selector"); s != nullptr && s->is_object()) {
    p.selector = selectorFromJson(*s);
  }
  if (const Json* s = member(undo, "selection"); s != nullptr && s->is_object()) {
    auto selection = selectionFromJson(*s);
    if (!selection) return std::move(selection).error().withContext("'selection'");
    p.selection = *selection;
  }
  CHAOSD_TRY(readNumber(undo, "seed", p.seed));
  p.selection.seed = p.seed;
  std::string seedSource;
  CHAOSD_TRY(readString(undo, "seedSource", seedSource));
  p.seedFromExperiment = seedSource == "experiment";
  CHAOSD_TRY(readNumber(undo, "signal", p.signal));
  int64_t durationNs = 0;
  int64_t intervalNs = 0;
  CHAOSD_TRY(readNumber(undo, "durationNs", durationNs));
  CHAOSD_TRY(readNumber(undo, "intervalNs", intervalNs));
  p.duration = std::chrono::nanoseconds(durationNs);
  p.interval = std::chrono::nanoseconds(intervalNs);
  CHAOSD_TRY(readBool(undo, "noop", p.noop));
  CHAOSD_TRY(readNumber(undo, "matched", p.matched));
  CHAOSD_TRY(readNumber(undo, "eligible", p.eligible));
  if (const Json* refused = member(undo, "refused"); refused != nullptr && refused->is_array()) {
    for (const Json& r : *refused) {
      if (r.is_string()) p.refused.push_back(r.get<std::string>());
    }
  }
  CHAOSD_TRY(readVictims(undo, "victims", p.victims));
  CHAOSD_TRY(readVictims(undo, "stopped", p.stopped));
  CHAOSD_TRY(readVictims(undo, "alreadyStopped", p.alreadyStopped));
  return success();
}

}  // namespace

// ---- Victim ------------------------------------------------------------------------------

Json Victim::toJson() const { return {{"pid", pid}, {"startTime", startTime}, {"comm", comm}}; }

Result<Victim> Victim::fromJson(const Json& j) {
  const Json* start = member(j, "startTime");
  std::optional<pid_t> pid = intOf(member(j, "pid"));
  if (!pid || start == nullptr || !start->is_number_unsigned()) {
    return invalid("an entry lacks its pid or startTime: " + shown(j));
  }
  Victim v;
  v.pid = *pid;
  v.startTime = start->get<uint64_t>();
  CHAOSD_TRY(readString(j, "comm", v.comm));
  if (v.pid <= 0) return invalid("a victim with pid " + shown(j));
  return v;
}

// ---- KillArgs ----------------------------------------------------------------------------

Json KillArgs::toJson() const {
  Json j = {{"signal", signal}};
  if (interval.count() > 0) j["interval"] = interval.count();
  return j;
}

Result<KillArgs> KillArgs::fromJson(const Json& args) {
  KillArgs a;
  if (const Json* signal = member(args, "signal"); signal != nullptr) {
    auto number = intOf(signal);
    if (!number) return invalid("process.kill: 'signal' is not a signal number: " + shown(*signal));
    a.signal = *number;
  }
  int64_t intervalNs = 0;
  auto interval = readNumber(args, "interval", intervalNs);
  if (!interval) return std::move(interval).error().withContext("process.kill");
  a.interval = std::chrono::nanoseconds(intervalNs);
  return a;
}

// ---- ProcessPlan -------------------------------------------------------------------------

Json ProcessPlan::toJson() const {
  Json j = {
      {"version", 1},
      {"faultId", faultId},
      {"faultType", faultType},
      {"selectorText", selectorText},
      {"selector", selectorToJson(selector)},
      {"selection", selectionToJson(selection)},
      {"seed", seed},
      {"seedSource", seedFromExperiment ? "experiment" : "random"},
      {"signal", signal},
      {"durationNs", duration.count()},
      {"intervalNs", interval.count()},
      {"noop", noop},
      {"matched", matched},
      {"eligible", eligible},
      {"refused", refused},
      {"victims", victimsToJson(victims)},
  };
  if (faultType == "process.pause") {
    j["stopped"] = victimsToJson(stopped);
    j["alreadyStopped"] = victimsToJson(alreadyStopped);
  }
  return j;
}

Result<ProcessPlan> ProcessPlan::fromJson(const Json& undo, std::string_view faultId) {
  const Json* id = member(undo, "faultId");
  const Json* type = member(undo, "faultType");
  if (id == nullptr || !id->is_string() || type == nullptr || !type->is_string()) {
    return invalid("process undo record lacks 'faultId' or 'faultType'");
  }
  ProcessPlan p;
  p.faultId = id->get<std::string>();
  if (!faultId.empty() && p.faultId != faultId) {
    return invalid("process undo record belongs to fault " + p.faultId + ", not " +
                   std::string(faultId));
  }
  p.faultType = type->get<std::string>();
  auto fields = readPlanFields(undo, p);
  if (!fields) return std::move(fields).error().withContext("process undo record");
  return p;
}

// ---- ExecUndo ----------------------------------------------------------------------------

Json ExecUndo::toJson() const {
  return {{"pid", pid}, {"startTime", startTime}, {"program", program}, {"graceMs", grace.count()}};
}

Result<ExecUndo> ExecUndo::fromJson(const Json& undo) {
  const Json* start = member(undo, "startTime");
  std::optional<pid_t> pid = intOf(member(undo, "pid"));
  if (!pid || start == nullptr || !start->is_number_unsigned()) {
    return invalid("not an exec undo record: " + shown(undo));
  }
  ExecUndo r;
  r.pid = *pid;
  r.startTime = start->get<uint64_t>();
  if (const Json* program = member(undo, "program"); program != nullptr && program->is_string()) {
    r.program = program->get<std::string>();
  }
  if (const Json* grace = member(undo, "graceMs"); grace != nullptr && grace->is_number_integer()) {
    r.grace = std::chrono::milliseconds(grace->get<int64_t>());
  }
  if (r.pid <= 1) return invalid("exec undo record names pid " + shown(undo));
  return r;
}

// ---- observed ----------------------------------------------------------------------------

Json KillOutcome::toJson() const {
  Json j = victim ? victim->toJson() : Json::object();
  if (round) j["round"] = *round;
  if (atMs) j["atMs"] = *atMs;
  j["outcome"] = outcome;
  if (signalledMs) {
    j["signalledMs"] = *signalledMs;
    j["diedMs"] = diedMs ? Json(*diedMs) : Json(nullptr);
  }
  if (diedAfterSignalMs) j["diedAfterSignalMs"] = *diedAfterSignalMs;
  return j;
}

Json RestartSeen::toJson() const {
  Json j = process.toJson();
  if (!startedAs.empty()) j["startedAs"] = startedAs;
  j["detectedMs"] = detectedMs;
  if (replaces) j["replaces"] = *replaces;
  if (restartMs) j["restartMs"] = *restartMs;
  return j;
}

Json PauseOutcome::toJson() const {
  Json j = victim.toJson();
  j["outcome"] = outcome;
  if (signalledMs) j["signalledMs"] = *signalledMs;
  if (stoppedMs) j["stoppedMs"] = *stoppedMs;
  return j;
}

}  // namespace chaosd
