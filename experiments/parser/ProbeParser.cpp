#include <curl/curl.h>

#include <charconv>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "chaosd/base/HostNames.h"
#include "chaosd/base/Units.h"
#include "experiments/parser/Sections.h"

namespace chaosd::parser {
namespace {

bool isNumber(const std::string& s, double& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// A scalar is equality ("a..b" an inclusive range), a list is set membership, {regex: R} a
// regular expression. A list is never a range: [200, 299] means 200 or 299.
std::optional<ValueMatch> parseMatch(ReadContext& ctx, const Field& f) {
  ValueMatch vm;
  if (f.node.IsSequence()) {
    auto list = asStringList(ctx, f);
    if (!list) return std::nullopt;
    if (list->empty()) {
      ctx.diag.error(f.node.Mark(), f.path, "the set is empty", "a list of accepted values");
      return std::nullopt;
    }
    vm.kind = ValueMatch::Kind::kOneOf;
    vm.values = *list;
    return vm;
  }
  if (f.node.IsMap()) {
    MapReader m(ctx, f, {"regex"});
    auto re = m.string("regex", true);
    if (!re || !checkSearchRegex(ctx, *m.get("regex"), *re)) return std::nullopt;
    vm.kind = ValueMatch::Kind::kRegex;
    vm.regex = *re;
    return vm;
  }
  auto s = asString(ctx, f);
  if (!s) return std::nullopt;
  if (auto dots = s->find(".."); dots != std::string::npos) {
    double lo = 0;
    double hi = 0;
    if (!isNumber(s->substr(0, dots), lo) || !isNumber(s->substr(dots + 2), hi)) {
      ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a range",
                     "LOW..HIGH with numbers, e.g. 200..299");
      return std::nullopt;
    }
    if (lo > hi) {
      ctx.diag.error(f.node.Mark(), f.path, "the range " + quoteText(*s) + " runs backwards",
                     "LOW..HIGH with LOW <= HIGH");
      return std::nullopt;
    }
    vm.kind = ValueMatch::Kind::kRange;
    vm.low = lo;
    vm.high = hi;
    return vm;
  }
  vm.kind = ValueMatch::Kind::kEquals;
  vm.values = {*s};
  return vm;
}

// An http(s) URL as the probe's HTTP client (libcurl) will parse it when the run starts.
void checkHttpUrl(ReadContext& ctx, const Field& f, const std::string& url,
                  const std::string& expected) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(url) + " is not an http(s) URL", expected);
    return;
  }
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u) return;  // out of memory: the run will say so
  CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
  char* host = nullptr;
  if (rc == CURLUE_OK) rc = curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
  const bool noHost = rc == CURLUE_OK && (host == nullptr || *host == '\0');
  curl_free(host);
  if (rc != CURLUE_OK || noHost) {
    ctx.diag.error(f.node.Mark(), f.path,
                   quoteText(url) + " is not a valid URL: " +
                       (noHost ? std::string("it names no host") : curl_url_strerror(rc)),
                   expected);
  }
}

// What is wrong with an RFC 6901 pointer, as the probe will read it (nlohmann's json_pointer,
// the parser the HTTP probe uses), or nothing.
std::optional<std::string> jsonPointerProblem(const std::string& ptr) {
  if (!ptr.empty() && ptr.front() != '/') return "it must start with '/'";
  for (size_t i = 0; i < ptr.size(); ++i) {
    if (ptr[i] == '~' && (i + 1 == ptr.size() || (ptr[i + 1] != '0' && ptr[i + 1] != '1'))) {
      return "a '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')";
    }
  }
  try {
    nlohmann::json::json_pointer checked(ptr);
  } catch (const nlohmann::json::exception& e) {
    return std::string(e.what());  // a rule of the library beyond the two above
  }
  return std::nullopt;
}

