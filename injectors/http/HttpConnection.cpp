#include "injectors/http/HttpConnection.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <random>
#include <string>

namespace chaosd::http {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kChunk = 16384;
// After an abort that ends the connection, what the client still sends is read and dropped for
// this long (and this much) before the close, so the close is a FIN the client reads the
// response before, not a reset that may discard it.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1 << 20;
// linux/netfilter_ipv4.h and netfilter_ipv6/ip6_tables.h (which clash with glibc's headers).
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;

bool sendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The destination the client asked for, from the redirect's conntrack entry.
bool originalDestination(int fd, sockaddr_storage& out, socklen_t& len) {
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) return false;
  bool v4 = peer.ss_family == AF_INET;
  if (peer.ss_family == AF_INET6) {
    v4 = IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr);
  }
  out = {};
  if (v4) {
    len = sizeof(sockaddr_in);
    return ::getsockopt(fd, SOL_IP, kSoOriginalDst, &out, &len) == 0;
  }
  len = sizeof(sockaddr_in6);
  return ::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &out, &len) == 0;
}

class Connection {
 public:
  Connection(std::shared_ptr<ProxyShared> shared, int client)
      : shared_(std::move(shared)), s_(*shared_), client_(client), rng_(std::random_device{}()) {
    settings_.on_message_begin = [](http_parser* p) { return self(p).onBegin(); };
    settings_.on_url = [](http_parser* p, const char* at, size_t n) {
      self(p).head_.target.append(at, n);
      return 0;
    };
    settings_.on_header_field = [](http_parser* p, const char* at, size_t n) {
      return self(p).onField(at, n);
    };
    settings_.on_header_value = [](http_parser* p, const char* at, size_t n) {
      return self(p).onValue(at, n);
    };
    settings_.on_headers_complete = [](http_parser* p) { return self(p).onHeadersComplete(p); };
    settings_.on_body = [](http_parser* p, const char* at, size_t n) {
      return self(p).onBody(p, at, n);
    };
    settings_.on_message_complete = [](http_parser* p) {
      if (p->type == HTTP_REQUEST) {
        self(p).reqDone_ = true;
      } else {
        self(p).respDone_ = true;
      }
      http_parser_pause(p, 1);  // one message at a time: the caller sees where it ended
      return 0;
    };
  }

  ~Connection() {
    if (upstream_ >= 0) s_.close(upstream_);
    s_.close(client_);
  }

