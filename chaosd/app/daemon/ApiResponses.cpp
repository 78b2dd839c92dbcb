#include "chaosd/app/daemon/ApiResponses.h"

#include <cstdio>
#include <random>
#include <regex>

#include "chaosd/base/Quote.h"

namespace chaosd::daemon::api {

using json = nlohmann::json;

HttpResponse jsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // A request's bytes echoed in a message (a path, an id, a variable) need not be UTF-8: they
  // are shown with U+FFFD in their place rather than failing the response (dump() throws on
  // invalid UTF-8, and the server turned that into a 500 for a mistyped path). Found by
  // fuzz_api_request (tests/fuzz/corpus-api/invalid-utf8-path.http).
  r.body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

static const char* codeName(int status) {
  switch (status) {
    case 400:
      return "invalid";
    case 401:
      return "unauthenticated";  // the web console without a session
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
    case 421:
      return "misdirected";  // the web console under a Host it does not know
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}

HttpResponse errorResponse(int status, const std::string& message,
                           const std::vector<std::string>& diagnostics) {
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
    // Variables are text: the experiment's, the journal's (a schedule keeps them as JSON, which
    // has no bytes). Found by fuzz_api_request: a schedule's var of invalid UTF-8 threw from
    // the journal's dump() and stopped the daemon (tests/fuzz/corpus-api/schedule-var-not-utf8).
    if (!isUtf8(v)) return Error(ErrorCode::kInvalid, "var " + quoteText(v) + " is not UTF-8 text");
    s.vars[v.substr(0, eq)] = v.substr(eq + 1);
  }
  if (s.yaml.empty()) return Error(ErrorCode::kInvalid, "the request has no experiment");
  return s;
}

}  // namespace chaosd::daemon::api