// ">= 0.99", "<= 300ms": parseValue turns the right-hand side into a number.
template <typename ParseValue>
std::optional<Comparison> parseComparison(ReadContext& ctx, const Field& f,
                                          const std::string& example, ParseValue parseValue) {
  auto s = asString(ctx, f);
  if (!s) return std::nullopt;
  static const std::regex kCmp(R"(\s*(<=|>=|==|<|>)\s*(\S+)\s*)");
  std::smatch m;
  if (!std::regex_match(*s, m, kCmp)) {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a comparison",
                   "an operator and a value, like \"" + example + "\"");
    return std::nullopt;
  }
  Comparison c;
  const std::string op = m[1].str();
  c.op = op == "<"    ? CompareOp::kLt
         : op == "<=" ? CompareOp::kLe
         : op == ">"  ? CompareOp::kGt
         : op == ">=" ? CompareOp::kGe
                      : CompareOp::kEq;
  auto v = parseValue(m[2].str());
  if (!v) {
    ctx.diag.error(f.node.Mark(), f.path, v.error().message());
    return std::nullopt;
  }
  c.value = *v;
  return c;
}

Result<double> percentValue(const std::string& s) { return units::parsePercent(s); }
Result<double> durationValue(const std::string& s) {
  auto d = units::parseDuration(s);
  if (!d) return std::move(d).error();
  return static_cast<double>(d->count());
}

// Events per second: a plain number, not negative ("20", "12.5").
Result<double> rateValue(const std::string& s) {
  double v = 0;
  if (!isNumber(s, v) || !std::isfinite(v) || v < 0) {
    return Error(ErrorCode::kInvalid,
                 quoteText(s) + " is not a rate: events per second as a number, like 20 or 12.5");
  }
  return v;
}

// `{p95: "<= 300ms"}`: percentiles to comparisons, each handed to add(percentile, comparison).
template <typename ParseValue, typename Add>
void parsePercentileBounds(ReadContext& ctx, const Field& f, const std::string& example,
                           ParseValue parseValue, Add add) {
  if (!f.node.IsMap()) {
    ctx.diag.error(f.node.Mark(), f.path, "expected a mapping of percentiles to bounds",
                   "{p95: \"" + example + "\"}");
    return;
  }
  static const std::regex kPct(R"(p(\d{1,2}(\.\d+)?))");
  for (const auto& kv : f.node) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    Field value{kv.second, joinPath(f.path, key)};
    std::smatch m;
    if (!std::regex_match(key, m, kPct) || std::stod(m[1].str()) <= 0) {
      ctx.diag.error(kv.first.Mark(), value.path, quoteText(key) + " is not a percentile",
                     "p50, p90, p95, p99 or p99.9");
      continue;
    }
    auto c = parseComparison(ctx, value, example, parseValue);
    if (c) add(std::stod(m[1].str()), *c);
  }
}

void parseLatency(ReadContext& ctx, const Field& f, Tolerance& tol) {
  parsePercentileBounds(ctx, f, "<= 300ms", durationValue, [&](double p, const Comparison& c) {
    tol.latency.push_back(LatencyBound{p, c});
  });
}

const std::vector<std::pair<std::string, StreamMetric>> kStreamKeys = {
    {"firstByte", StreamMetric::kFirstByte},
    {"firstEvent", StreamMetric::kFirstEvent},
    {"eventGap", StreamMetric::kEventGap},
    {"eventRate", StreamMetric::kEventRate}};

void parseStreamBounds(ReadContext& ctx, MapReader& m, Tolerance& tol) {
  for (const auto& [key, metric] : kStreamKeys) {
    auto f = m.get(key);
    if (!f) continue;
    const StreamMetric which = metric;  // not the structured binding: clang-14 refuses it
    auto add = [&tol, which](double p, const Comparison& c) {
      tol.stream.push_back(StreamBound{which, p, c});
    };
    if (which == StreamMetric::kEventRate) {
      parsePercentileBounds(ctx, *f, ">= 20", rateValue, add);
    } else {
      parsePercentileBounds(ctx, *f, "<= 300ms", durationValue, add);
    }
  }
}

std::vector<std::string> toleranceKeys(ProbeKind kind) {
  std::vector<std::string> keys;
  switch (kind) {
    case ProbeKind::kHttp:
      keys = {"status", "body", "json", "firstByte", "firstEvent", "eventGap", "eventRate"};
      break;
    case ProbeKind::kCommand:
      keys = {"exitCode", "stdout"};
      break;
    case ProbeKind::kProcess:
      keys = {"count", "running"};
      break;
    case ProbeKind::kPrometheus:
      keys = {"value"};
      break;
    case ProbeKind::kTcp:
      break;
  }
  for (const char* k : {"successRate", "latency", "baseline"}) keys.push_back(k);
  return keys;
}

