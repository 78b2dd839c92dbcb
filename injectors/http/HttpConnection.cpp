#include "injectors/http/HttpConnection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "injectors/http/HttpLoop.h"

namespace chaosd::http {
namespace {

constexpr size_t kBlock = 16384;
constexpr size_t kMinRead = 4096;  // room made in the client's buffer before a read
// After an abort that ends the connection, what the client still sends is read and dropped for
// this long (and this much) before the close, so the close is a FIN the client reads the
// response before, not a reset that may discard it.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1 << 20;
// linux/netfilter_ipv4.h and netfilter_ipv6/ip6_tables.h (which clash with glibc's headers).
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;
// receive(): nothing to read now; the socket failed.
constexpr ssize_t kWouldBlock = -1;
constexpr ssize_t kFailed = -2;

// Blocks of kBlock bytes the thread's connections gave back, for its next ones: a request's
// buffer is then a pop and a push, not a malloc and a free.
struct BlockPool {
  std::vector<char*> free;
  ~BlockPool() {
    for (char* b : free) delete[] b;
  }
};
thread_local BlockPool pool;
constexpr size_t kPoolMax = 256;

char* takeBlock(size_t cap) {
  if (cap == kBlock && !pool.free.empty()) {
    char* b = pool.free.back();
    pool.free.pop_back();
    return b;
  }
  return new char[cap];
}

void giveBlock(char* b, size_t cap) {
  if (cap == kBlock && pool.free.size() < kPoolMax) {
    pool.free.push_back(b);
  } else {
    delete[] b;
  }
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

Connection& self(http_parser* p) { return *static_cast<Connection*>(p->data); }

}  // namespace

// ---- ByteBuffer

void ByteBuffer::append(const char* p, size_t n) {
  size_t avail = 0;
  std::memcpy(space(n, avail), p, n);
  end_ += n;
}

char* ByteBuffer::space(size_t min, size_t& avail) {
  if (block_ == nullptr) {
    cap_ = std::max(kBlock, min);
    block_ = takeBlock(cap_);
    begin_ = end_ = 0;
  } else if (cap_ - end_ < min) {
    const size_t n = size();
    if (cap_ - n >= min) {
      std::memmove(block_, block_ + begin_, n);
    } else {
      const size_t cap = std::max(cap_ * 2, n + min);
      char* b = new char[cap];
      std::memcpy(b, block_ + begin_, n);
      giveBlock(block_, cap_);
      block_ = b;
      cap_ = cap;
    }
    begin_ = 0;
    end_ = n;
  }
  avail = cap_ - end_;
  return block_ + end_;
}

void ByteBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) release();
}

void ByteBuffer::release() {
  if (block_ != nullptr) giveBlock(block_, cap_);
  block_ = nullptr;
  cap_ = begin_ = end_ = 0;
}

// ---- parser callbacks

const http_parser_settings Connection::kSettings = [] {
  http_parser_settings s{};
  s.on_message_begin = [](http_parser* p) {
    Connection& c = self(p);
    if (c.parsingRequest_) {
      c.head_.method.clear();
      c.head_.target.clear();
      c.head_.headers.clear();
      c.inValue_ = false;
    } else {
      c.bodySeen_ = 0;
    }
    return 0;
  };
  s.on_url = &Connection::onUrl;
  s.on_header_field = &Connection::onField;
  s.on_header_value = &Connection::onValue;
  s.on_headers_complete = &Connection::onHeadersComplete;
  s.on_body = &Connection::onBody;
  s.on_message_complete = &Connection::onMessageComplete;
  return s;
}();

int Connection::onUrl(http_parser* p, const char* at, size_t n) {
  self(p).head_.target.append(at, n);
  return 0;
}

int Connection::onField(http_parser* p, const char* at, size_t n) {
  Connection& c = self(p);
  if (c.head_.headers.empty() || c.inValue_) c.head_.headers.emplace_back();
  c.inValue_ = false;
  c.head_.headers.back().first.append(at, n);
  return 0;
}

int Connection::onValue(http_parser* p, const char* at, size_t n) {
  Connection& c = self(p);
  if (c.head_.headers.empty()) c.head_.headers.emplace_back();
  c.inValue_ = true;
  c.head_.headers.back().second.append(at, n);
  return 0;
}

