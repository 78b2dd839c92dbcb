#include "chaosd/app/daemon/Api.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "chaosd/app/daemon/ApiResponses.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/StartAt.h"
#include "chaosd/base/Units.h"
#include "chaosd/engine/Recovery.h"
#include "experiments/parser/ExperimentParser.h"
#include "reports/ReportJson.h"
#include "reports/ResilienceScore.h"

namespace chaosd::daemon {
namespace {

using api::errorResponse;
using api::jsonResponse;
using api::methodNotAllowed;
using api::newId;
using api::readSubmission;
using api::splitPath;
using api::statusOf;
using api::validId;
using json = nlohmann::json;

json runJson(const RunRecord& r) {
  json j = {{"id", r.runId},
            {"experiment", r.experiment},
            {"ownerPid", r.ownerPid},
            {"caller", r.caller.empty() ? json(nullptr) : r.caller},
            {"startedAt", isoTime(r.startedAt)},
            {"endedAt", r.endedAt ? json(isoTime(*r.endedAt)) : json(nullptr)},
            {"state", r.endedAt ? "ended" : "running"},
            {"outcome", r.outcome.empty() ? json(nullptr) : json(r.outcome)}};
  int code = exitCodeOfOutcome(r.outcome);
  j["exitCode"] = code < 0 ? json(nullptr) : json(code);
  return j;
}

// A run the pool accepted that is not in the journal yet, from its live progress.
json acceptedRunJson(const std::string& id, const json& progress) {
  return {{"id", id},
          {"experiment", progress.value("experiment", "")},
          {"ownerPid", nullptr},
          {"startedAt", nullptr},
          {"endedAt", nullptr},
          {"state", "running"},
          {"outcome", nullptr},
          {"exitCode", nullptr},
          {"progress", progress},
          {"faults", json::array()}};
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
    ctx_.metrics->refused("socket");
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

HttpResponse Api::handleConsole(const HttpRequest& req) {
  if (!req.peer || !req.caller) return errorResponse(403, "caller unknown");
  return route(req);
}

Credentials Api::callerOf(const HttpRequest& req) {
  if (req.caller) return *req.caller;
  return req.peer ? callerCredentials(*req.peer) : Credentials{};
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
    for (const auto& f : *held) {
      ++s.faultsActiveByType[f.faultType];
      ++s.faultsActive[{f.runId, f.step, f.faultType}];
    }
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
  if (is({"metrics"})) return handleMetricsOnly(HttpRequest{m, "/metrics", {}, {}, {}, {}, {}});
  if (is({"policy", "check"})) return m == "POST" ? checkPolicy(req) : methodNotAllowed("POST");
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
  if (is({"console", "tokens"})) {
    if (m == "GET") return listConsoleTokens(req);
    if (m == "POST") return issueConsoleToken(req);
    return methodNotAllowed("GET, POST");
  }
  if (is({"console", "tokens", "*"})) {
    return m == "DELETE" ? revokeConsoleToken(parts[3], req) : methodNotAllowed("DELETE");
  }
  if (is({"recover"})) return m == "POST" ? recover(req) : methodNotAllowed("POST");
  if (is({"schedules"})) {
    if (m == "GET") return listSchedules();
    if (m == "POST") return createSchedule(req);
    return methodNotAllowed("GET, POST");
  }
  if (is({"schedules", "*"})) {
    if (m == "GET") return schedule(parts[2]);
    if (m == "DELETE") return deleteSchedule(parts[2], req);
    return methodNotAllowed("GET, DELETE");
  }
  if (is({"schedules", "*", "pause"})) {
    return m == "POST" ? pauseSchedule(parts[2], req, true) : methodNotAllowed("POST");
  }
  if (is({"schedules", "*", "resume"})) {
    return m == "POST" ? pauseSchedule(parts[2], req, false) : methodNotAllowed("POST");
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
  // The pool before the journal: a run accepted but not journalled yet is listed first (it is
  // the newest); one journalled meanwhile is in the journal's rows.
  const std::vector<std::string> active = ctx_.runs->activeIds();
  auto runs = ctx_.journal->runs(limit);
  if (!runs) return errorResponse(runs.error());
  json out = json::array();
  for (const auto& id : active) {
    bool journalled =
        std::any_of(runs->begin(), runs->end(), [&](const RunRecord& r) { return r.runId == id; });
    if (journalled) continue;
    if (auto journalledNow = ctx_.journal->run(id)) continue;
    if (auto live = ctx_.runs->progress(id)) out.push_back(acceptedRunJson(id, *live));
  }
  // ?details=1 (the console's list): each ended run's resilience score from its report.json.
  const bool details = req.param("details").value_or("") == "1";
  for (const auto& r : *runs) {
    if (limit > 0 && out.size() >= limit) break;
    json j = runJson(r);
    if (details && r.endedAt) {
      json report = json::parse(readFile(ctx_.runs->runDir(r.runId) + "/report.json").value_or(""),
                                nullptr, false);
      j["score"] = report.is_object() ? json(report::resilienceScore(report)) : json(nullptr);
    }
    out.push_back(j);
  }
  return jsonResponse(200, {{"runs", out}});
}

HttpResponse Api::submit(const HttpRequest& req) {
  auto s = readSubmission(req);
  if (!s) return errorResponse(s.error());
  SubmitRequest sr;
  sr.yaml = std::move(s->yaml);
  sr.vars = std::move(s->vars);
  sr.invokerPid = req.peer ? req.peer->pid : 0;
  if (req.peer) sr.caller = callerOf(req);
  if (s->extra.contains("fileName") && s->extra["fileName"].is_string()) {
    sr.fileName = s->extra["fileName"].get<std::string>();
  }
  // A synchronised start: ?startAt= or the JSON body's "startAt", RFC 3339.
  std::optional<std::string> startAt = req.param("startAt");
  if (s->extra.contains("startAt")) {
    if (!s->extra["startAt"].is_string()) {
      return errorResponse(400,
                           "startAt: not a string (an RFC 3339 time, e.g. 2026-05-01T10:00:00Z)");
    }
    startAt = s->extra["startAt"].get<std::string>();
  }
  if (startAt) {
    auto at = parseStartAt(*startAt);
    if (!at) return errorResponse(400, "startAt: " + at.error().message());
    if (auto ok = checkStartAt(*at, std::chrono::system_clock::now()); !ok) {
      return errorResponse(400, "startAt: " + ok.error().message());
    }
    sr.startAt = *at;
  }
  auto result = ctx_.runs->submit(sr);
  if (auto* refused = std::get_if<SubmitRefusal>(&result)) {
    return errorResponse(statusOf(refused->error.code()), refused->error.describe(),
                         refused->diagnostics);
  }
  const auto& ok = std::get<Submitted>(result);
  auto r = jsonResponse(202, {{"id", ok.runId},
                              {"experiment", ok.experiment},
                              {"experimentHash", ok.experimentHash},
                              {"state", "running"},
                              {"status", "/v1/runs/" + ok.runId}});
  r.headers.emplace_back("Location", "/v1/runs/" + ok.runId);
  return r;
}

HttpResponse Api::runStatus(const std::string& id) const {
  auto run = ctx_.journal->run(id);
  if (!run && run.error().code() == ErrorCode::kNotFound) {
    // Accepted (POST answered 202) but its thread has not journalled it yet: a client that
    // asks at once, or while the daemon is busy, sees it running, not unknown.
    if (auto live = ctx_.runs->progress(id)) return jsonResponse(200, acceptedRunJson(id, *live));
  }
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
  std::string reason = "aborted through the API";
  if (req.peer) reason += " by uid " + std::to_string(req.peer->uid);
  // Only root or the run's own caller may stop it. A run accepted a moment ago and not
  // journalled yet is checked by the pool's record of its caller.
  json owner = ctx_.runs->caller(id).value_or(json::object());
  if (auto run = ctx_.journal->run(id)) owner = run->caller;
  if (auto refused = refuseUnlessOwner(req, owner, "abort", "run " + id)) return *refused;
  // The pool first: a run accepted a moment ago may not be journalled yet.
  auto r = ctx_.runs->abort(id, reason);
  audit(req, "abort", r ? "accepted" : "failed", r ? reason : r.error().describe(), id);
  if (!r) {
    auto run = ctx_.journal->run(id);
    if (!run) return errorResponse(run.error());
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
  if (!run && run.error().code() == ErrorCode::kNotFound && ctx_.runs->progress(id)) {
    // Accepted but not journalled yet (as in runStatus): running, so no report yet.
    return errorResponse(409, "run " + id + " is still running; no report yet");
  }
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
      j["ownerAlive"] = journalOwnerAlive(*run);
      j["owner"] = run->caller.empty() ? json(nullptr) : run->caller;
    }
    out.push_back(j);
  }
  return jsonResponse(200, {{"faults", out}});
}

void Api::audit(const HttpRequest& req, const std::string& action, const std::string& result,
                const std::string& detail, const std::string& runId, const std::string& scheduleId,
                const std::string& hash) const {
  AuditRecord a;
  a.action = action;
  a.result = result;
  a.uid = req.peer ? req.peer->uid : 0;
  a.pid = req.peer ? req.peer->pid : 0;
  a.runId = runId;
  a.scheduleId = scheduleId;
  a.experimentHash = hash;
  a.detail = detail;
  if (auto w = ctx_.journal->audit(a); !w) {
    log::get("audit")->error("audit line not journalled action={} error=\"{}\"", action,
                             w.error().describe());
  }
  log::get("audit")->info("{} {} uid={} pid={} run={} schedule={} detail=\"{}\"", action, result,
                          a.uid, a.pid, runId, scheduleId, detail);
}

std::optional<HttpResponse> Api::refuseUnlessOwner(const HttpRequest& req, const json& owner,
                                                   const std::string& action,
                                                   const std::string& what) const {
  if (!req.peer || req.peer->uid == 0) return std::nullopt;
  auto creds = credentialsFromJson(owner);
  // A run or schedule without a caller was started by root or `chaosctl run`: root's.
  if (creds && creds->uid == req.peer->uid) return std::nullopt;
  const std::string why = "uid " + std::to_string(req.peer->uid) + " may not " + action + " " +
                          what + ": only root or its own caller (uid " +
                          (creds ? std::to_string(creds->uid) : std::string("0")) + ") may";
  ctx_.metrics->refused(action);
  const bool isRun = what.rfind("run ", 0) == 0;
  const bool isSchedule = what.rfind("schedule ", 0) == 0;
  audit(req, action, "refused", why, isRun ? what.substr(4) : "", isSchedule ? what.substr(9) : "");
  return errorResponse(403, why);
}

HttpResponse Api::checkPolicy(const HttpRequest& req) const {
  auto s = readSubmission(req);
  if (!s) return errorResponse(s.error());
  ParseOptions options;
  options.vars = s->vars;
  options.registry = ctx_.registry;
  ParseResult parsed = parseExperimentText(s->yaml, "submitted.yaml", options);
  if (!parsed.ok()) {
    std::vector<std::string> diags;
    for (const auto& d : parsed.diagnostics) diags.push_back(d.str());
    return errorResponse(400, "the experiment is not valid", diags);
  }
  const Credentials who = callerOf(req);
  if (ctx_.policy == nullptr || who.isRoot()) {
    return jsonResponse(200, {{"allowed", true},
                              {"caller", callerJson(who, req.peer ? req.peer->pid : 0)},
                              {"reason", who.isRoot() ? "root" : "no policy"}});
  }
  auto policy = ctx_.policy->current();
  PolicyDecision d = checkExperiment(*policy, who, *parsed.experiment);
  json j = {{"allowed", d.allowed},
            {"caller", callerJson(who, req.peer->pid)},
            {"policy", policy->path},
            {"grants", d.grantsUsed},
            {"reason", d.reason}};
  if (d.maxTargets) j["maxTargets"] = *d.maxTargets;
  if (d.maxDuration) j["maxDuration"] = units::formatDuration(*d.maxDuration);
  return jsonResponse(200, j);
}

HttpResponse Api::issueConsoleToken(const HttpRequest& req) {
  if (ctx_.consoleTokens == nullptr) {
    return errorResponse(409, "the web console is off (chaosd --console-listen ADDRESS)");
  }
  // Only a socket caller mints tokens: a console session cannot make itself another.
  if (req.caller) return errorResponse(403, "tokens are issued over the UNIX socket only");
  json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (!body.is_object()) return errorResponse(400, "the body is not a JSON object");
  auto role = console::roleFromName(body.value("role", "operate"));
  if (!role) return errorResponse(400, "role: 'read' or 'operate'");
  console::Duration ttl = console::kDefaultTokenTtl;
  if (body.contains("ttl")) {
    auto parsed = body["ttl"].is_string()
                      ? units::parseDuration(body["ttl"].get<std::string>())
                      : Result<units::Duration>(Error(ErrorCode::kInvalid, "not a string"));
    if (!parsed) return errorResponse(400, "ttl: " + parsed.error().message());
    ttl = *parsed;
  }
  const Credentials who = callerOf(req);
  auto issued = ctx_.consoleTokens->issue(*role, callerJson(who, req.peer->pid), ttl);
  if (!issued) return errorResponse(issued.error());
  audit(req, "console-token", "accepted",
        "id " + issued->record.id + " role " + std::string(console::roleName(*role)));
  json j = issued->record.toJson();
  j["token"] = issued->token;
  return jsonResponse(201, j);
}

HttpResponse Api::listConsoleTokens(const HttpRequest& req) const {
  if (ctx_.consoleTokens == nullptr) return jsonResponse(200, {{"tokens", json::array()}});
  const Credentials who = callerOf(req);
  json out = json::array();
  for (const auto& t : ctx_.consoleTokens->list()) {
    if (who.isRoot() || t.issuer.value("uid", -1) == static_cast<int64_t>(who.uid)) {
      out.push_back(t.toJson());
    }
  }
  return jsonResponse(200, {{"tokens", out}});
}

HttpResponse Api::revokeConsoleToken(const std::string& id, const HttpRequest& req) {
  if (ctx_.consoleTokens == nullptr) return errorResponse(404, "no such token: " + id);
  if (req.caller) return errorResponse(403, "tokens are revoked over the UNIX socket only");
  auto t = ctx_.consoleTokens->find(id);
  if (!t) return errorResponse(404, "no such token: " + id);
  if (auto refused = refuseUnlessOwner(req, t->issuer, "console-revoke", "token " + id)) {
    return *refused;
  }
  auto r = ctx_.consoleTokens->revoke(id);
  if (!r) return errorResponse(r.error());
  audit(req, "console-revoke", "accepted", "id " + id);
  return jsonResponse(200, {{"id", id}, {"revoked", *r}});
}

HttpResponse Api::recover(const HttpRequest& req) {
  // Recovery reverts faults of every dead owner: root only, or a caller with a grant.
  if (req.peer && req.peer->uid != 0 && ctx_.policy != nullptr &&
      !hasGrant(*ctx_.policy->current(), callerOf(req))) {
    ctx_.metrics->refused("recover");
    audit(req, "recover", "refused", "no grant");
    return errorResponse(403, "uid " + std::to_string(req.peer->uid) +
                                  " has no grant in the policy: only root or a caller with a "
                                  "grant may recover");
  }
  audit(req, "recover", "accepted", req.param("run").value_or(""));
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

}  // namespace chaosd::daemon