// Keys that belong to another kind of probe get their own message: "unknown" would mislead.
void rejectOtherKindKeys(ReadContext& ctx, const Field& f, ProbeKind kind) {
  if (!f.node.IsMap()) return;
  auto mine = toleranceKeys(kind);
  for (ProbeKind other : {ProbeKind::kHttp, ProbeKind::kTcp, ProbeKind::kCommand,
                          ProbeKind::kProcess, ProbeKind::kPrometheus}) {
    for (const auto& key : toleranceKeys(other)) {
      if (std::find(mine.begin(), mine.end(), key) != mine.end()) continue;
      YAML::Node v = f.node[key];
      if (!v.IsDefined()) continue;
      std::string kindName(probeKindName(kind));
      std::string article = kindName == "http" ? "an " : "a ";
      for (const auto& kv : f.node) {
        if (kv.first.IsScalar() && kv.first.Scalar() == key) {
          ctx.diag.error(kv.first.Mark(), joinPath(f.path, key),
                         quoteText(key) + " does not apply to " + article + kindName + " probe",
                         "for " + kindName + ": " + listOptions(mine));
        }
      }
    }
  }
}

std::vector<std::string> allToleranceKeys() {
  std::vector<std::string> all;
  for (ProbeKind k : {ProbeKind::kHttp, ProbeKind::kTcp, ProbeKind::kCommand, ProbeKind::kProcess,
                      ProbeKind::kPrometheus}) {
    for (const auto& key : toleranceKeys(k)) {
      if (std::find(all.begin(), all.end(), key) == all.end()) all.push_back(key);
    }
  }
  return all;
}

void parseTolerance(ReadContext& ctx, const Field& f, ProbeSpec& probe) {
  rejectOtherKindKeys(ctx, f, probe.kind);
  MapReader m(ctx, f, allToleranceKeys());
  if (!m.valid()) return;
  Tolerance& tol = probe.tolerance;
  if (auto s = m.get("status")) {
    // "2xx" is the class of statuses 200..299, as people say it.
    static const std::regex kClass("[1-5]xx");
    if (s->node.IsScalar() && std::regex_match(s->node.Scalar(), kClass)) {
      ValueMatch vm;
      vm.kind = ValueMatch::Kind::kRange;
      vm.low = (s->node.Scalar()[0] - '0') * 100;
      vm.high = vm.low + 99;
      tol.status = vm;
    } else {
      tol.status = parseMatch(ctx, *s);
    }
  }
  if (auto b = m.get("body")) {
    if (auto re = asString(ctx, *b); re && checkSearchRegex(ctx, *b, *re)) tol.body = *re;
  }
  if (auto j = m.get("json")) {
    if (!j->node.IsMap()) {
      ctx.diag.error(j->node.Mark(), j->path, "expected a mapping of JSON pointers to values",
                     "json: {\"/status\": ok}");
    } else {
      for (const auto& kv : j->node) {
        if (!kv.first.IsScalar()) {
          ctx.diag.error(kv.first.Mark(), j->path, "a JSON pointer must be a plain string",
                         "a pointer like /status or /items/0/name (RFC 6901)");
          continue;
        }
        std::string ptr = kv.first.Scalar();
        Field value{kv.second, j->path + "[" + ptr + "]"};
        if (auto problem = jsonPointerProblem(ptr)) {
          ctx.diag.error(kv.first.Mark(), value.path,
                         quoteText(ptr) + " is not a JSON pointer: " + *problem,
                         "a pointer like /status or /items/0/name (RFC 6901)");
          continue;
        }
        if (auto vm = parseMatch(ctx, value)) tol.json[ptr] = *vm;
      }
    }
  }
  if (auto e = m.get("exitCode")) tol.exitCode = parseMatch(ctx, *e);
  if (auto o = m.get("stdout")) {
    if (auto re = asString(ctx, *o); re && checkSearchRegex(ctx, *o, *re)) {
      tol.stdoutRegex = *re;
    }
  }
  if (auto c = m.get("count")) tol.count = parseMatch(ctx, *c);
  if (auto r = m.boolean("running")) tol.running = *r;
  if (auto v = m.get("value")) tol.value = parseMatch(ctx, *v);
  if (auto s = m.get("successRate")) {
    // A bare value is a floor: "0.99" and "99%" mean ">= 0.99".
    double floor = 0;
    if (s->node.IsScalar() && s->node.Scalar().find_first_of("<>=") == std::string::npos) {
      if (auto v = asPercent(ctx, *s)) {
        floor = *v;
        tol.successRate = Comparison{CompareOp::kGe, floor};
      }
    } else {
      tol.successRate = parseComparison(ctx, *s, ">= 0.99", percentValue);
    }
  }
  if (auto l = m.get("latency")) parseLatency(ctx, *l, tol);
  parseStreamBounds(ctx, m, tol);
  if (auto b = m.get("baseline")) parseBaselineTolerance(ctx, *b, tol);
}

