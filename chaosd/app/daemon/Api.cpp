#include "chaosd/app/daemon/Api.h"

#include <fstream>
#include <iterator>
#include <random>
#include <regex>

#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/Recovery.h"
#include "experiments/parser/ExperimentParser.h"
#include "reports/ReportJson.h"

namespace chaosd::daemon {
namespace {

using json = nlohmann::json;

HttpResponse jsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(2) + "\n";
  return r;
}

const char* codeName(int status) {
  switch (status) {
    case 400:
      return "invalid";
    case 403:
      return "forbidden";
    case 404:
      return "not-found";
    case 405:
      return "method-not-allowed";
    case 409:
      return "conflict";
    case 413:
      return "too-large";
    case 415:
      return "unsupported-media-type";
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}

HttpResponse errorResponse(int status, const std::string& message,
                           const std::vector<std::string>& diagnostics = {}) {
  json e = {{"status", status}, {"code", codeName(status)}, {"message", message}};
  if (!diagnostics.empty()) e["diagnostics"] = diagnostics;
  return jsonResponse(status, {{"error", e}});
}

int statusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPermission:
      return 403;
    case ErrorCode::kAborted:
      return 503;
    default:
      return 500;
  }
}

HttpResponse errorResponse(const Error& e) {
  return errorResponse(statusOf(e.code()), e.describe());
}

