#include "chaosd/app/console/Console.h"

#include <arpa/inet.h>

#include <cctype>
#include <chrono>

#include "chaosd/app/console/ConsoleAssets.h"
#include "chaosd/app/daemon/Access.h"
#include "chaosd/app/daemon/ApiResponses.h"
#include "chaosd/base/Log.h"

namespace chaosd::console {
namespace {

using daemon::HttpRequest;
using daemon::HttpResponse;
using daemon::api::errorResponse;
using daemon::api::jsonResponse;
using daemon::api::splitPath;
using daemon::api::validId;
using json = nlohmann::json;

constexpr const char* kCookie = "chaosd_session";

// The pages load only what the console serves: no inline script or style, no frames, no
// plugins, forms only to itself.
constexpr const char* kPageCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";
// report.html is the report writer's self-contained page (inline style and SVG, no script):
// sandboxed, so it runs nothing and reaches nothing even if a report held markup.
constexpr const char* kReportCsp =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "sandbox";

void secure(HttpResponse& r, const char* csp = kPageCsp) {
  bool hasCsp = false;
  for (const auto& [k, v] : r.headers) hasCsp = hasCsp || k == "Content-Security-Policy";
  if (!hasCsp) r.headers.emplace_back("Content-Security-Policy", csp);
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  r.headers.emplace_back("Cache-Control", "no-store");
}

HttpResponse redirect(const std::string& to) {
  HttpResponse r;
  r.status = 303;
  r.contentType = "text/plain; charset=utf-8";
  r.body = "see " + to + "\n";
  r.headers.emplace_back("Location", to);
  return r;
}

// The value of `name` in "a=1<sep>b=2" (spaces after a separator skipped), undecoded; "" when
// absent. Cookies are separated by ';', form fields by '&'.
std::string fieldOf(const std::string& text, char sep, const std::string& name) {
  size_t i = 0;
  while (i <= text.size()) {
    size_t end = text.find(sep, i);
    if (end == std::string::npos) end = text.size();
    while (i < end && text[i] == ' ') ++i;
    if (text.compare(i, name.size() + 1, name + "=") == 0) {
      return text.substr(i + name.size() + 1, end - i - name.size() - 1);
    }
    i = end + 1;
  }
  return "";
}

// application/x-www-form-urlencoded: the value of one field, decoded.
std::string formField(const std::string& body, const std::string& name) {
  const std::string raw = fieldOf(body, '&', name);
  std::string out;
  for (size_t k = 0; k < raw.size(); ++k) {
    if (raw[k] == '+') {
      out += ' ';
    } else if (raw[k] == '%' && k + 2 < raw.size() &&
               std::isxdigit(static_cast<unsigned char>(raw[k + 1])) &&
               std::isxdigit(static_cast<unsigned char>(raw[k + 2]))) {
      out += static_cast<char>(std::stoi(raw.substr(k + 1, 2), nullptr, 16));
      k += 2;
    } else {
      out += raw[k];
    }
  }
  return out;
}

// Which API calls the console serves, and the role each needs. Everything else (recover,
// schedule creation and deletion, the console's own tokens) stays on the UNIX socket.
enum class Need { kNone, kRead, kOperate };
Need needOf(const std::string& method, const std::vector<std::string>& p) {
  const size_t n = p.size();
  if (n < 2 || p[0] != "v1") return Need::kNone;
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";
  const std::string& what = p[1];
  if (n == 2 && get &&
      (what == "health" || what == "version" || what == "runs" || what == "faults" ||
       what == "schedules")) {
    return Need::kRead;
  }
  if (n == 3 && post && what == "policy" && p[2] == "check") return Need::kRead;
  if (n == 2 && post && what == "runs") return Need::kOperate;
  if (n >= 3 && !validId(p[2])) return Need::kNone;
  if (n == 3 && get && (what == "runs" || what == "schedules")) return Need::kRead;
  if (n == 4 && what == "runs" && get && (p[3] == "report" || p[3] == "events")) {
    return Need::kRead;
  }
  if (n == 4 && what == "runs" && post && p[3] == "abort") return Need::kOperate;
  if (n == 4 && what == "schedules" && post && (p[3] == "pause" || p[3] == "resume")) {
    return Need::kOperate;
  }
  return Need::kNone;
}

bool isIpLiteral(const std::string& host) {
  unsigned char buf[16];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1;
  }
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1;
}

std::string sseEvent(uint64_t seq, const json& data) {
  return "id: " + std::to_string(seq) + "\ndata: " + data.dump() + "\n\n";
}

}  // namespace

std::string consoleListenAddress(const std::string& configured) {
  if (!configured.empty() && configured.find_first_not_of("0123456789") == std::string::npos) {
    return "127.0.0.1:" + configured;
  }
  return configured;
}