const std::vector<std::string> kProbeKinds = {"http", "tcp", "command", "process", "prometheus"};

// `http: {url: ..., timeout: 1s}` (DESIGN.md's form) is the same as a probe-level timeout.
void innerTimeout(ReadContext&, MapReader& block, ProbeSpec& p) {
  if (auto t = block.duration("timeout")) p.timeout = *t;
}

void parseProbeKind(ReadContext& ctx, MapReader& m, const std::string& kind, ProbeSpec& p) {
  auto what = m.get(kind);
  if (!what) return;  // no value: reported
  Field f = *what;
  if (kind == "http") {
    p.kind = ProbeKind::kHttp;
    MapReader h(ctx, f, {"url", "method", "headers", "body", "tlsVerify", "timeout"});
    innerTimeout(ctx, h, p);
    parseHttpRequest(ctx, h, p.http);
  } else if (kind == "tcp") {
    p.kind = ProbeKind::kTcp;
    MapReader t(ctx, f, {"host", "port", "timeout"});
    innerTimeout(ctx, t, p);
    p.tcp.host = t.string("host", true).value_or("");
    checkConnectHost(ctx, t, p.tcp.host);
    if (auto port = t.require("port", "a port 1..65535")) {
      if (auto v = asInt(ctx, *port, 1, 65535)) p.tcp.port = static_cast<uint16_t>(*v);
    }
  } else if (kind == "command") {
    p.kind = ProbeKind::kCommand;
    MapReader c(ctx, f, {"argv", "env", "timeout"});
    innerTimeout(ctx, c, p);
    if (auto argv = c.require("argv", "[program, args...]")) {
      if (auto list = asStringList(ctx, *argv)) {
        if (list->empty()) {
          ctx.diag.error(argv->node.Mark(), argv->path, "argv is empty", "[program, args...]");
        }
        p.command.argv = *list;
      }
    }
    if (auto env = c.get("env")) {
      p.command.env = asStringMap(ctx, *env, environmentRules()).value_or(p.command.env);
    }
  } else if (kind == "process") {
    p.kind = ProbeKind::kProcess;
    if (auto sel = parseProcessSelector(ctx, f)) p.process.selector = *sel;
  } else {
    p.kind = ProbeKind::kPrometheus;
    MapReader q(ctx, f, {"url", "query", "timeout"});
    innerTimeout(ctx, q, p);
    if (auto url = q.string("url", true)) {
      checkHttpUrl(ctx, *q.get("url"), *url, "the Prometheus base URL, http://127.0.0.1:9090");
      p.prometheus.url = *url;
    }
    if (auto query = q.string("query", true)) {
      if (query->find_first_not_of(" \t\r\n") == std::string::npos) {
        ctx.diag.error(q.get("query")->node.Mark(), joinPath(f.path, "query"), "the query is blank",
                       "a PromQL expression, like up{job=\"api\"}");
      }
      p.prometheus.query = *query;
    }
  }
}

