#pragma once

#include <http_parser.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "injectors/http/HttpKernel.h"

// One client connection of http.fault's proxy: a state machine driven by its event loop
// (HttpLoop.h), non-blocking sockets, never a thread of its own. The connection is relayed
// request by request: the head is parsed (libhttp_parser) and decided (HttpPolicy.h) before any
// byte of the request goes upstream; the body and the response are then streamed as they arrive,
// never buffered whole, and the raw bytes pass unchanged (the proxy rewrites nothing it
// forwards). Pipelined requests are taken one at a time: the next head is parsed once the
// response to the previous one has been relayed, so an abort's response keeps its place in the
// order. Bytes that do not parse as HTTP (TLS, another protocol), and what follows a 101 or a
// CONNECT, are relayed as bytes. Backpressure: a side is not read while what was read from it
// is still waiting for the other side to take it, so a connection holds at most one read's worth.
namespace chaosd::http {

using Clock = std::chrono::steady_clock;

// What the proxy's loops share; held by each loop, so it outlives the last one.
struct ProxyShared {
  ProxyConfig config;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> active{0};  // client connections held, against config.maxConnections

  struct Counters {
    std::atomic<uint64_t> connections{0}, refused{0}, requests{0}, nonHttpConnections{0},
        nonHttpBytes{0}, upgraded{0}, malformed{0}, headerTimeouts{0}, upstreamFailures{0};
  } counters;

  ProxyStats stats() const;
};

// Bytes waiting in a heap block that is taken when the first byte arrives and given back (to a
// per-thread pool) when the last one leaves, so an idle connection holds no buffer.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { release(); }

  bool empty() const { return begin_ == end_; }
  size_t size() const { return end_ - begin_; }
  const char* data() const { return block_ + begin_; }
  void append(const char* p, size_t n);
  // At least `min` writable bytes at the end (growing the block); commit() what was written.
  char* space(size_t min, size_t& avail);
  void commit(size_t n) { end_ += n; }
  void consume(size_t n);  // gives the block back once empty

 private:
  void release();
  char* block_ = nullptr;
  size_t cap_ = 0, begin_ = 0, end_ = 0;
};

class EventLoop;

class Connection {
 public:
  // `client`: accepted, non-blocking. start() says whether it is served (it was redirected).
  Connection(EventLoop& loop, int client);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  bool start();
  // The loop's report of epoll events on one of its sockets.
  void onEvent(bool upstream, uint32_t events);
  // The connection's timer (armed through the loop) fired.
  void onTimer();
  // Ends it at once (the proxy stops): both sockets shut down and closed.
  void close();
  bool closed() const { return state_ == State::kClosed; }

  // The loop's bookkeeping: where its timer sits, its place in the loop's list.
  std::optional<std::multimap<Clock::time_point, Connection*>::iterator> timer;
  size_t slot = 0;

 private:
  // kFinishing: the client gets what is queued for it, then the connection closes.
  enum class State : uint8_t { kHead, kDelayed, kExchange, kBytes, kLinger, kFinishing, kClosed };
  struct Side {
    int fd = -1;
    bool readable = false, writable = false, eof = false, shutAfterFlush = false;
    ByteBuffer out;  // what this side has not taken yet
  };

  static int onUrl(http_parser* p, const char* at, size_t n);
  static int onField(http_parser* p, const char* at, size_t n);
  static int onValue(http_parser* p, const char* at, size_t n);
  static int onHeadersComplete(http_parser* p);
  static int onBody(http_parser* p, const char* at, size_t n);
  static int onMessageComplete(http_parser* p);
  static const http_parser_settings kSettings;

  void pump();
  bool flush(Side& s);
  void send(Side& to, const char* p, size_t n);
  ssize_t receive(Side& from, char* p, size_t n);
  bool connectingSide(const Side& s) const;
  bool stepHead();
  void decide();
  void afterDelay();
  bool stepExchange();
  bool relayResponse(const char* p, size_t n);
  bool stepBytes();
  bool relayOne(Side& from, Side& to);
  bool stepLinger();
  void toBytes(bool nonHttp);
  bool ensureUpstream();
  size_t feed(http_parser& p, const char* data, size_t n, bool& failed);
  void newRequest();
  void resetClient();
  void end();  // closes both sockets; the loop frees the connection after its batch

  EventLoop& loop_;
  ProxyShared& s_;
  Side client_, upstream_;
  State state_ = State::kHead;
  bool connecting_ = false, nonHttp_ = false, holding_ = false, lingering_ = false;
  bool failed_ = false;  // a send failed: the connection ends
  bool reqHeadersDone_ = false, reqDone_ = false, respDone_ = false, inValue_ = false;
  bool parsingRequest_ = true;
  sockaddr_storage dst_{};
  socklen_t dstLen_ = 0;

  http_parser req_{};
  http_parser resp_{};
  const char* chunkBase_ = nullptr;
  RequestHead head_;
  ByteBuffer in_;       // the client's bytes not yet forwarded or answered
  size_t headLen_ = 0;  // of in_: the current request's bytes parsed so far
  uint64_t requests_ = 0;
  Decision decision_;
  std::optional<int64_t> truncateAt_;
  std::chrono::nanoseconds responseDelay_{0};
  uint64_t bodySeen_ = 0;
  std::optional<size_t> cutAt_;
  size_t lingerDropped_ = 0;
};

}  // namespace chaosd::http