int Connection::onHeadersComplete(http_parser* p) {
  Connection& c = self(p);
  if (p->type == HTTP_REQUEST) {
    c.head_.method = http_method_str(static_cast<http_method>(p->method));
    c.reqHeadersDone_ = true;
    return 0;
  }
  if (c.head_.method == "HEAD") return 1;  // a response to HEAD has no body
  // A tunnel from here on; http_parser cannot know the request was a CONNECT.
  if (c.head_.method == "CONNECT" && p->status_code / 100 == 2) return 2;
  return 0;
}

int Connection::onBody(http_parser* p, const char* at, size_t n) {
  Connection& c = self(p);
  if (p->type != HTTP_RESPONSE || !c.truncateAt_ || c.cutAt_) return 0;
  const auto want = static_cast<uint64_t>(*c.truncateAt_);
  if (c.bodySeen_ + n > want && want >= c.bodySeen_) {
    c.cutAt_ = static_cast<size_t>(at - c.chunkBase_) + static_cast<size_t>(want - c.bodySeen_);
    http_parser_pause(p, 1);
  }
  c.bodySeen_ += n;
  return 0;
}

int Connection::onMessageComplete(http_parser* p) {
  Connection& c = self(p);
  if (p->type == HTTP_REQUEST) {
    c.reqDone_ = true;
  } else {
    c.respDone_ = true;
  }
  http_parser_pause(p, 1);  // one message at a time: the caller sees where it ended
  return 0;
}

size_t Connection::feed(http_parser& p, const char* data, size_t n, bool& failed) {
  if (HTTP_PARSER_ERRNO(&p) == HPE_PAUSED) http_parser_pause(&p, 0);
  parsingRequest_ = p.type == HTTP_REQUEST;
  chunkBase_ = data;
  const size_t used = http_parser_execute(&p, &kSettings, data, n);
  const auto e = HTTP_PARSER_ERRNO(&p);
  failed = e != HPE_OK && e != HPE_PAUSED;
  return used;
}

// ---- life

Connection::Connection(EventLoop& loop, int client) : loop_(loop), s_(loop.shared()) {
  client_.fd = client;
  client_.writable = true;
}

Connection::~Connection() {
  for (const Side* s : {&client_, &upstream_}) {  // only open when never closed (a bug): no leak
    if (s->fd >= 0) ::close(s->fd);
  }
}

bool Connection::start() {
  if (!originalDestination(client_.fd, dst_, dstLen_) || !loop_.watch(client_.fd, *this, false)) {
    end();  // not redirected to us
    return false;
  }
  s_.counters.connections.fetch_add(1, std::memory_order_relaxed);
  int one = 1;  // an answer relayed is sent at once, never held for an ACK (Nagle)
  ::setsockopt(client_.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  newRequest();
  return true;
}

void Connection::close() {
  if (closed()) return;
  ::shutdown(client_.fd, SHUT_RDWR);
  if (upstream_.fd >= 0) ::shutdown(upstream_.fd, SHUT_RDWR);
  end();
}

void Connection::end() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  for (Side* s : {&client_, &upstream_}) {
    if (s->fd >= 0) {
      loop_.unwatch(s->fd);  // ENOENT when it never was watched: harmless
      ::close(s->fd);
    }
    s->fd = -1;
    s->out.consume(s->out.size());
  }
  in_.consume(in_.size());
  loop_.retire(*this);
}