std::optional<std::string> crossSiteRefusal(const HttpRequest& req, const std::string& csrf) {
  const std::string origin = req.header("origin");
  const std::string host = req.header("host");
  if (origin.empty()) return "no Origin header: a state change must come from the console's page";
  if (host.empty() || (origin != "http://" + host && origin != "https://" + host)) {
    return "cross-origin request refused (Origin " + origin + ")";
  }
  const std::string site = req.header("sec-fetch-site");
  if (!site.empty() && site != "same-origin") {
    return "cross-site request refused (Sec-Fetch-Site " + site + ")";
  }
  if (!csrf.empty() && !constantTimeEqual(req.header("x-csrf-token"), csrf)) {
    return "missing or wrong X-CSRF-Token";
  }
  return std::nullopt;
}

Console::Console(ConsoleDeps deps, std::vector<std::string> hostNames)
    : deps_(deps), hostNames_(std::move(hostNames)) {}

Console::~Console() { stop(); }

void Console::stop() { *stopping_ = true; }

bool Console::hostAllowed(const std::string& hostHeader) const {
  std::string host = hostHeader;
  // Strip the port: after the last ':' unless it is inside an IPv6 literal.
  auto colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host.empty()) return false;
  if (host == "localhost" || isIpLiteral(host)) return true;
  for (const auto& name : hostNames_) {
    if (name == host) return true;
  }
  return false;
}

HttpResponse Console::handle(const HttpRequest& req) {
  HttpResponse r = route(req);
  secure(r);
  log::get("console")->debug("request method={} path={} status={}", req.method, req.path, r.status);
  return r;
}

HttpResponse Console::route(const HttpRequest& req) {
  // A name we do not know is a page of another site resolving to us (DNS rebinding).
  if (!hostAllowed(req.header("host"))) {
    return errorResponse(421, "unknown Host '" + req.header("host") +
                                  "' (chaosd --console-host NAME accepts a name)");
  }
  const std::string& m = req.method;
  const bool get = m == "GET" || m == "HEAD";
  // A CORS preflight is never granted: no Access-Control-* header, ever.
  if (m == "OPTIONS") return daemon::api::methodNotAllowed("GET, POST");
  if (req.path == "/") {
    if (!get) return daemon::api::methodNotAllowed("GET");
    if (!sessionOf(req)) return redirect("/login");
    return page(req, "app.html");
  }
  if (req.path == "/login") {
    if (get) return page(req, "login.html");
    if (m == "POST") return login(req);
    return daemon::api::methodNotAllowed("GET, POST");
  }
  if (req.path == "/logout")
    return m == "POST" ? logout(req) : daemon::api::methodNotAllowed("POST");
  if (req.path == "/favicon.ico") {  // browsers ask; there is none
    HttpResponse none;
    none.status = 204;
    return none;
  }
  if (req.path.rfind("/static/", 0) == 0) {
    if (!get) return daemon::api::methodNotAllowed("GET");
    return page(req, std::string_view(req.path).substr(8));
  }
  if (req.path == "/api/session") {
    return get ? sessionInfo(req) : daemon::api::methodNotAllowed("GET");
  }
  if (req.path.rfind("/api/", 0) == 0) return api(req);
  return errorResponse(404, "no such page: " + req.path);
}

HttpResponse Console::page(const HttpRequest& /*req*/, std::string_view name) {
  const ConsoleAsset* a = consoleAsset(name);
  if (a == nullptr) return errorResponse(404, "no such file: " + std::string(name));
  HttpResponse r;
  r.contentType = std::string(a->contentType);
  r.body = std::string(a->body);
  return r;
}

std::optional<ConsoleSession> Console::sessionOf(const HttpRequest& req) {
  const std::string id = fieldOf(req.header("cookie"), ';', kCookie);
  if (id.empty()) return std::nullopt;
  auto s = sessions_.find(id);
  if (!s) return std::nullopt;
  // A revoked or expired token ends its sessions at once.
  if (!deps_.tokens->find(s->tokenId)) {
    sessions_.remove(id);
    return std::nullopt;
  }
  return s;
}

HttpResponse Console::login(const HttpRequest& req) {
  // No session yet, so no CSRF token: the Origin must still be the console's (login CSRF).
  if (auto refused = crossSiteRefusal(req, "")) {
    deps_.metrics->refused("console-login");
    return errorResponse(403, *refused);
  }
  const bool form = req.header("content-type").rfind("application/x-www-form-urlencoded", 0) == 0;
  std::string token;
  if (form) {
    token = formField(req.body, "token");
  } else {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_object() && body.contains("token") && body["token"].is_string()) {
      token = body["token"].get<std::string>();
    }
  }
  auto found = token.empty() ? std::nullopt : deps_.tokens->verify(token);
  if (!found) {
    deps_.metrics->refused("console-login");
    log::get("console")->warn("console login refused reason=\"unknown or expired token\"");
    if (form) return redirect("/login#refused");
    return errorResponse(401, "unknown or expired token");
  }
  auto session = sessions_.create(*found);
  if (!session) return errorResponse(session.error());
  const auto maxAge = std::chrono::duration_cast<std::chrono::seconds>(
                          session->expiresAt - std::chrono::system_clock::now())
                          .count();
  HttpResponse r =
      form ? redirect("/") : jsonResponse(200, {{"role", std::string(roleName(session->role))}});
  r.headers.emplace_back(
      "Set-Cookie", std::string(kCookie) + "=" + session->id +
                        "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(maxAge));
  log::get("console")->info("console login token={} role={} uid={}", found->id,
                            roleName(found->role), found->issuer.value("uid", -1));
  return r;
}

