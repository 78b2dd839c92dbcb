#include "injectors/time/TimeRecords.h"

#include <cmath>
#include <cstdio>
#include <regex>

#include "chaosd/base/Units.h"
#include "injectors/RecordFields.h"

namespace chaosd {
namespace {

constexpr std::chrono::nanoseconds kMaxOffset = std::chrono::hours(24 * 3650);

}  // namespace

Result<std::chrono::nanoseconds> parseClockOffset(std::string_view text) {
  bool back = false;
  std::string_view rest = text;
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    back = rest.front() == '-';
    rest.remove_prefix(1);
  }
  auto d = units::parseDuration(rest);
  if (!d || *d > kMaxOffset) {
    return Error(ErrorCode::kInvalid,
                 "'" + std::string(text) +
                     "' is not a clock offset (expected a signed duration of at most 3650d: "
                     "-2h, +30s, +1m30s, -250ms)");
  }
  return back ? -*d : *d;
}

std::string formatClockOffset(std::chrono::nanoseconds offset) {
  const bool back = offset.count() < 0;
  return (back ? "-" : "+") + units::formatDuration(back ? -offset : offset);
}

Result<TimeSkewArgs> TimeSkewArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "time.skew args");
  std::string offset;
  TimeSkewArgs a;
  fields.required("offset", offset);
  CHAOSD_TRY(fields.done());
  auto parsed = parseClockOffset(offset);
  if (!parsed) return std::move(parsed).error();
  a.offset = *parsed;
  return a;
}

Result<std::string> timeRecordMode(const nlohmann::json& undo) {
  RecordFields fields(undo, "time.skew undo record");
  std::string mode;
  fields.required("mode", mode);
  if (fields.ok() && mode != "exec" && mode != "host") fields.fail("unknown mode '" + mode + "'");
  CHAOSD_TRY(fields.done());
  return mode;
}

Result<FakeTimeUndo> FakeTimeUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "time.skew undo record");
  FakeTimeUndo u;
  std::string mode;
  fields.required("mode", mode)
      .required("faultId", u.faultId)
      .required("pid", u.pid)
      .required("startTime", u.startTime)
      .required("controlFile", u.controlFile)
      .required("offsetNs", u.offset)
      .optional("execRealtimeNs", u.execRealtimeNs);
  if (fields.ok() && mode != "exec") fields.fail("mode '" + mode + "' is not exec");
  if (fields.ok() && u.pid <= 0) fields.fail("pid " + std::to_string(u.pid) + " names no process");
  if (fields.ok() && !isFakeTimeControlFile(u.controlFile)) {
    fields.fail("'" + u.controlFile + "' is not a control file chaosd makes");
  }
  CHAOSD_TRY(fields.done());
  return u;
}

nlohmann::json FakeTimeUndo::toJson() const {
  nlohmann::json j{{"mode", "exec"},
                   {"faultId", faultId},
                   {"pid", pid},
                   {"startTime", startTime},
                   {"controlFile", controlFile},
                   {"offsetNs", offset.count()},
                   {"execRealtimeNs", execRealtimeNs}};
  return j;
}

namespace {

Result<std::vector<Victim>> victimsOf(const nlohmann::json& undo, const char* key) {
  std::vector<Victim> out;
  if (!undo.is_object() || !undo.contains(key)) return out;
  const nlohmann::json& list = undo.at(key);
  if (!list.is_array()) {
    return Error(ErrorCode::kInvalid,
                 std::string("time.skew undo record: '") + key + "' is not a list");
  }
  for (const auto& entry : list) {
    auto v = Victim::fromJson(entry);
    if (!v)
      return std::move(v).error().withContext(std::string("time.skew undo record '") + key + "'");
    out.push_back(std::move(*v));
  }
  return out;
}

nlohmann::json victimsJson(const std::vector<Victim>& victims) {
  nlohmann::json out = nlohmann::json::array();
  for (const Victim& v : victims) out.push_back(v.toJson());
  return out;
}

}  // namespace

Result<HostClockUndo> HostClockUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "time.skew undo record");
  HostClockUndo u;
  std::string mode;
  fields.required("mode", mode)
      .required("faultId", u.faultId)
      .required("offsetNs", u.offset)
      .required("realtimeNs", u.before.realtimeNs)
      .required("monotonicNs", u.before.monotonicNs)
      .required("bootId", u.bootId);
  if (fields.ok() && mode != "host") fields.fail("mode '" + mode + "' is not host");
  if (fields.ok() && (u.before.realtimeNs <= 0 || u.before.monotonicNs < 0)) {
    fields.fail("the recorded clocks (realtime " + std::to_string(u.before.realtimeNs) +
                ", monotonic " + std::to_string(u.before.monotonicNs) + ") are not readings");
  }
  CHAOSD_TRY(fields.done());
  auto paused = victimsOf(undo, "ntpPaused");
  if (!paused) return std::move(paused).error();
  auto already = victimsOf(undo, "ntpAlreadyStopped");
  if (!already) return std::move(already).error();
  u.ntpPaused = std::move(*paused);
  u.ntpAlreadyStopped = std::move(*already);
  return u;
}

nlohmann::json HostClockUndo::toJson() const {
  return {{"mode", "host"},
          {"faultId", faultId},
          {"offsetNs", offset.count()},
          {"realtimeNs", before.realtimeNs},
          {"monotonicNs", before.monotonicNs},
          {"bootId", bootId},
          {"ntpPaused", victimsJson(ntpPaused)},
          {"ntpAlreadyStopped", victimsJson(ntpAlreadyStopped)}};
}

std::string fakeTimeSpec(std::chrono::nanoseconds offset) {
  // Microseconds: libfaketime parses a double; no "-0.000000".
  const long long us = std::llround(static_cast<double>(offset.count()) / 1e3);
  const unsigned long long mag = static_cast<unsigned long long>(us < 0 ? -us : us);
  char buf[64];
  if (mag % 1000000 == 0) {
    std::snprintf(buf, sizeof buf, "%c%llu", us < 0 ? '-' : '+', mag / 1000000);
  } else {
    std::snprintf(buf, sizeof buf, "%c%llu.%06llu", us < 0 ? '-' : '+', mag / 1000000,
                  mag % 1000000);
  }
  std::string out = buf;
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
  }
  return out;
}

bool looksLikeFakeTimeSpec(std::string_view text) {
  static const std::regex spec(R"([+-][0-9]+(\.[0-9]+)?( x[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?)?\n?)");
  return std::regex_match(text.begin(), text.end(), spec);
}

bool isFakeTimeControlFile(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || path.front() != '/') return false;
  std::string_view name = path.substr(slash + 1);
  static const std::regex pattern(R"(chaosd-faketime-[A-Za-z0-9]{6}\.rc)");
  return std::regex_match(name.begin(), name.end(), pattern);
}

}  // namespace chaosd
