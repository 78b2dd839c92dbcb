#include "reports/ReportFields.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "chaosd/engine/probes/Verdict.h"

namespace chaosd::report {

std::string text(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

double number(const Json& j, const char* key, double fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<double>();
}

bool flag(const Json& j, const char* key, bool fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

std::optional<int64_t> nanos(const Json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->is_number_float() ? static_cast<int64_t>(std::llround(it->get<double>()))
                               : it->get<int64_t>();
}

const Json& list(const Json& j, const char* key) {
  static const Json kEmpty = Json::array();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return kEmpty;
  return *it;
}

std::string experimentName(const Json& report) {
  if (!report.is_object() || !report.contains("experiment")) return "experiment";
  const Json& e = report["experiment"];
  if (e.is_object() && e.contains("metadata")) {
    std::string name = text(e["metadata"], "name");
    if (!name.empty()) return name;
  }
  return "experiment";
}

std::optional<int64_t> parseIsoTime(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
      6) {
    return std::nullopt;
  }
  int64_t fraction = 0;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < iso.size() && iso[pos] == '.') {
    int64_t scale = 100'000'000;
    for (++pos; pos < iso.size() && iso[pos] >= '0' && iso[pos] <= '9'; ++pos) {
      fraction += (iso[pos] - '0') * scale;
      scale /= 10;
    }
  }
  if (pos >= iso.size() || iso[pos] != 'Z') return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  // Years up to 9999 fit the format; nanoseconds since 1970 only to 2262 (a hostile report's
  // date beyond that is not a time, not an overflow).
  int64_t ns = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(::timegm(&tm)), int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, fraction, &ns)) {
    return std::nullopt;
  }
  return ns;
}

std::optional<int64_t> wallOffset(const Json& report, const Json& j, const char* key) {
  auto start = parseIsoTime(text(report, "startedAt"));
  auto t = parseIsoTime(text(j, key));
  int64_t offset = 0;
  if (!start || !t || __builtin_sub_overflow(*t, *start, &offset)) return std::nullopt;
  return offset;
}

std::string duration(std::optional<int64_t> ns) {
  return ns ? formatLatency(Duration(*ns)) : std::string("-");
}

std::string streamWords(const Json& verdict) {
  auto it = verdict.find("stream");
  if (it == verdict.end() || !it->is_object()) return "";
  const Json& s = *it;
  auto ns = [&](const char* metric, const char* p) -> std::optional<int64_t> {
    auto m = s.find(metric);
    if (m == s.end() || !m->is_object() || number(*m, "count") == 0) return std::nullopt;
    return static_cast<int64_t>(number(*m, p));
  };
  std::string words = significant(number(s, "streamed")) + " of " +
                      significant(number(verdict, "count")) + " samples streamed";
  if (auto p50 = ns("firstEventNs", "p50")) {
    words += "; first event p50 " + duration(p50) + ", p95 " + duration(ns("firstEventNs", "p95"));
  }
  if (auto p50 = ns("eventGapNs", "p50")) {
    words +=
        "; gap between events p50 " + duration(p50) + ", p99 " + duration(ns("eventGapNs", "p99"));
  }
  if (auto r = s.find("eventRate"); r != s.end() && r->is_object() && number(*r, "count") > 0) {
    words += "; " + significant(number(*r, "p50")) + " events/s (median), " +
             significant(number(*r, "p5")) + " (p5)";
  }
  for (const auto& c : list(s, "checks")) {
    words += "; p" + significant(number(c, "percentile")) + " " + text(c, "metric") + " " +
             text(c, "observedText") + " (required " + text(c, "bound") + ": " +
             (flag(c, "held") ? "held" : "failed") + ")";
  }
  return words;
}

std::vector<std::vector<std::string>> loadTable(const Json& report) {
  auto it = report.find("load");
  if (it == report.end() || !it->is_object()) return {};
  std::vector<std::vector<std::string>> rows = {{"phase", "offered λ/s", "sent/s", "ok/s", "errors",
                                                 "p50", "p99", "p99.9", "max", "L (in flight)",
                                                 "λ·W", "L/(λ·W)", "verdict"}};
  bool utilisation = false;  // a column of ρ = λ/μ when the capacity ramp measured μ
  for (const auto& p : list(*it, "phases")) utilisation = utilisation || p.contains("utilisation");
  if (utilisation) rows[0].insert(rows[0].end() - 1, "ρ = λ/μ");
  bool streamed = false;  // TTFT and TPOT columns when answers were streamed
  for (const auto& p : list(*it, "phases")) streamed = streamed || p.contains("stream");
  if (streamed) {
    rows[0].insert(rows[0].end() - 1, {"first event p50", "first event p99", "event gap p99"});
  }
  for (const auto& p : list(*it, "phases")) {
    std::string verdict = !flag(p, "judged") ? "-" : flag(p, "held") ? "held" : "failed";
    for (const auto& r : list(p, "reasons")) {
      if (r.is_string()) verdict += ": " + r.get<std::string>();
    }
    rows.push_back({text(p, "phase"), significant(number(p, "offeredRate")),
                    significant(number(p, "sentRate")), significant(number(p, "throughput")),
                    significant(number(p, "errors")) + " of " + significant(number(p, "due")),
                    duration(nanos(p, "p50Ns")), duration(nanos(p, "p99Ns")),
                    duration(nanos(p, "p999Ns")), duration(nanos(p, "maxNs")),
                    significant(number(p, "inFlight")), significant(number(p, "littleLambdaW")),
                    significant(number(p, "littleRatio")), verdict});
    if (utilisation) {
      rows.back().insert(rows.back().end() - 1,
                         p.contains("utilisation") ? significant(number(p, "utilisation")) : "-");
    }
    if (streamed) {
      auto s = p.is_object() ? p.find("stream") : p.end();
      const bool has = s != p.end() && s->is_object();
      rows.back().insert(rows.back().end() - 1, {has ? duration(nanos(*s, "firstEventP50Ns")) : "-",
                                                 has ? duration(nanos(*s, "firstEventP99Ns")) : "-",
                                                 has ? duration(nanos(*s, "eventGapP99Ns")) : "-"});
    }
  }
  return rows;
}

