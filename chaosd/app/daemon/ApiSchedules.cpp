#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "chaosd/app/daemon/Api.h"
#include "chaosd/app/daemon/ApiResponses.h"
#include "experiments/parser/ExperimentParser.h"
#include "reports/ReportJson.h"

// The API's schedules: /v1/schedules (docs/daemon.md).
namespace chaosd::daemon {
namespace {

using api::errorResponse;
using api::jsonResponse;
using api::newId;
using api::readSubmission;
using json = nlohmann::json;

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
      {"vars", r.vars},
      {"creator", r.creator.empty() ? json(nullptr) : r.creator}};
  return j;
}

}  // namespace

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
  const std::string hash = experimentHash(s->yaml, s->vars);
  // The policy at creation (and again at every fire, through the pool): a caller may only
  // schedule what they may submit.
  std::optional<Credentials> who;
  if (req.peer) who = callerOf(req);
  if (who && !who->isRoot() && ctx_.policy != nullptr) {
    PolicyDecision d = checkExperiment(*ctx_.policy->current(), *who, exp);
    if (!d.allowed) {
      ctx_.metrics->refused("schedule-add");
      audit(req, "schedule-add", "refused", d.reason, "", "", hash);
      return errorResponse(403, "refused by policy: " + d.reason);
    }
  }
  ScheduleRecord r;
  r.id = newId();
  if (who) r.creator = callerJson(*who, req.peer->pid);
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
  if (!added) {
    audit(req, "schedule-add", "failed", added.error().describe(), "", "", hash);
    return errorResponse(added.error());
  }
  audit(req, "schedule-add", "accepted", added->record.cron, "", added->record.id, hash);
  auto resp = jsonResponse(201, scheduleJson(*added));
  resp.headers.emplace_back("Location", "/v1/schedules/" + added->record.id);
  return resp;
}

HttpResponse Api::schedule(const std::string& id) const {
  auto v = ctx_.scheduler->get(id);
  if (!v) return errorResponse(v.error());
  return jsonResponse(200, scheduleJson(*v));
}

HttpResponse Api::deleteSchedule(const std::string& id, const HttpRequest& req) {
  auto v = ctx_.scheduler->get(id);
  if (!v) return errorResponse(v.error());
  if (auto refused =
          refuseUnlessOwner(req, v->record.creator, "schedule-delete", "schedule " + id)) {
    return *refused;
  }
  auto r = ctx_.scheduler->remove(id);
  audit(req, "schedule-delete", r ? "accepted" : "failed", r ? "" : r.error().describe(), "", id);
  if (!r) return errorResponse(r.error());
  return jsonResponse(200, {{"id", id}, {"deleted", true}});
}

HttpResponse Api::pauseSchedule(const std::string& id, const HttpRequest& req, bool paused) {
  const std::string action = paused ? "schedule-pause" : "schedule-resume";
  auto before = ctx_.scheduler->get(id);
  if (!before) return errorResponse(before.error());
  if (auto refused = refuseUnlessOwner(req, before->record.creator, action, "schedule " + id)) {
    return *refused;
  }
  auto v = ctx_.scheduler->setPaused(id, paused);
  audit(req, action, v ? "accepted" : "failed", v ? "" : v.error().describe(), "", id);
  if (!v) return errorResponse(v.error());
  return jsonResponse(200, scheduleJson(*v));
}

}  // namespace chaosd::daemon
