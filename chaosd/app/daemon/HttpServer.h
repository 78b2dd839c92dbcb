#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"

// The daemon's HTTP/1.1 server: libmicrohttpd (a maintained Debian package; strict parsing,
// keep-alive, Expect: 100-continue, timeouts) on a listening socket we create ourselves, so
// it serves a UNIX socket as well as a TCP one. Each request is read whole (up to a size cap)
// and handed to one handler, which returns the whole response.
namespace chaosd::daemon {

// The process at the other end of a UNIX socket (SO_PEERCRED).
struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct HttpRequest {
  std::string method;
  std::string path;                                        // without the query string
  std::vector<std::pair<std::string, std::string>> query;  // in order; names may repeat
  std::map<std::string, std::string> headers;              // names lower-case
  std::string body;
  std::optional<PeerCred> peer;  // set on UNIX sockets
  // Who the caller is when the transport established it another way than SO_PEERCRED: the
  // web console's session names its token's issuer (then peer carries the issuer's uid and
  // gid with pid 0). Unset: the credentials are read from the peer process.
  std::optional<Credentials> caller;

  // The first value of a query parameter, or nullopt.
  std::optional<std::string> param(const std::string& name) const;
  std::string header(const std::string& lowerName) const;
};

struct HttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A response of unknown length (Server-Sent Events): after body, the server calls next on
  // the connection's thread until it returns false; each call may block until it has bytes to
  // append to out (true with out empty: nothing yet, call again). Only on a server with
  // threadPerConnection, where a blocked call holds no other connection up.
  std::function<bool(std::string& out)> next;
};

struct HttpServerOptions {
  size_t maxBodyBytes = 2 * 1024 * 1024;  // a larger body gets 413 without being kept
  unsigned idleTimeoutSeconds = 30;       // an idle keep-alive connection is closed after it
  unsigned threads = 4;                   // handlers run on these
  unsigned maxConnections = 512;
  // A thread for each connection instead of a pool of `threads`: needed for streamed
  // responses (HttpResponse::next), which block their thread between events.
  bool threadPerConnection = false;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds a UNIX socket at path (replacing a stale socket file, never another kind of file),
  // sets its mode and group (gid -1: unchanged) and serves it.
  static Result<std::unique_ptr<HttpServer>> listenUnix(const std::string& path, mode_t mode,
                                                        gid_t group, HttpServerOptions options,
                                                        Handler handler);
  // Listens on "HOST:PORT" (IPv4 or [IPv6]); port 0 picks a free one (see port()).
  static Result<std::unique_ptr<HttpServer>> listenTcp(const std::string& hostPort,
                                                       HttpServerOptions options, Handler handler);

  ~HttpServer();  // stops serving, waits for handlers in progress, closes the socket
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const { return port_; }  // TCP only

  struct State;  // libmicrohttpd's callbacks see it

 private:
  HttpServer() = default;
  static Result<std::unique_ptr<HttpServer>> start(int fd, HttpServerOptions options,
                                                   Handler handler, bool unix);

  std::unique_ptr<State> state_;
  std::string unixPath_;
  uint16_t port_ = 0;
};

}  // namespace chaosd::daemon