void parseProbe(ReadContext& ctx, const Field& f, std::set<std::string>& names, SteadyState& ss) {
  std::vector<std::string> keys = {"name", "timeout", "every", "tolerance", "phases", "abort"};
  keys.insert(keys.end(), kProbeKinds.begin(), kProbeKinds.end());
  MapReader m(ctx, f, keys);
  if (!m.valid()) return;
  ProbeSpec p;
  p.pos = posOf(f.node.Mark());
  if (auto nameField = m.require("name", "a name for the probe")) {
    if (auto name = asNonEmptyString(ctx, *nameField)) {
      if (checkName(ctx, *nameField, *name, "probe") && !names.insert(*name).second) {
        ctx.diag.error(nameField->node.Mark(), nameField->path,
                       "duplicate probe name " + quoteText(*name), "unique probe names");
      }
      p.name = *name;
    }
  }
  auto kind = m.exactlyOne(kProbeKinds, "what the probe checks");
  if (kind) parseProbeKind(ctx, m, *kind, p);
  if (auto t = m.duration("timeout")) {
    if (kind && m.get(*kind) && m.get(*kind)->node.IsMap() && m.get(*kind)->node["timeout"]) {
      ctx.diag.error(m.get("timeout")->node.Mark(), joinPath(f.path, "timeout"),
                     "the timeout is also given inside " + *kind, "one timeout");
    }
    p.timeout = *t;
  }
  if (auto e = m.get("every")) {
    if (auto v = asDuration(ctx, *e)) {
      if (*v < std::chrono::milliseconds(10)) {
        ctx.diag.error(e->node.Mark(), e->path, "an interval below 10ms would flood the target",
                       "at least 10ms");
      } else {
        p.every = *v;
      }
    }
  }
  if (auto tol = m.get("tolerance"); tol && kind) parseTolerance(ctx, *tol, p);
  if (auto ph = m.get("phases")) {
    if (auto list = asStringItems(ctx, *ph, true)) {
      p.phases.clear();
      for (const auto& [s, item] : *list) {
        Phase phase;
        if (s == "before") {
          phase = Phase::kBefore;
        } else if (s == "during") {
          phase = Phase::kDuring;
        } else if (s == "after") {
          phase = Phase::kAfter;
        } else {
          auto near = closest(s, {"before", "during", "after"});
          ctx.diag.error(item.node.Mark(), item.path, quoteText(s) + " is not a phase",
                         near ? "did you mean " + quoteText(*near) + "?"
                              : std::string("before, during, after"));
          continue;
        }
        if (std::find(p.phases.begin(), p.phases.end(), phase) != p.phases.end()) {
          ctx.diag.error(item.node.Mark(), item.path, "phase " + quoteText(s) + " is listed twice",
                         "each phase once");
          continue;
        }
        p.phases.push_back(phase);
      }
      if (list->empty()) {
        ctx.diag.error(ph->node.Mark(), ph->path, "no phases", "before, during and/or after");
      }
    }
  }
  if (auto a = m.boolean("abort")) p.abort = *a;
  if (p.tolerance.baseline && p.tolerance.baseline->control.empty() &&
      std::find(p.phases.begin(), p.phases.end(), Phase::kBefore) == p.phases.end()) {
    ctx.diag.error(f.node.Mark(), joinPath(f.path, "tolerance.baseline"),
                   "the statistical mode needs the probe to run in the before phase",
                   "phases including before");
  }
  ss.probes.push_back(std::move(p));
}

}  // namespace

void parseHttpRequest(ReadContext& ctx, MapReader& h, HttpProbe& http) {
  const Field& f = h.self();
  if (auto url = h.string("url", true)) {
    checkHttpUrl(ctx, *h.get("url"), *url, "http://host:port/path");
    http.url = *url;
  }
  if (auto method = h.string("method")) {
    static const std::set<std::string> kMethods = {"GET",   "HEAD",   "POST",   "PUT",
                                                   "PATCH", "DELETE", "OPTIONS"};
    if (!kMethods.contains(*method)) {
      ctx.diag.error(h.get("method")->node.Mark(), joinPath(f.path, "method"),
                     quoteText(*method) + " is not an HTTP method",
                     "GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS");
    }
    http.method = *method;
  }
  if (auto headers = h.get("headers")) {
    http.headers = asStringMap(ctx, *headers, headerRules()).value_or(http.headers);
  }
  if (auto body = h.get("body")) http.body = asString(ctx, *body).value_or("");
  if (auto tls = h.boolean("tlsVerify")) http.tlsVerify = *tls;
}