HttpResponse methodNotAllowed(const std::string& allow) {
  auto r = errorResponse(405, "method not allowed; use " + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool validId(const std::string& id) {
  static const std::regex kId("[A-Za-z0-9_-]{1,64}");
  return std::regex_match(id, kId);
}

std::string newId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// An experiment as posted: a YAML body with ?var=NAME=VALUE, or JSON
// {"experiment": "<yaml>", "vars": {...}, ...}.
struct Submission {
  std::string yaml;
  std::map<std::string, std::string> vars;
  json extra = json::object();  // the JSON body's other fields
};

Result<Submission> readSubmission(const HttpRequest& req) {
  Submission s;
  std::string type = req.header("content-type");
  if (type.rfind("application/json", 0) == 0) {
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return Error(ErrorCode::kInvalid, "the body is not a JSON object");
    if (!body.contains("experiment") || !body["experiment"].is_string()) {
      return Error(ErrorCode::kInvalid,
                   "\"experiment\" (the experiment's YAML, a string) is missing");
    }
    s.yaml = body["experiment"].get<std::string>();
    if (body.contains("vars")) {
      if (!body["vars"].is_object()) return Error(ErrorCode::kInvalid, "\"vars\" is not an object");
      for (const auto& [k, v] : body["vars"].items()) {
        s.vars[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    body.erase("experiment");
    body.erase("vars");
    s.extra = std::move(body);
  } else {
    s.yaml = req.body;
  }
  for (const auto& [k, v] : req.query) {
    if (k != "var") continue;
    auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(ErrorCode::kInvalid, "var '" + v + "' is not NAME=VALUE");
    }
    s.vars[v.substr(0, eq)] = v.substr(eq + 1);
  }
  if (s.yaml.empty()) return Error(ErrorCode::kInvalid, "the request has no experiment");
  return s;
}

json runJson(const RunRecord& r) {
  json j = {{"id", r.runId},
            {"experiment", r.experiment},
            {"ownerPid", r.ownerPid},
            {"startedAt", isoTime(r.startedAt)},
            {"endedAt", r.endedAt ? json(isoTime(*r.endedAt)) : json(nullptr)},
            {"state", r.endedAt ? "ended" : "running"},
            {"outcome", r.outcome.empty() ? json(nullptr) : json(r.outcome)}};
  int code = exitCodeOfOutcome(r.outcome);
  j["exitCode"] = code < 0 ? json(nullptr) : json(code);
  return j;
}

json faultJson(const FaultRecord& f) {
  return {{"id", f.faultId},
          {"run", f.runId},
          {"step", f.step},
          {"type", f.faultType},
          {"target", f.target},
          {"state", std::string(faultStateName(f.state))},
          {"since", isoTime(f.appliedAt.value_or(f.intentAt))},
          {"deadline", f.deadline ? json(isoTime(*f.deadline)) : json(nullptr)},
          {"revertedBy", f.revertedBy},
          {"error", f.error}};
}

json scheduleJson(const ScheduleView& v) {
  const auto& r = v.record;
  json j = {
      {"id", r.id},
      {"name", r.name},
      {"cron", r.cron},
      {"timezone", r.timezone.empty() ? "UTC" : r.timezone},
      {"window", r.windowStart.empty() ? json(nullptr) : json(r.windowStart + "-" + r.windowEnd)},
      {"maxRuns", r.maxRuns ? json(*r.maxRuns) : json(nullptr)},
      {"runsStarted", r.runsStarted},
      {"paused", r.paused},
      {"exhausted", v.exhausted},
      {"createdAt", isoTime(r.createdAt)},
      {"lastFireAt", r.lastFireAt ? json(isoTime(*r.lastFireAt)) : json(nullptr)},
      {"lastRunId", r.lastRunId.empty() ? json(nullptr) : json(r.lastRunId)},
      {"nextRunAt", v.nextRun ? json(isoTime(*v.nextRun)) : json(nullptr)},
      {"vars", r.vars}};
  return j;
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

int exitCodeOfOutcome(const std::string& outcome) {
  if (outcome.empty()) return -1;
  auto o = outcomeOfRunEnd(outcome);
  return o ? exitCodeOf(*o) : exitCodeOf(Outcome::kError);
}

HttpResponse Api::handle(const HttpRequest& req) {
  if (!req.peer || !allowed(ctx_.access, *req.peer)) {
    log::get("api")->warn(
        "caller refused pid={} uid={} gid={} method={} path={} needs=\"root or "
        "group {}{}\"",
        req.peer ? req.peer->pid : 0, req.peer ? req.peer->uid : 0, req.peer ? req.peer->gid : 0,
        req.method, req.path, ctx_.access.groupName, ctx_.access.group ? "" : " (absent)");
    return errorResponse(403, "only root or members of the group '" + ctx_.access.groupName +
                                  "' may use chaosd" +
                                  (ctx_.access.group ? "" : " (the group does not exist)"));
  }
  auto response = route(req);
  log::get("api")->debug("request method={} path={} status={} uid={}", req.method, req.path,
                         response.status, req.peer->uid);
  return response;
}

HttpResponse Api::handleMetricsOnly(const HttpRequest& req) {
  if (req.path != "/metrics") return errorResponse(404, "only /metrics is served here");
  if (req.method != "GET" && req.method != "HEAD") return methodNotAllowed("GET");
  HttpResponse r;
  r.contentType = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metricsText();
  return r;
}

std::string Api::metricsText() const {
  ScrapeState s;
  if (auto held = ctx_.journal->faultsHeld()) {
    for (const auto& f : *held) ++s.faultsActiveByType[f.faultType];
  }
  for (const auto& v : ctx_.scheduler->list()) {
    s.schedules.push_back({v.record.id, v.record.name, v.record.paused, v.nextRun});
  }
  s.runsActive = ctx_.runs->active();
  return ctx_.metrics->render(s);
}

HttpResponse Api::route(const HttpRequest& req) {
  const auto parts = splitPath(req.path);
  const std::string& m = req.method;
  if (parts.size() == 1 && parts[0] == "metrics") return handleMetricsOnly(req);
  if (parts.empty() || parts[0] != "v1") {
    return errorResponse(404, "no such endpoint: " + req.path + " (the API is under /v1/)");
  }
  const size_t n = parts.size();
  auto is = [&](std::initializer_list<const char*> want) {
    if (want.size() != n - 1) return false;
    size_t i = 1;
    for (const char* w : want) {
      if (std::string(w) != "*" && parts[i] != w) return false;
      ++i;
    }
    return true;
  };
  if (n >= 3 && (parts[1] == "runs" || parts[1] == "schedules") && !validId(parts[2])) {
    return errorResponse(404, "no such " + std::string(parts[1] == "runs" ? "run" : "schedule") +
                                  ": '" + parts[2] + "'");
  }
  if (is({"health"})) return m == "GET" ? health() : methodNotAllowed("GET");
  if (is({"version"})) return m == "GET" ? version() : methodNotAllowed("GET");
  if (is({"metrics"})) return handleMetricsOnly(HttpRequest{m, "/metrics", {}, {}, {}, {}});
  if (is({"runs"})) {
    if (m == "GET") return listRuns(req);
    if (m == "POST") return submit(req);
    return methodNotAllowed("GET, POST");
  }
  if (is({"runs", "*"})) return m == "GET" ? runStatus(parts[2]) : methodNotAllowed("GET");
  if (is({"runs", "*", "abort"})) {
    return m == "POST" ? abortRun(parts[2], req) : methodNotAllowed("POST");
  }
  if (is({"runs", "*", "report"}))
    return m == "GET" ? report(parts[2], req) : methodNotAllowed("GET");
  if (is({"faults"})) return m == "GET" ? faults() : methodNotAllowed("GET");
  if (is({"recover"})) return m == "POST" ? recover(req) : methodNotAllowed("POST");
  if (is({"schedules"})) {
    if (m == "GET") return listSchedules();
    if (m == "POST") return createSchedule(req);
    return methodNotAllowed("GET, POST");
  }
  if (is({"schedules", "*"})) {
    if (m == "GET") return schedule(parts[2]);
    if (m == "DELETE") return deleteSchedule(parts[2]);
    return methodNotAllowed("GET, DELETE");
  }
  if (is({"schedules", "*", "pause"})) {
    return m == "POST" ? pauseSchedule(parts[2], true) : methodNotAllowed("POST");
  }
  if (is({"schedules", "*", "resume"})) {
    return m == "POST" ? pauseSchedule(parts[2], false) : methodNotAllowed("POST");
  }
  return errorResponse(404, "no such endpoint: " + req.path);
}

HttpResponse Api::health() const {
  auto version = ctx_.journal->schemaVersion();
  bool ok = version.ok();
  json j = {
      {"status", ok ? "ok" : "degraded"},
      {"runsActive", ctx_.runs->active()},
      {"schedules", ctx_.scheduler->list().size()},
      {"uptimeSeconds",
       std::chrono::duration<double>(std::chrono::system_clock::now() - ctx_.startedAt).count()},
      {"journal", ok ? json("ok") : json(version.error().describe())}};
  return jsonResponse(ok ? 200 : 503, j);
}

HttpResponse Api::version() const {
  auto schema = ctx_.journal->schemaVersion();
  return jsonResponse(200, {{"version", CHAOSD_VERSION},
                            {"api", "v1"},
                            {"journalSchema", schema ? json(*schema) : json(nullptr)}});
}

HttpResponse Api::listRuns(const HttpRequest& req) const {
  size_t limit = 100;
  if (auto l = req.param("limit")) {
    try {
      long v = std::stol(*l);
      if (v < 0 || v > 100000) throw std::out_of_range("limit");
      limit = static_cast<size_t>(v);
    } catch (const std::exception&) {
      return errorResponse(400, "limit '" + *l + "' is not a number 0..100000 (0: all)");
    }
  }
  auto runs = ctx_.journal->runs(limit);
  if (!runs) return errorResponse(runs.error());
  json out = json::array();
  for (const auto& r : *runs) out.push_back(runJson(r));
  return jsonResponse(200, {{"runs", out}});
}

HttpResponse Api::submit(const HttpRequest& req) {
  auto s = readSubmission(req);
  if (!s) return errorResponse(s.error());
  SubmitRequest sr;
  sr.yaml = std::move(s->yaml);
  sr.vars = std::move(s->vars);
  sr.invokerPid = req.peer ? req.peer->pid : 0;
  if (s->extra.contains("fileName") && s->extra["fileName"].is_string()) {
    sr.fileName = s->extra["fileName"].get<std::string>();
  }
  auto result = ctx_.runs->submit(sr);
  if (auto* refused = std::get_if<SubmitRefusal>(&result)) {
    return errorResponse(statusOf(refused->error.code()), refused->error.describe(),
                         refused->diagnostics);
  }
  const auto& ok = std::get<Submitted>(result);
  auto r = jsonResponse(202, {{"id", ok.runId},
                              {"experiment", ok.experiment},
                              {"state", "running"},
                              {"status", "/v1/runs/" + ok.runId}});
  r.headers.emplace_back("Location", "/v1/runs/" + ok.runId);
  return r;
}

HttpResponse Api::runStatus(const std::string& id) const {
  auto run = ctx_.journal->run(id);
  if (!run) return errorResponse(run.error());
  json j = runJson(*run);
  if (auto live = ctx_.runs->progress(id)) j["progress"] = *live;
  if (auto faults = ctx_.journal->faultsOfRun(id)) {
    json fs = json::array();
    for (const auto& f : *faults) fs.push_back(faultJson(f));
    j["faults"] = fs;
  }
  const std::string dir = ctx_.runs->runDir(id);
  if (run->endedAt) {
    if (auto text = readFile(dir + "/report.json")) {
      json report = json::parse(*text, nullptr, false);
      if (report.is_object()) {
        j["reasons"] = report.value("reasons", json::array());
        j["reportDir"] = dir;
      }
    }
  }
  return jsonResponse(200, j);
}

HttpResponse Api::abortRun(const std::string& id, const HttpRequest& req) {
  auto run = ctx_.journal->run(id);
  if (!run) return errorResponse(run.error());
  std::string reason = "aborted through the API";
  if (req.peer) reason += " by uid " + std::to_string(req.peer->uid);
  auto r = ctx_.runs->abort(id, reason);
  if (!r) {
    return errorResponse(409, "run " + id + " is not running here" +
                                  (run->endedAt ? " (it ended: " + run->outcome + ")" : ""));
  }
  return jsonResponse(202, {{"id", id}, {"state", "aborting"}, {"reason", reason}});
}

HttpResponse Api::report(const std::string& id, const HttpRequest& req) const {
  std::string format = req.param("format").value_or("json");
  static const std::map<std::string, std::pair<const char*, const char*>> kFiles = {
      {"json", {"report.json", "application/json"}},
      {"junit", {"junit.xml", "application/xml"}},
      {"html", {"report.html", "text/html; charset=utf-8"}},
      {"md", {"summary.md", "text/markdown; charset=utf-8"}},
      {"markdown", {"summary.md", "text/markdown; charset=utf-8"}}};
  auto f = kFiles.find(format);
  if (f == kFiles.end()) {
    return errorResponse(400, "format '" + format + "' is not json, junit, html or md");
  }
  auto run = ctx_.journal->run(id);
  if (!run) return errorResponse(run.error());
  auto text = readFile(ctx_.runs->runDir(id) + "/" + f->second.first);
  if (!text) {
    if (!run->endedAt) return errorResponse(409, "run " + id + " is still running; no report yet");
    return errorResponse(404, "run " + id + " has no " + f->second.first +
                                  " (it did not run here, or its folder was removed)");
  }
  HttpResponse r;
  r.contentType = f->second.second;
  r.body = std::move(*text);
  return r;
}

HttpResponse Api::faults() const {
  auto held = ctx_.journal->unreverted();
  if (!held) return errorResponse(held.error());
  json out = json::array();
  for (const auto& f : *held) {
    json j = faultJson(f);
    if (auto run = ctx_.journal->run(f.runId)) {
      j["ownerPid"] = run->ownerPid;
      j["ownerAlive"] = ownerAlive(run->ownerPid, run->ownerStartTime);
    }
    out.push_back(j);
  }
  return jsonResponse(200, {{"faults", out}});
}

HttpResponse Api::recover(const HttpRequest& req) {
  RecoveryFilter filter;
  filter.runId = req.param("run").value_or("");
  filter.by = "recovery";
  // Never forced: the daemon's own runs (their owner is alive) keep their faults.
  auto report = recoverAll(*ctx_.journal, *ctx_.registry, filter);
  if (!report) return errorResponse(report.error());
  json outcomes = json::array();
  for (const auto& o : report->outcomes) {
    if (!o.reverted) ctx_.metrics->revertFailed();
    outcomes.push_back({{"fault", o.fault.faultId},
                        {"type", o.fault.faultType},
                        {"run", o.fault.runId},
                        {"reverted", o.reverted},
                        {"error", o.error}});
  }
  json left = json::array();
  for (const auto& f : report->ownerAlive) left.push_back(faultJson(f));
  return jsonResponse(report->clean() ? 200 : 500, {{"reverted", report->reverted()},
                                                    {"failed", report->failed()},
                                                    {"outcomes", outcomes},
                                                    {"ownerAlive", left},
                                                    {"runsEnded", report->runsEnded}});
}

HttpResponse Api::listSchedules() const {
  json out = json::array();
  for (const auto& v : ctx_.scheduler->list()) out.push_back(scheduleJson(v));
  return jsonResponse(200, {{"schedules", out}});
}

HttpResponse Api::createSchedule(const HttpRequest& req) {
  auto s = readSubmission(req);
  if (!s) return errorResponse(s.error());
  ParseOptions options;
  options.vars = s->vars;
  options.registry = ctx_.registry;
  ParseResult parsed = parseExperimentText(s->yaml, "schedule.yaml", options);
  if (!parsed.ok()) {
    std::vector<std::string> diags;
    for (const auto& d : parsed.diagnostics) diags.push_back(d.str());
    return errorResponse(400, "the experiment is not valid", diags);
  }
  const Experiment& exp = *parsed.experiment;
  ScheduleRecord r;
  r.id = newId();
  r.name = exp.metadata.name;
  r.experimentYaml = s->yaml;
  r.vars = s->vars;
  // The experiment's own `schedule:` section, with the request's fields (and query) over it.
  if (exp.schedule) {
    r.cron = exp.schedule->cron;
    r.timezone = exp.schedule->timezone;
    if (exp.schedule->window) {
      r.windowStart = exp.schedule->window->first;
      r.windowEnd = exp.schedule->window->second;
    }
    r.maxRuns = exp.schedule->maxRuns;
  }
  const json& x = s->extra;
  auto text = [&](const char* key) -> std::optional<std::string> {
    if (x.contains(key) && x[key].is_string()) return x[key].get<std::string>();
    return req.param(key);
  };
  if (auto c = text("cron")) r.cron = *c;
  if (auto tz = text("timezone")) r.timezone = *tz;
  if (auto w = text("window")) {
    if (w->size() != 11 || (*w)[5] != '-') {
      return errorResponse(400, "window '" + *w + "' is not HH:MM-HH:MM");
    }
    r.windowStart = w->substr(0, 5);
    r.windowEnd = w->substr(6, 5);
  }
  if (x.contains("maxRuns")) {
    if (!x["maxRuns"].is_number_unsigned() || x["maxRuns"].get<uint64_t>() == 0 ||
        x["maxRuns"].get<uint64_t>() > 1000000) {
      return errorResponse(400, "maxRuns is not a number 1..1000000");
    }
    r.maxRuns = x["maxRuns"].get<uint32_t>();
  } else if (auto mr = req.param("maxRuns")) {
    try {
      long v = std::stol(*mr);
      if (v < 1 || v > 1000000) throw std::out_of_range("maxRuns");
      r.maxRuns = static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      return errorResponse(400, "maxRuns '" + *mr + "' is not a number 1..1000000");
    }
  }
  if (x.contains("paused") && x["paused"].is_boolean()) r.paused = x["paused"].get<bool>();
  if (r.cron.empty()) {
    return errorResponse(400,
                         "no cron expression: give the experiment a schedule: section or "
                         "the request a \"cron\" field");
  }
  auto added = ctx_.scheduler->add(std::move(r));
  if (!added) return errorResponse(added.error());
  auto resp = jsonResponse(201, scheduleJson(*added));
  resp.headers.emplace_back("Location", "/v1/schedules/" + added->record.id);
  return resp;
}

HttpResponse Api::schedule(const std::string& id) const {
  auto v = ctx_.scheduler->get(id);
  if (!v) return errorResponse(v.error());
  return jsonResponse(200, scheduleJson(*v));
}

HttpResponse Api::deleteSchedule(const std::string& id) {
  auto r = ctx_.scheduler->remove(id);
  if (!r) return errorResponse(r.error());
  return jsonResponse(200, {{"id", id}, {"deleted", true}});
}

HttpResponse Api::pauseSchedule(const std::string& id, bool paused) {
  auto v = ctx_.scheduler->setPaused(id, paused);
  if (!v) return errorResponse(v.error());
  return jsonResponse(200, scheduleJson(*v));
}

}  // namespace chaosd::daemon
