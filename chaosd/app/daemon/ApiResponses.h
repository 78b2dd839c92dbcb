#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/app/daemon/HttpServer.h"
#include "chaosd/base/Error.h"
#include "chaosd/base/Result.h"

// The daemon API's responses and request bodies, shared by its handlers (Api.cpp,
// ApiSchedules.cpp). docs/daemon.md has the API.
namespace chaosd::daemon::api {

// A JSON body with the status.
HttpResponse jsonResponse(int status, const nlohmann::json& body);
// {"error": {"status", "code", "message", "diagnostics"?}}.
HttpResponse errorResponse(int status, const std::string& message,
                           const std::vector<std::string>& diagnostics = {});
// An Error with its HTTP status (statusOf: kInvalid 400, kNotFound 404, kConflict 409, kPermission
// 403, kAborted 503, else 500).
HttpResponse errorResponse(const Error& e);
int statusOf(ErrorCode code);
HttpResponse methodNotAllowed(const std::string& allow);

// "/v1/runs/ID" -> {"v1", "runs", "ID"} (empty segments dropped).
std::vector<std::string> splitPath(const std::string& path);
// Whether a path segment may be a run or schedule id: 1..64 of [A-Za-z0-9_-].
bool validId(const std::string& id);

// A fresh id for a run or a schedule: 16 hex digits.
std::string newId();

// An experiment as posted: a YAML body with ?var=NAME=VALUE, or JSON
// {"experiment": "<yaml>", "vars": {...}, ...}.
struct Submission {
  std::string yaml;
  std::map<std::string, std::string> vars;
  nlohmann::json extra = nlohmann::json::object();  // the JSON body's other fields
};
Result<Submission> readSubmission(const HttpRequest& req);

}  // namespace chaosd::daemon::api
