#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/app/console/ConsoleSessions.h"
#include "chaosd/app/console/ConsoleTokens.h"
#include "chaosd/app/daemon/Api.h"
#include "chaosd/app/daemon/HttpServer.h"
#include "chaosd/app/daemon/RunPool.h"

// The web console (docs/console.md): pages and a session-guarded view of the daemon's API on
// a TCP listener of its own (`chaosd --console-listen`, off by default). A browser logs in
// with a token from `chaosctl console token`; its requests then act as the token's issuer
// through the same Api handlers (and so the same policy and credentials) as the UNIX socket's
// callers. Every response carries a strict Content-Security-Policy, frame-ancestors 'none',
// X-Frame-Options DENY and nosniff, and never a CORS header; every state change needs the
// session's CSRF token in X-CSRF-Token and an Origin equal to the console's own.
namespace chaosd::console {

struct ConsoleDeps {
  daemon::Api* api = nullptr;
  ConsoleTokens* tokens = nullptr;
  daemon::RunPool* runs = nullptr;
  daemon::Metrics* metrics = nullptr;
};

class Console {
 public:
  // hostNames: Host header names accepted besides IP literals and "localhost" (a name the
  // console is reached by; anything else is refused, against DNS rebinding).
  Console(ConsoleDeps deps, std::vector<std::string> hostNames);
  ~Console();  // ends the live streams

  daemon::HttpResponse handle(const daemon::HttpRequest& request);
  // Ends every live stream within a second (they are waiting for events).
  void stop();
  size_t sessions() const { return sessions_.size(); }

 private:
  daemon::HttpResponse route(const daemon::HttpRequest& request);
  daemon::HttpResponse page(const daemon::HttpRequest& request, std::string_view asset);
  daemon::HttpResponse login(const daemon::HttpRequest& request);
  daemon::HttpResponse logout(const daemon::HttpRequest& request);
  daemon::HttpResponse sessionInfo(const daemon::HttpRequest& request);
  daemon::HttpResponse api(const daemon::HttpRequest& request);
  daemon::HttpResponse liveEvents(const std::string& runId, const daemon::HttpRequest& request,
                                  const ConsoleSession& session);
  // The session the request's cookie names, if it and its token are still valid.
  std::optional<ConsoleSession> sessionOf(const daemon::HttpRequest& request);
  bool hostAllowed(const std::string& host) const;

  ConsoleDeps deps_;
  std::vector<std::string> hostNames_;
  ConsoleSessions sessions_;
  std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
};

// Checks that a request changing state comes from the console's own page: an Origin header
// equal to "http://" + Host (or https), no Sec-Fetch-Site other than same-origin, and the
// session's CSRF token in X-CSRF-Token (when csrf is not empty). The refusal's message, or
// nullopt when it passes.
std::optional<std::string> crossSiteRefusal(const daemon::HttpRequest& request,
                                            const std::string& csrf);

// The listener: HOST:PORT, or a bare PORT meaning 127.0.0.1:PORT.
std::string consoleListenAddress(const std::string& configured);

}  // namespace chaosd::console