void parseLoadTolerance(ReadContext& ctx, const Field& f, Tolerance& tol) {
  ProbeSpec asHttp;
  asHttp.kind = ProbeKind::kHttp;
  const std::vector<std::string> allowed = {"status",     "successRate", "latency",  "firstByte",
                                            "firstEvent", "eventGap",    "eventRate"};
  MapReader m(ctx, f, allowed);
  if (!m.valid()) return;
  for (const auto& kv : f.node) {  // reported by m: not read again below
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) return;
  }
  parseTolerance(ctx, f, asHttp);  // the same readers as a probe's
  tol.status = asHttp.tolerance.status;
  tol.successRate = asHttp.tolerance.successRate;
  tol.latency = asHttp.tolerance.latency;
  tol.stream = asHttp.tolerance.stream;
}

// The probe resolves the host at every sample: a string that cannot be a name would fail
// each of them, after the faults were applied.
void checkConnectHost(ReadContext& ctx, MapReader& map, const std::string& host) {
  if (host.empty()) return;  // absent, blank or not a string: reported already
  const std::optional<Field> f = map.get("host");
  if (!f) return;
  if (auto checked = checkHostName(host); !checked) {
    ctx.diag.error(f->node.Mark(), f->path, checked.error().message(),
                   "a host name or address, like 127.0.0.1 or db.internal");
  }
}

StringMapRules headerRules() {
  StringMapRules rules;
  rules.key = [](const std::string& name) -> std::optional<std::pair<std::string, std::string>> {
    // RFC 9110's token: anything else breaks the "Name: value" line the client sends.
    static const std::string kSpecial = "!#$%&'*+-.^_`|~";
    if (name.empty()) {
      return std::make_pair("is not an HTTP header name: it is empty",
                            "letters, digits and !#$%&'*+-.^_`|~, like X-Request-Id");
    }
    for (unsigned char c : name) {
      if (std::isalnum(c) == 0 && kSpecial.find(static_cast<char>(c)) == std::string::npos) {
        return std::make_pair("is not an HTTP header name",
                              "letters, digits and !#$%&'*+-.^_`|~, like X-Request-Id");
      }
    }
    return std::nullopt;
  };
  rules.value = [](const std::string& v) -> std::optional<std::pair<std::string, std::string>> {
    if (v.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      return std::make_pair("is not a header value: it holds a line break or a NUL",
                            "one line of text");
    }
    return std::nullopt;
  };
  return rules;
}

StringMapRules environmentRules() {
  StringMapRules rules;
  rules.key = [](const std::string& name) -> std::optional<std::pair<std::string, std::string>> {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      return std::make_pair("is not an environment variable name",
                            "a name without '=', like API_TOKEN");
    }
    return std::nullopt;
  };
  rules.value = [](const std::string& v) -> std::optional<std::pair<std::string, std::string>> {
    if (v.find('\0') != std::string::npos) {
      return std::make_pair("cannot be an environment value: it holds a NUL", "text without NUL");
    }
    return std::nullopt;
  };
  return rules;
}

void parseSteadyState(ReadContext& ctx, const Field& f, Experiment& exp) {
  MapReader m(ctx, f, {"baseline", "recovery", "probes"});
  if (!m.valid()) return;
  SteadyState& ss = exp.steadyState;
  for (const char* window : {"baseline", "recovery"}) {
    auto w = m.get(window);
    if (!w) continue;
    MapReader wm(ctx, *w, {"duration"});
    if (auto d = wm.duration("duration", true)) {
      (std::string(window) == "baseline" ? ss.baseline : ss.recovery) = *d;
    }
  }
  if (auto probes = m.require("probes", "a list of probes")) {
    if (auto items = asSequence(ctx, *probes)) {
      std::set<std::string> names;
      for (const auto& item : *items) parseProbe(ctx, item, names, ss);
      checkBaselineControls(ctx, *items, ss.probes);
    }
  }
}

}  // namespace chaosd::parser
