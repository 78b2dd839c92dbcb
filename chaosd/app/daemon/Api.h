#pragma once

#include <chrono>
#include <string>

#include "chaosd/app/console/ConsoleTokens.h"
#include "chaosd/app/daemon/Access.h"
#include "chaosd/app/daemon/HttpServer.h"
#include "chaosd/app/daemon/Metrics.h"
#include "chaosd/app/daemon/Policy.h"
#include "chaosd/app/daemon/RunPool.h"
#include "chaosd/app/daemon/Scheduler.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/FaultRegistry.h"

// The daemon's HTTP API, version 1 (docs/daemon.md). JSON in and out; every error is
//   {"error": {"status": 409, "code": "conflict", "message": "...", "diagnostics": [...]}}
namespace chaosd::daemon {

struct ApiContext {
  FaultJournal* journal = nullptr;
  const FaultRegistry* registry = nullptr;
  RunPool* runs = nullptr;
  Scheduler* scheduler = nullptr;
  Metrics* metrics = nullptr;
  AccessPolicy access;
  // Who may inject what where (docs/security.md); null: no policy (every caller the socket
  // lets in may do anything, as before version 4; tests only).
  const PolicyStore* policy = nullptr;
  std::chrono::system_clock::time_point startedAt = std::chrono::system_clock::now();
  // The web console's tokens (docs/console.md); null when the console is off.
  console::ConsoleTokens* consoleTokens = nullptr;
};

class Api {
 public:
  explicit Api(ApiContext context) : ctx_(std::move(context)) {}

  // The UNIX socket's handler: checks the caller, then routes.
  HttpResponse handle(const HttpRequest& request);
  // The web console's forwarded request: the console checked the session, its role and CSRF,
  // and set peer (the issuer's uid and gid, pid 0) and caller (the issuer's credentials).
  HttpResponse handleConsole(const HttpRequest& request);
  // The TCP metrics listener's handler: /metrics only, no caller check (loopback by default).
  HttpResponse handleMetricsOnly(const HttpRequest& request);

  std::string metricsText() const;

 private:
  HttpResponse route(const HttpRequest& request);
  HttpResponse health() const;
  HttpResponse version() const;
  HttpResponse listRuns(const HttpRequest& request) const;
  HttpResponse submit(const HttpRequest& request);
  HttpResponse runStatus(const std::string& id) const;
  HttpResponse abortRun(const std::string& id, const HttpRequest& request);
  HttpResponse report(const std::string& id, const HttpRequest& request) const;
  HttpResponse faults() const;
  HttpResponse recover(const HttpRequest& request);
  HttpResponse listSchedules() const;
  HttpResponse createSchedule(const HttpRequest& request);
  HttpResponse schedule(const std::string& id) const;
  HttpResponse deleteSchedule(const std::string& id, const HttpRequest& request);
  HttpResponse pauseSchedule(const std::string& id, const HttpRequest& request, bool paused);
  HttpResponse checkPolicy(const HttpRequest& request) const;
  HttpResponse issueConsoleToken(const HttpRequest& request);
  HttpResponse listConsoleTokens(const HttpRequest& request) const;
  HttpResponse revokeConsoleToken(const std::string& id, const HttpRequest& request);
  // The caller's credentials: the console's issuer, or the socket peer's now.
  static Credentials callerOf(const HttpRequest& request);
  // Journals one line of the audit trail for the request's caller.
  void audit(const HttpRequest& request, const std::string& action, const std::string& result,
             const std::string& detail, const std::string& runId = "",
             const std::string& scheduleId = "", const std::string& hash = "") const;
  // Whether the caller may change what `owner` (a journalled caller) started: root, or the
  // same uid. Anything else is a 403 response, audited and counted.
  std::optional<HttpResponse> refuseUnlessOwner(const HttpRequest& request,
                                                const nlohmann::json& owner,
                                                const std::string& action,
                                                const std::string& what) const;
  ApiContext ctx_;
};

// Exit code (DESIGN.md 5) of a run's outcome as the journal records it; -1 while open.
int exitCodeOfOutcome(const std::string& outcome);

}  // namespace chaosd::daemon