  void run() {
    if (!originalDestination(client_, dst_, dstLen_)) return;  // not redirected to us
    s_.counters.connections.fetch_add(1, std::memory_order_relaxed);
    int one = 1;  // an answer relayed is sent at once, never held for an ACK (Nagle)
    ::setsockopt(client_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (!s_.stopping.load()) {
      if (!readHead()) return;
      s_.counters.requests.fetch_add(1, std::memory_order_relaxed);
      ++requests_;
      const Decision d = s_.config.policy->decide(head_, [this] { return uniform_(rng_); });
      if (d.delay.count() > 0 && !sleepFor(d.delay)) return;
      if (d.reset) return resetClient();
      if (d.abort != nullptr) {
        const bool close = !reqDone_ || !http_should_keep_alive(&req_);
        const std::string out = abortResponse(*d.abort, head_.method == "HEAD", close);
        if (!sendAll(client_, out.data(), out.size())) return;
        if (close) return lingerClose();
        continue;
      }
      if (!ensureUpstream()) return resetClient();
      if (!sendAll(upstream_, held_.data(), held_.size())) return;
      ruleIndex_ = d.ruleIndex;
      truncateAt_ = d.truncateAt;
      responseDelay_ = d.responseDelay;
      if (!exchange()) return;
    }
  }

 private:
  static Connection& self(http_parser* p) { return *static_cast<Connection*>(p->data); }

  int onBegin() {
    if (parsingRequest_) {
      head_ = RequestHead{};
      inValue_ = false;
    } else {
      bodySeen_ = 0;
    }
    return 0;
  }
  int onField(const char* at, size_t n) {
    if (head_.headers.empty() || inValue_) head_.headers.emplace_back();
    inValue_ = false;
    head_.headers.back().first.append(at, n);
    return 0;
  }
  int onValue(const char* at, size_t n) {
    if (head_.headers.empty()) head_.headers.emplace_back();
    inValue_ = true;
    head_.headers.back().second.append(at, n);
    return 0;
  }
  int onHeadersComplete(http_parser* p) {
    if (p->type == HTTP_REQUEST) {
      head_.method = http_method_str(static_cast<http_method>(p->method));
      reqHeadersDone_ = true;
      return 0;
    }
    if (head_.method == "HEAD") return 1;  // a response to HEAD has no body
    // A tunnel from here on; http_parser cannot know the request was a CONNECT.
    if (head_.method == "CONNECT" && p->status_code / 100 == 2) return 2;
    return 0;
  }
  int onBody(http_parser* p, const char* at, size_t n) {
    if (p->type != HTTP_RESPONSE || !truncateAt_ || cutAt_) return 0;
    const auto want = static_cast<uint64_t>(*truncateAt_);
    if (bodySeen_ + n > want && want >= bodySeen_) {
      cutAt_ = static_cast<size_t>(at - chunkBase_) + static_cast<size_t>(want - bodySeen_);
      http_parser_pause(p, 1);
    }
    bodySeen_ += n;
    return 0;
  }

  // Feeds bytes to a parser; how many it took. `failed`: they are not (this part of) HTTP.
  size_t feed(http_parser& p, const char* data, size_t n, bool& failed) {
    if (HTTP_PARSER_ERRNO(&p) == HPE_PAUSED) http_parser_pause(&p, 0);
    parsingRequest_ = p.type == HTTP_REQUEST;
    chunkBase_ = data;
    const size_t used = http_parser_execute(&p, &settings_, data, n);
    const auto e = HTTP_PARSER_ERRNO(&p);
    failed = e != HPE_OK && e != HPE_PAUSED;
    return used;
  }

  // Polls the client, the upstream (when open) and the stop event. -1: stopping; 0: timeout.
  int wait(bool client, bool upstream, int timeoutMs, short& cre, short& ure) {
    std::array<pollfd, 3> fds{{{s_.stopEvent.get(), POLLIN, 0},
                               {client ? client_ : -1, POLLIN, 0},
                               {upstream ? upstream_ : -1, POLLIN, 0}}};
    int n = 0;
    do {
      n = ::poll(fds.data(), fds.size(), timeoutMs);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || fds[0].revents != 0 || s_.stopping.load()) return -1;
    cre = fds[1].revents;
    ure = fds[2].revents;
    return n;
  }

  // Reads into `to`; 0 at EOF, -1 on error.
  static ssize_t readInto(int fd, std::string& to) {
    char buf[kChunk];
    ssize_t n = 0;
    do {
      n = ::recv(fd, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) to.append(buf, static_cast<size_t>(n));
    return n;
  }

  // Reads and parses until a request's head is complete, keeping every byte taken in held_.
  // False when the connection is done (closed, relayed as bytes, timed out, stopping).
  bool readHead() {
    http_parser_init(&req_, HTTP_REQUEST);
    req_.data = this;
    held_.clear();
    reqHeadersDone_ = reqDone_ = false;
    head_ = RequestHead{};
    Clock::time_point started{};
    for (;;) {
      if (!in_.empty()) {
        if (started == Clock::time_point{}) started = Clock::now();
        bool failed = false;
        const size_t used = feed(req_, in_.data(), in_.size(), failed);
        held_.append(in_, 0, used);
        in_.erase(0, used);
        if (failed) {
          auto& c = requests_ == 0 ? s_.counters.nonHttpConnections : s_.counters.malformed;
          c.fetch_add(1, std::memory_order_relaxed);
          relayBytes(held_ + in_, requests_ == 0);
          return false;
        }
        if (reqHeadersDone_) return true;
      }
      int timeoutMs = -1;
      if (started != Clock::time_point{}) {
        const auto left = s_.config.headerTimeout - (Clock::now() - started);
        timeoutMs = static_cast<int>(
            std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
      }
      short cre = 0, ure = 0;
      const int n = wait(true, upstream_ >= 0, timeoutMs, cre, ure);
      if (n < 0) return false;
      if (n == 0) {
        s_.counters.headerTimeouts.fetch_add(1, std::memory_order_relaxed);
        resetClient();
        return false;
      }
      if (ure != 0) {  // the server closed its side (or sent bytes nobody asked for)
        std::string extra;
        if (readInto(upstream_, extra) <= 0) return false;
        if (!sendAll(client_, extra.data(), extra.size())) return false;
      }
      if (cre != 0) {
        const ssize_t r = readInto(client_, in_);
        if (r < 0) return false;
        if (r == 0) {
          if (!held_.empty()) relayBytes(held_, false);  // a request cut short: as bytes
          return false;
        }
      }
    }
  }

  // Relays the rest of the request and its response; true when the connection goes on.
  bool exchange() {
    http_parser_init(&resp_, HTTP_RESPONSE);
    resp_.data = this;
    respDone_ = false;
    cutAt_.reset();
    bool clientEof = false;
    std::string out;
    while (!(reqDone_ && respDone_)) {
      if (!reqDone_ && !in_.empty()) {
        bool failed = false;
        const size_t used = feed(req_, in_.data(), in_.size(), failed);
        if (failed) {
          s_.counters.malformed.fetch_add(1, std::memory_order_relaxed);
          relayBytes(in_, false);
          return false;
        }
        if (!sendAll(upstream_, in_.data(), used)) return false;
        in_.erase(0, used);
        if (!reqDone_ && !in_.empty()) {  // an upgrade's raw bytes after the head
          reqDone_ = true;
        }
        continue;
      }
      short cre = 0, ure = 0;
      if (reqDone_ || clientEof) {
        // Only the dependency's answer is awaited: read it at once, a poll fewer per request
        // (stop() shuts the socket down, which ends this read).
        if (s_.stopping.load()) return false;
        ure = POLLIN;
      } else if (wait(true, true, -1, cre, ure) < 0) {
        return false;
      }
      if (cre != 0) {
        const ssize_t r = readInto(client_, in_);
        if (r < 0) return false;
        if (r == 0) {
          clientEof = true;
          ::shutdown(upstream_, SHUT_WR);
        }
      }
      if (ure == 0) continue;
      std::string& got = got_;  // reused: no allocation per response
      got.clear();
      const ssize_t r = readInto(upstream_, got);
      if (r < 0) return false;
      if (r == 0) {  // a body read until close ends here
        bool failed = false;
        feed(resp_, nullptr, 0, failed);
        ::shutdown(client_, SHUT_WR);
        return false;
      }
      if (responseDelay_.count() > 0) {  // the response's first bytes are held, once
        if (!sleepFor(responseDelay_)) return false;
        responseDelay_ = std::chrono::nanoseconds(0);
      }
      if (!relayResponse(got)) return false;
    }
    if (req_.upgrade != 0 && (resp_.upgrade != 0 || resp_.status_code / 100 == 2)) {
      s_.counters.upgraded.fetch_add(1, std::memory_order_relaxed);
      relayBytes(in_, false);
      return false;
    }
    if (!http_should_keep_alive(&resp_) || !http_should_keep_alive(&req_)) {
      ::shutdown(client_, SHUT_WR);
      return false;
    }
    return true;
  }

  // Forwards response bytes to the client, through interim (1xx) responses, cutting the body
  // where a truncation says. False when the connection ends.
  bool relayResponse(const std::string& got) {
    size_t off = 0;
    while (off < got.size()) {
      if (respDone_) {  // after the final response: bytes nobody asked for, passed on
        return sendAll(client_, got.data() + off, got.size() - off);
      }
      bool failed = false;
      const size_t used = feed(resp_, got.data() + off, got.size() - off, failed);
      if (failed) {  // not an HTTP response: the rest of the connection as bytes
        s_.counters.malformed.fetch_add(1, std::memory_order_relaxed);
        if (!sendAll(client_, got.data() + off, got.size() - off)) return false;
        relayBytes(in_, false);
        return false;
      }
      if (cutAt_) {
        sendAll(client_, got.data() + off, *cutAt_);
        s_.config.policy->countTruncated(ruleIndex_);
        ::shutdown(client_, SHUT_WR);
        return false;
      }
      if (!sendAll(client_, got.data() + off, used)) return false;
      off += used;
      if (respDone_ && resp_.status_code / 100 == 1 && resp_.upgrade == 0) {
        http_parser_init(&resp_, HTTP_RESPONSE);  // 100 Continue: the final one follows
        resp_.data = this;
        respDone_ = false;
      } else if (respDone_ && resp_.upgrade != 0) {
        return sendAll(client_, got.data() + off, got.size() - off);
      } else if (used == 0) {
        return false;
      }
    }
    return true;
  }

  // Relays everything both ways as bytes until both sides closed; `pending` goes upstream
  // first. Counted as non-HTTP bytes when `nonHttp`.
  void relayBytes(const std::string& pending, bool nonHttp) {
    if (!ensureUpstream()) return resetClient();
    auto count = [&](size_t n) {
      if (nonHttp) s_.counters.nonHttpBytes.fetch_add(n, std::memory_order_relaxed);
    };
    if (!sendAll(upstream_, pending.data(), pending.size())) return;
    count(pending.size());
    in_.clear();
    bool clientOpen = true, upstreamOpen = true;
    while (clientOpen || upstreamOpen) {
      short cre = 0, ure = 0;
      if (wait(clientOpen, upstreamOpen, -1, cre, ure) < 0) return;
      for (auto [from, to, open] : {std::tuple{client_, upstream_, &clientOpen},
                                    std::tuple{upstream_, client_, &upstreamOpen}}) {
        if ((from == client_ ? cre : ure) == 0) continue;
        std::string got;
        const ssize_t r = readInto(from, got);
        if (r < 0) return;
        if (r == 0) {
          *open = false;
          ::shutdown(to, SHUT_WR);
          continue;
        }
        if (!sendAll(to, got.data(), got.size())) return;
        count(got.size());
      }
    }
  }

  bool ensureUpstream() {
    if (upstream_ >= 0) return true;
    const int fd = ::socket(dst_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    s_.track(fd);
    upstream_ = fd;
    const uint32_t mark = s_.config.mark;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0 ||
        ::connect(fd, reinterpret_cast<const sockaddr*>(&dst_), dstLen_) != 0) {
      s_.counters.upstreamFailures.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  bool sleepFor(std::chrono::nanoseconds d) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
    pollfd p{s_.stopEvent.get(), POLLIN, 0};
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), ms)));
      if (n > 0 || s_.stopping.load()) return false;
    }
    return true;
  }

  // A close the client sees as a reset (RST), as a crashed dependency would give.
  void resetClient() {
    linger l{1, 0};
    ::setsockopt(client_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  void lingerClose() {
    ::shutdown(client_, SHUT_WR);
    const auto until = Clock::now() + kLingerTime;
    size_t dropped = 0;
    while (dropped < kLingerBytes && Clock::now() < until) {
      short cre = 0, ure = 0;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      if (wait(true, false, static_cast<int>(left.count()), cre, ure) <= 0) return;
      std::string sink;
      const ssize_t r = readInto(client_, sink);
      if (r <= 0) return;
      dropped += static_cast<size_t>(r);
    }
  }

  std::shared_ptr<ProxyShared> shared_;
  ProxyShared& s_;
  int client_;
  int upstream_ = -1;
  sockaddr_storage dst_{};
  socklen_t dstLen_ = 0;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};

  http_parser_settings settings_{};
  http_parser req_{};
  http_parser resp_{};
  bool parsingRequest_ = true;
  const char* chunkBase_ = nullptr;
  RequestHead head_;
  bool inValue_ = false;
  bool reqHeadersDone_ = false, reqDone_ = false, respDone_ = false;
  std::string got_;   // the dependency's bytes read last
  std::string in_;    // bytes read from the client, not yet parsed
  std::string held_;  // the current request's bytes parsed so far (sent once decided)
  uint64_t requests_ = 0;
  int ruleIndex_ = -1;
  std::optional<int64_t> truncateAt_;
  std::chrono::nanoseconds responseDelay_{0};
  uint64_t bodySeen_ = 0;
  std::optional<size_t> cutAt_;
};

}  // namespace

void ProxyShared::track(int fd) {
  std::lock_guard lock(mu);
  fds.insert(fd);
}

void ProxyShared::close(int fd) {
  std::lock_guard lock(mu);
  fds.erase(fd);
  ::close(fd);
}

ProxyStats ProxyShared::stats() const {
  ProxyStats s;
  s.connections = counters.connections.load();
  s.refused = counters.refused.load();
  s.requests = counters.requests.load();
  s.nonHttpConnections = counters.nonHttpConnections.load();
  s.nonHttpBytes = counters.nonHttpBytes.load();
  s.upgraded = counters.upgraded.load();
  s.malformed = counters.malformed.load();
  s.headerTimeouts = counters.headerTimeouts.load();
  s.upstreamFailures = counters.upstreamFailures.load();
  return s;
}

void serveConnection(const std::shared_ptr<ProxyShared>& shared, int client) {
  Connection(shared, client).run();
}

}  // namespace chaosd::http