HttpResponse Console::logout(const HttpRequest& req) {
  auto s = sessionOf(req);
  if (!s) return errorResponse(401, "not logged in");
  if (auto refused = crossSiteRefusal(req, s->csrf)) return errorResponse(403, *refused);
  sessions_.remove(s->id);
  HttpResponse r = jsonResponse(200, {{"loggedOut", true}});
  r.headers.emplace_back("Set-Cookie",
                         std::string(kCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  return r;
}

HttpResponse Console::sessionInfo(const HttpRequest& req) {
  auto s = sessionOf(req);
  if (!s) return errorResponse(401, "not logged in");
  return jsonResponse(200, {{"role", std::string(roleName(s->role))},
                            {"csrf", s->csrf},
                            {"token", s->tokenId},
                            {"issuer", s->issuer},
                            {"expiresAt", std::chrono::duration_cast<std::chrono::seconds>(
                                              s->expiresAt.time_since_epoch())
                                              .count()}});
}

HttpResponse Console::api(const HttpRequest& req) {
  auto session = sessionOf(req);
  if (!session) return errorResponse(401, "not logged in: open /login with a token");
  const std::string sub = req.path.substr(4);  // "/api/v1/..." -> "/v1/..."
  const auto parts = splitPath(sub);
  const Need need = needOf(req.method, parts);
  if (need == Need::kNone) {
    return errorResponse(404, "not served by the console: " + req.method + " " + sub);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    if (auto refused = crossSiteRefusal(req, session->csrf)) {
      deps_.metrics->refused("console-csrf");
      log::get("console")->warn("console request refused path={} reason=\"{}\"", req.path,
                                *refused);
      return errorResponse(403, *refused);
    }
  }
  if (need == Need::kOperate && session->role != ConsoleRole::kOperate) {
    deps_.metrics->refused("console-role");
    return errorResponse(
        403,
        "this session's token is read-only (chaosctl console token "
        "without --read-only gives one that may " +
            std::string(parts[1] == "runs" && parts.size() == 2 ? "submit" : parts.back()) + ")");
  }
  auto creds = daemon::credentialsFromJson(session->issuer);
  if (!creds) return errorResponse(403, "the token's issuer is not recorded");
  if (parts.size() == 4 && parts[3] == "events") return liveEvents(parts[2], req, *session);
  HttpRequest forwarded = req;
  forwarded.path = sub;
  forwarded.peer = daemon::PeerCred{0, creds->uid, creds->gid};
  forwarded.caller = *creds;
  forwarded.headers.erase("cookie");
  HttpResponse r = deps_.api->handleConsole(forwarded);
  if (parts.size() == 4 && parts[3] == "report" && r.status == 200 &&
      r.contentType.rfind("text/html", 0) == 0) {
    r.headers.emplace_back("Content-Security-Policy", kReportCsp);
  }
  return r;
}

HttpResponse Console::liveEvents(const std::string& runId, const HttpRequest& req,
                                 const ConsoleSession& session) {
  auto feed = deps_.runs->events(runId);
  if (!feed) return errorResponse(404, "run " + runId + " is not running here");
  uint64_t seen = 0;
  const std::string last = req.header("last-event-id");
  if (!last.empty() && last.find_first_not_of("0123456789") == std::string::npos &&
      last.size() < 19) {
    seen = std::stoull(last);
  }
  HttpResponse r;
  r.contentType = "text/event-stream; charset=utf-8";
  r.body = ": chaosd run " + runId + "\nretry: 2000\n\n";
  auto lastWrite =
      std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  r.next = [feed, seen, lastWrite, stopping = stopping_, tokens = deps_.tokens,
            tokenId = session.tokenId](std::string& out) mutable {
    if (*stopping || !tokens->find(tokenId)) return false;
    auto events = feed->after(seen, std::chrono::seconds(1));
    if (*stopping) return false;
    for (const auto& e : events) {
      out += sseEvent(e.seq, e.data);
      seen = e.seq;
    }
    const auto now = std::chrono::steady_clock::now();
    if (events.empty()) {
      if (feed->ended() && seen >= feed->lastSeq()) return false;
      // A comment now and then, so proxies and the idle timeout keep the stream open.
      if (now - *lastWrite > std::chrono::seconds(10)) out = ": keep-alive\n\n";
    }
    if (!out.empty()) *lastWrite = now;
    return true;
  };
  return r;
}

const ConsoleAsset* consoleAsset(std::string_view name) {
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    if (kConsoleAssets[i].name == name) return &kConsoleAssets[i];
  }
  return nullptr;
}

}  // namespace chaosd::console