std::vector<std::vector<std::string>> capacityTable(const Json& report) {
  auto it = report.find("load");
  if (it == report.end() || !it->is_object()) return {};
  auto c = it->find("capacity");
  if (c == it->end() || !c->is_object()) return {};
  std::vector<std::vector<std::string>> rows = {
      {"step λ/s", "sent/s", "ok/s", "p50", "p99", "L (in flight)", "errors", "verdict"}};
  for (const auto& s : list(*c, "steps")) {
    std::string verdict = flag(s, "held") ? "held" : "broke";
    for (const auto& r : list(s, "reasons")) {
      if (r.is_string()) verdict += ": " + r.get<std::string>();
    }
    const double errors = number(s, "due") - number(s, "ok");
    rows.push_back({significant(number(s, "rate")), significant(number(s, "sentRate")),
                    significant(number(s, "throughput")), duration(nanos(s, "p50Ns")),
                    duration(nanos(s, "p99Ns")), significant(number(s, "inFlight")),
                    significant(errors) + " of " + significant(number(s, "due")), verdict});
  }
  return rows;
}

std::string capacityHeadline(const Json& report) {
  auto it = report.find("load");
  if (it == report.end() || !it->is_object()) return "";
  auto c = it->find("capacity");
  if (c == it->end() || !c->is_object()) return "";
  const bool broke = c->contains("brokeAt") && (*c)["brokeAt"].is_number();
  const std::string every = duration(nanos(*c, "everyNs"));
  std::string out = "Capacity ramp before the baseline: the load from " +
                    significant(number(*c, "from")) + "/s by " + significant(number(*c, "step")) +
                    "/s up to " + significant(number(*c, "max")) + "/s, " + every +
                    " a step, until a step broke the load's tolerance. ";
  if (flag(*c, "stopped")) return out + "The run was stopped during the ramp";
  if (!c->contains("capacity") || !(*c)["capacity"].is_number()) {
    return out + "The first step already broke: the capacity μ is below " +
           significant(number(*c, "from")) + "/s";
  }
  out += "μ ≈ " + significant(number(*c, "capacity")) +
         "/s (the throughput of the last step that held";
  out += broke ? "; the first to break was " + significant(number(*c, "brokeAt")) + "/s)"
               : "; no step broke: μ is at least this)";
  return out + "; each phase's ρ = λ/μ is in the load's table";
}

std::string loadHeadline(const Json& report) {
  auto it = report.find("load");
  if (it == report.end() || !it->is_object()) return "";
  const Json& l = *it;
  std::string rate = l.contains("rate") ? significant(number(l, "rate")) + "/s" : "steps";
  if (l.contains("steps") && l["steps"].is_array()) {
    rate.clear();
    for (const auto& st : l["steps"]) {
      rate += (rate.empty() ? "" : ", ") + significant(number(st, "rate")) + "/s for " +
              duration(nanos(st, "durationNs"));
    }
  }
  const std::string name = text(l, "name") == "load" ? "" : " " + text(l, "name");
  return "load" + name + ": " + text(l, "method") + " " + text(l, "url") + " at " + rate + " (" +
         significant(number(l, "requests")) + " requests; the generator's own lateness p99 " +
         duration(nanos(l, "lateness99Ns")) +
         "). Latency from each request's intended send time; L measured as the time-average of "
         "requests in flight, beside λ·W (Little's law)";
}

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(std::max<int64_t>(ns, 0)) / 1e9);
  return buf;
}

std::string significant(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", value);
  return buf;
}

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", fraction * 100);
  std::string s = buf;
  if (s.size() > 2 && s.substr(s.size() - 2) == ".0") s.resize(s.size() - 2);
  return s + "%";
}

const Json* verdictOf(const Json& probe, const std::string& phase) {
  for (const auto& v : list(probe, "verdicts")) {
    if (text(v, "phase") == phase) return &v;
  }
  return nullptr;
}

const Json* phaseOf(const Json& report, const std::string& phase) {
  for (const auto& p : list(report, "phases")) {
    if (text(p, "phase") == phase) return &p;
  }
  return nullptr;
}

}  // namespace chaosd::report
