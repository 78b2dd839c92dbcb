#include "chaosd/app/daemon/HttpServer.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Log.h"

namespace chaosd::daemon {

std::optional<std::string> HttpRequest::param(const std::string& name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::string HttpRequest::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpServer::State {
  Handler handler;
  HttpServerOptions options;
  bool unix = false;
  MHD_Daemon* mhd = nullptr;
  Fd listenFd;
};

namespace {

// Per request: the body read so far.
struct Pending {
  std::string body;
  bool tooLarge = false;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

MHD_Result collectQuery(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* out = static_cast<std::vector<std::pair<std::string, std::string>>*>(cls);
  out->emplace_back(key, value != nullptr ? value : "");
  return MHD_YES;
}

MHD_Result collectHeader(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* out = static_cast<std::map<std::string, std::string>*>(cls);
  (*out)[lower(key)] = value != nullptr ? value : "";
  return MHD_YES;
}

std::optional<PeerCred> peerOf(MHD_Connection* connection) {
  const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (info == nullptr) return std::nullopt;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return std::nullopt;
  }
  return PeerCred{cred.pid, cred.uid, cred.gid};
}

// A streamed response's state: what is left of the body and of the last chunk, then next().
struct Stream {
  std::string pending;
  size_t offset = 0;
  std::function<bool(std::string&)> next;
};

ssize_t readStream(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  auto* s = static_cast<Stream*>(cls);
  if (s->offset >= s->pending.size()) {
    s->pending.clear();
    s->offset = 0;
    bool more = false;
    try {
      more = s->next(s->pending);
    } catch (const std::exception& e) {
      log::get("http")->error("stream failed error=\"{}\"", e.what());
    }
    if (!more && s->pending.empty()) return MHD_CONTENT_READER_END_OF_STREAM;
    // Nothing yet: MHD calls again (legal with a thread per connection; next() waited, so
    // this is no busy loop, and MHD sees a stop between the calls).
    if (s->pending.empty()) return 0;
  }
  const size_t n = std::min(max, s->pending.size() - s->offset);
  std::memcpy(buf, s->pending.data() + s->offset, n);
  s->offset += n;
  return static_cast<ssize_t>(n);
}

void freeStream(void* cls) { delete static_cast<Stream*>(cls); }

MHD_Result queue(MHD_Connection* connection, const HttpResponse& r) {
  MHD_Response* response = nullptr;
  if (r.next) {
    auto* s = new Stream{r.body, 0, r.next};
    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, readStream, s, freeStream);
    if (response == nullptr) delete s;
  } else {
    response = MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()),
                                               MHD_RESPMEM_MUST_COPY);
  }
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.contentType.c_str());
  for (const auto& [k, v] : r.headers) MHD_add_response_header(response, k.c_str(), v.c_str());
  MHD_Result ok = MHD_queue_response(connection, static_cast<unsigned>(r.status), response);
  MHD_destroy_response(response);
  return ok;
}

MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* uploadData, size_t* uploadSize,
                     void** conCls) {
  auto* state = static_cast<HttpServer::State*>(cls);
  if (*conCls == nullptr) {
    *conCls = new Pending();
    return MHD_YES;  // headers read; the body (if any) comes in the next calls
  }
  auto* pending = static_cast<Pending*>(*conCls);
  if (*uploadSize != 0) {
    if (pending->body.size() + *uploadSize > state->options.maxBodyBytes) {
      pending->tooLarge = true;
      pending->body.clear();
    } else if (!pending->tooLarge) {
      pending->body.append(uploadData, *uploadSize);
    }
    *uploadSize = 0;
    return MHD_YES;
  }
  if (pending->tooLarge) {
    HttpResponse r;
    r.status = 413;
    r.body =
        R"({"error":{"status":413,"code":"too-large","message":"the request body is larger than )" +
        std::to_string(state->options.maxBodyBytes) + R"( bytes"}})";
    return queue(connection, r);
  }
  HttpRequest request;
  request.method = method;
  request.path = url;
  request.body = std::move(pending->body);
  MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collectQuery, &request.query);
  MHD_get_connection_values(connection, MHD_HEADER_KIND, collectHeader, &request.headers);
  if (state->unix) {
    request.peer = peerOf(connection);
    if (!request.peer) {
      // Without credentials nobody can be checked: refuse rather than guess.
      HttpResponse r;
      r.status = 403;
      r.body = R"({"error":{"status":403,"code":"forbidden","message":"caller unknown"}})";
      return queue(connection, r);
    }
  }
  HttpResponse response;
  try {
    response = state->handler(request);
  } catch (const std::exception& e) {
    log::get("api")->error("handler failed path={} error=\"{}\"", request.path, e.what());
    response.status = 500;
    response.body = R"({"error":{"status":500,"code":"internal","message":"internal error"}})";
  }
  return queue(connection, response);
}

