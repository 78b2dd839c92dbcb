#pragma once

#include <chrono>
#include <string>

#include "chaosd/app/daemon/Access.h"
#include "chaosd/app/daemon/HttpServer.h"
#include "chaosd/app/daemon/Metrics.h"
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
  std::chrono::system_clock::time_point startedAt = std::chrono::system_clock::now();
};

class Api {
 public:
  explicit Api(ApiContext context) : ctx_(std::move(context)) {}

  // The UNIX socket's handler: checks the caller, then routes.
  HttpResponse handle(const HttpRequest& request);
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
  HttpResponse deleteSchedule(const std::string& id);
  HttpResponse pauseSchedule(const std::string& id, bool paused);

  ApiContext ctx_;
};

// Exit code (DESIGN.md 5) of a run's outcome as the journal records it; -1 while open.
int exitCodeOfOutcome(const std::string& outcome);

}  // namespace chaosd::daemon