void Connection::resetClient() {
  linger l{1, 0};  // a close the client sees as a reset (RST), as a crashed dependency would give
  ::setsockopt(client_.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void Connection::newRequest() {
  http_parser_init(&req_, HTTP_REQUEST);
  req_.data = this;
  headLen_ = 0;
  reqHeadersDone_ = reqDone_ = false;
  state_ = State::kHead;
}

bool Connection::ensureUpstream() {
  if (upstream_.fd >= 0) return true;
  const int fd = ::socket(dst_.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  upstream_.fd = fd;
  const uint32_t mark = s_.config.mark;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const bool marked = ::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0;
  const int rc = marked ? ::connect(fd, reinterpret_cast<const sockaddr*>(&dst_), dstLen_) : -1;
  if (!marked || (rc != 0 && errno != EINPROGRESS)) {
    s_.counters.upstreamFailures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  connecting_ = rc != 0;
  upstream_.writable = rc == 0;
  return loop_.watch(fd, *this, true);
}

// ---- events

void Connection::onEvent(bool upstream, uint32_t events) {
  Side& s = upstream ? upstream_ : client_;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) s.readable = true;
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) s.writable = true;
  if (upstream && connecting_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
    connecting_ = false;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(upstream_.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {  // the original destination refused or is unreachable
      s_.counters.upstreamFailures.fetch_add(1, std::memory_order_relaxed);
      resetClient();
      return end();
    }
  }
  pump();
}

void Connection::onTimer() {
  switch (state_) {
    case State::kHead:  // a head not complete in time (slow loris)
      s_.counters.headerTimeouts.fetch_add(1, std::memory_order_relaxed);
      resetClient();
      return end();
    case State::kDelayed:
      afterDelay();
      break;
    case State::kExchange:  // the response's hold is over
      holding_ = false;
      break;
    case State::kLinger:
      return end();
    default:
      return;
  }
  pump();
}

// Moves the connection on as far as its sockets allow.
void Connection::pump() {
  while (state_ != State::kClosed) {
    if (!flush(client_) || !flush(upstream_)) return end();
    bool progress = false;
    switch (state_) {
      case State::kHead:
        progress = stepHead();
        break;
      case State::kExchange:
        progress = stepExchange();
        break;
      case State::kBytes:
        progress = stepBytes();
        break;
      case State::kLinger:
        progress = stepLinger();
        break;
      case State::kFinishing:
        if (client_.out.empty()) {
          ::shutdown(client_.fd, SHUT_WR);
          return end();
        }
        break;
      default:
        break;
    }
    if (!progress) {
      if (failed_) end();
      return;
    }
  }
}

bool Connection::flush(Side& s) {
  if (failed_) return false;
  while (!s.out.empty() && s.writable) {
    const ssize_t w = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      s.writable = false;
      break;
    }
    if (w < 0) return false;
    if (static_cast<size_t>(w) < s.out.size()) s.writable = false;  // full: EPOLLOUT follows
    s.out.consume(static_cast<size_t>(w));
  }
  if (s.out.empty() && s.shutAfterFlush && s.fd >= 0 && !connectingSide(s)) {
    ::shutdown(s.fd, SHUT_WR);
    s.shutAfterFlush = false;
  }
  return true;
}

void Connection::send(Side& to, const char* p, size_t n) {
  if (n == 0 || failed_) return;
  if (to.out.empty() && to.writable) {
    ssize_t w = 0;
    do {
      w = ::send(to.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN) {
      failed_ = true;
      return;
    }
    if (w < 0) w = 0;
    if (static_cast<size_t>(w) == n) return;
    to.writable = false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  to.out.append(p, n);
}

ssize_t Connection::receive(Side& from, char* p, size_t n) {
  ssize_t r = 0;
  do {
    r = ::recv(from.fd, p, n, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    from.readable = false;
    return errno == EAGAIN ? kWouldBlock : kFailed;
  }
  // A short read emptied the socket: edge-triggered epoll reports the next arrival.
  if (static_cast<size_t>(r) < n) from.readable = false;
  if (r == 0) from.eof = true;
  return r;
}

// ---- states

bool Connection::stepHead() {
  // Bytes the dependency sends unasked between requests go to the client; its close ends it.
  if (upstream_.fd >= 0 && upstream_.readable && client_.out.empty() && !connecting_) {
    auto& buf = loop_.scratch();
    const ssize_t r = receive(upstream_, buf.data(), buf.size());
    if (r == kFailed) {
      end();
      return false;
    }
    if (r == 0) {  // what the client still has queued goes first
      state_ = State::kFinishing;
      return true;
    }
    if (r > 0) {
      send(client_, buf.data(), static_cast<size_t>(r));
      return true;
    }
  }
  if (headLen_ < in_.size()) {
    bool failed = false;
    headLen_ += feed(req_, in_.data() + headLen_, in_.size() - headLen_, failed);
    if (failed) {
      auto& c = requests_ == 0 ? s_.counters.nonHttpConnections : s_.counters.malformed;
      c.fetch_add(1, std::memory_order_relaxed);
      toBytes(requests_ == 0);
      return true;
    }
    if (reqHeadersDone_) {
      loop_.disarm(*this);
      decide();
      return true;
    }
  }
  // A head has begun: it must end within headerTimeout (an idle keep-alive connection may wait).
  if (!in_.empty() && !timer) loop_.arm(*this, Clock::now() + s_.config.headerTimeout);
  if (!client_.readable || client_.eof) return false;
  size_t avail = 0;
  char* at = in_.space(kMinRead, avail);
  const ssize_t r = receive(client_, at, avail);
  if (r > 0) {
    in_.commit(static_cast<size_t>(r));
    return true;
  }
  in_.consume(0);  // gives back a block taken for nothing
  if (r == 0) {
    if (in_.empty()) {
      state_ = State::kFinishing;  // the last answer may still be on its way
    } else {
      toBytes(false);  // a request cut short: relayed as bytes
    }
    return true;
  }
  if (r == kFailed) end();
  return false;
}

void Connection::decide() {
  s_.counters.requests.fetch_add(1, std::memory_order_relaxed);
  ++requests_;
  decision_ = s_.config.policy->decide(head_, [this] { return loop_.draw(); });
  if (decision_.delay.count() > 0) {
    state_ = State::kDelayed;
    loop_.arm(*this, Clock::now() + decision_.delay);
    return;
  }
  afterDelay();
}

void Connection::afterDelay() {
  state_ = State::kHead;
  if (decision_.reset) {
    resetClient();
    return end();
  }
  if (decision_.abort != nullptr) {
    const bool close = !reqDone_ || !http_should_keep_alive(&req_);
    const std::string out = abortResponse(*decision_.abort, head_.method == "HEAD", close);
    send(client_, out.data(), out.size());
    if (close) {
      state_ = State::kLinger;
      return;
    }
    in_.consume(headLen_);
    return newRequest();
  }
  if (!ensureUpstream()) {
    resetClient();
    return end();
  }
  send(upstream_, in_.data(), headLen_);
  in_.consume(headLen_);
  headLen_ = 0;
  truncateAt_ = decision_.truncateAt;
  responseDelay_ = decision_.responseDelay;
  http_parser_init(&resp_, HTTP_RESPONSE);
  resp_.data = this;
  respDone_ = false;
  cutAt_.reset();
  state_ = State::kExchange;
}

bool Connection::stepExchange() {
  bool progress = false;
  // The rest of the request (its body), as it comes, never faster than the dependency takes it.
  if (!reqDone_ && upstream_.out.empty()) {
    if (!in_.empty()) {
      bool failed = false;
      const size_t used = feed(req_, in_.data(), in_.size(), failed);
      if (failed) {
        s_.counters.malformed.fetch_add(1, std::memory_order_relaxed);
        toBytes(false);
        return true;
      }
      send(upstream_, in_.data(), used);
      in_.consume(used);
      if (!reqDone_ && !in_.empty()) reqDone_ = true;  // an upgrade's raw bytes after the head
      progress = true;
    } else if (client_.readable && !client_.eof) {
      size_t avail = 0;
      char* at = in_.space(kMinRead, avail);
      const ssize_t r = receive(client_, at, avail);
      if (r > 0) {
        in_.commit(static_cast<size_t>(r));
        progress = true;
      } else {
        in_.consume(0);
        if (r == kFailed) {
          end();
          return false;
        }
        if (r == 0) {
          upstream_.shutAfterFlush = true;
          progress = true;
        }
      }
    }
  }
  // The response, as it comes, never faster than the client takes it.
  if (upstream_.readable && client_.out.empty() && !holding_ && !connecting_) {
    if (responseDelay_.count() > 0) {  // its first bytes are here: held, once
      holding_ = true;
      loop_.arm(*this, Clock::now() + responseDelay_);
      responseDelay_ = std::chrono::nanoseconds(0);
      return progress;
    }
    auto& buf = loop_.scratch();
    const ssize_t r = receive(upstream_, buf.data(), buf.size());
    if (r == kFailed) {
      end();
      return false;
    }
    if (r == 0) {  // a body read until close ends here
      bool failed = false;
      feed(resp_, nullptr, 0, failed);
      state_ = State::kFinishing;
      return true;
    }
    if (r > 0) {
      if (!relayResponse(buf.data(), static_cast<size_t>(r))) return true;
      progress = true;
    }
  }
  if (reqDone_ && respDone_) {
    if (req_.upgrade != 0 && (resp_.upgrade != 0 || resp_.status_code / 100 == 2)) {
      s_.counters.upgraded.fetch_add(1, std::memory_order_relaxed);
      toBytes(false);
    } else if (!http_should_keep_alive(&resp_) || !http_should_keep_alive(&req_)) {
      state_ = State::kFinishing;
    } else {
      newRequest();
    }
    return true;
  }
  return progress;
}

// Forwards response bytes to the client, through interim (1xx) responses, cutting the body
// where a truncation says. False when the connection left the exchange.
bool Connection::relayResponse(const char* p, size_t n) {
  size_t off = 0;
  while (off < n) {
    if (respDone_) {  // after the final response: bytes nobody asked for, passed on
      send(client_, p + off, n - off);
      return true;
    }
    bool failed = false;
    const size_t used = feed(resp_, p + off, n - off, failed);
    if (failed) {  // not an HTTP response: the rest of the connection as bytes
      s_.counters.malformed.fetch_add(1, std::memory_order_relaxed);
      send(client_, p + off, n - off);
      toBytes(false);
      return false;
    }
    if (cutAt_) {
      send(client_, p + off, *cutAt_);
      s_.config.policy->countTruncated(decision_.ruleIndex);
      state_ = State::kFinishing;
      return false;
    }
    send(client_, p + off, used);
    off += used;
    if (respDone_ && resp_.status_code / 100 == 1 && resp_.upgrade == 0) {
      http_parser_init(&resp_, HTTP_RESPONSE);  // 100 Continue: the final one follows
      resp_.data = this;
      respDone_ = false;
    } else if (respDone_ && resp_.upgrade != 0) {
      send(client_, p + off, n - off);
      return true;
    } else if (used == 0) {
      state_ = State::kFinishing;
      return false;
    }
  }
  return true;
}

void Connection::toBytes(bool nonHttp) {
  loop_.disarm(*this);
  nonHttp_ = nonHttp;
  if (!ensureUpstream()) {
    resetClient();
    return end();
  }
  if (nonHttp_) s_.counters.nonHttpBytes.fetch_add(in_.size(), std::memory_order_relaxed);
  send(upstream_, in_.data(), in_.size());
  in_.consume(in_.size());
  headLen_ = 0;
  if (client_.eof) upstream_.shutAfterFlush = true;
  state_ = State::kBytes;
}

bool Connection::relayOne(Side& from, Side& to) {
  if (from.eof || !from.readable || !to.out.empty() || (&from == &upstream_ && connecting_)) {
    return false;
  }
  auto& buf = loop_.scratch();
  const ssize_t r = receive(from, buf.data(), buf.size());
  if (r > 0) {
    if (nonHttp_) s_.counters.nonHttpBytes.fetch_add(static_cast<uint64_t>(r));
    send(to, buf.data(), static_cast<size_t>(r));
    return true;
  }
  if (r == 0) {
    to.shutAfterFlush = true;
    return true;
  }
  if (r == kFailed) end();
  return false;
}

bool Connection::stepBytes() {
  bool progress = relayOne(client_, upstream_);
  if (closed()) return false;
  progress = relayOne(upstream_, client_) || progress;
  if (closed()) return false;
  if (client_.eof && upstream_.eof && client_.out.empty() && upstream_.out.empty()) {
    end();
    return false;
  }
  return progress;
}

bool Connection::stepLinger() {
  if (!client_.out.empty()) return false;  // the answer leaves first
  if (!lingering_) {
    lingering_ = true;
    ::shutdown(client_.fd, SHUT_WR);
    loop_.arm(*this, Clock::now() + kLingerTime);
  }
  if (!client_.readable) return false;
  auto& buf = loop_.scratch();
  const ssize_t r = receive(client_, buf.data(), buf.size());
  if (r > 0) {
    lingerDropped_ += static_cast<size_t>(r);
    if (lingerDropped_ < kLingerBytes) return true;
  }
  if (r != kWouldBlock) end();
  return false;
}

bool Connection::connectingSide(const Side& s) const { return &s == &upstream_ && connecting_; }

// ---- shared

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

}  // namespace chaosd::http