void onCompleted(void* /*cls*/, MHD_Connection* /*connection*/, void** conCls,
                 MHD_RequestTerminationCode /*code*/) {
  delete static_cast<Pending*>(*conCls);
  *conCls = nullptr;
}

void onMhdLog(void* /*cls*/, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  log::get("http")->debug("{}", line);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(int fd, HttpServerOptions options,
                                                      Handler handler, bool unix) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->state_ = std::make_unique<State>();
  State& st = *server->state_;
  st.handler = std::move(handler);
  st.options = options;
  st.unix = unix;
  st.listenFd = Fd(fd);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
  // epoll serves a pool; a thread per connection polls its own socket.
  flags |=
      options.threadPerConnection ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL;
  // The external logger comes first so that MHD's messages about later options go to it.
  const unsigned pool = options.threads > 1 && !options.threadPerConnection ? options.threads : 0;
  st.mhd = MHD_start_daemon(flags, 0, nullptr, nullptr, onRequest, &st, MHD_OPTION_EXTERNAL_LOGGER,
                            onMhdLog, nullptr, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_TIMEOUT,
                            options.idleTimeoutSeconds, MHD_OPTION_CONNECTION_LIMIT,
                            options.maxConnections, MHD_OPTION_NOTIFY_COMPLETED, onCompleted,
                            nullptr, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
  if (st.mhd == nullptr) return Error(ErrorCode::kInternal, "libmicrohttpd did not start");
  return server;
}

HttpServer::~HttpServer() {
  if (state_ && state_->mhd != nullptr) {
    // Stop taking connections first, so nothing new arrives while handlers finish.
    MHD_quiesce_daemon(state_->mhd);
    MHD_stop_daemon(state_->mhd);
  }
  if (!unixPath_.empty()) ::unlink(unixPath_.c_str());
}

Result<std::unique_ptr<HttpServer>> HttpServer::listenUnix(const std::string& path, mode_t mode,
                                                           gid_t group, HttpServerOptions options,
                                                           Handler handler) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalid, "socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Error(ErrorCode::kConflict, path + " exists and is not a socket; not replacing it");
    }
    // A live daemon answers on it; a stale one from a dead daemon is refused.
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Error(ErrorCode::kConflict, "another daemon serves " + path);
    }
    ::unlink(path.c_str());
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::fromErrno("socket", errno);
  // Bind with a umask that leaves nobody else a window on the socket before chmod.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bindErrno = errno;
  ::umask(old);
  if (rc != 0) return Error::fromErrno("bind " + path, bindErrno);
  if (group != static_cast<gid_t>(-1) &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), group) != 0) {
    int e = errno;
    ::unlink(path.c_str());
    return Error::fromErrno("chown " + path, e);
  }
  if (::chmod(path.c_str(), mode) != 0) {
    int e = errno;
    ::unlink(path.c_str());
    return Error::fromErrno("chmod " + path, e);
  }
  if (::listen(fd.get(), 128) != 0) {
    int e = errno;
    ::unlink(path.c_str());
    return Error::fromErrno("listen " + path, e);
  }
  auto server = start(fd.release(), options, std::move(handler), true);
  if (!server) {
    ::unlink(path.c_str());
    return server;
  }
  (*server)->unixPath_ = path;
  return server;
}

Result<std::unique_ptr<HttpServer>> HttpServer::listenTcp(const std::string& hostPort,
                                                          HttpServerOptions options,
                                                          Handler handler) {
  auto colon = hostPort.rfind(':');
  if (colon == std::string::npos) {
    return Error(ErrorCode::kInvalid, "'" + hostPort + "' is not HOST:PORT");
  }
  std::string host = hostPort.substr(0, colon);
  std::string portText = hostPort.substr(colon + 1);
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(portText, &used);
    if (used != portText.size() || port < 0 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return Error(ErrorCode::kInvalid, "'" + portText + "' is not a port");
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      return Error(ErrorCode::kInvalid, "'" + host + "' is not an IPv6 address");
    }
    family = AF_INET6;
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) {
      return Error(ErrorCode::kInvalid, "'" + host + "' is not an IPv4 address");
    }
    len = sizeof *a4;
  }
  Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::fromErrno("socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return Error::fromErrno("bind " + hostPort, errno);
  }
  if (::listen(fd.get(), 128) != 0) return Error::fromErrno("listen " + hostPort, errno);
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  uint16_t actual = family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  auto server = start(fd.release(), options, std::move(handler), false);
  if (!server) return server;
  (*server)->port_ = actual;
  return server;
}

}  // namespace chaosd::daemon
