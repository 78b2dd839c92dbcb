#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

#include "chaosd/base/Fd.h"
#include "injectors/http/HttpKernel.h"

// One client connection of http.fault's proxy, served on a thread of its own inside the target's
// network namespace (HttpProxy.cpp starts it). The connection is relayed request by request:
// the head is parsed (libhttp_parser) and decided (HttpPolicy.h) before any byte of the request
// goes upstream; the body and the response are then streamed as they arrive, never buffered
// whole, and the raw bytes pass unchanged (the proxy rewrites nothing it forwards). Pipelined
// requests are taken one at a time: the next head is read once the response to the previous one
// has been relayed, so an abort's response keeps its place in the order. Bytes that do not parse
// as HTTP (TLS, another protocol), and what follows a 101 or a CONNECT, are relayed as bytes.
namespace chaosd::http {

// What the proxy's threads share; held by each thread, so it outlives the last one.
struct ProxyShared {
  ProxyConfig config;
  Fd stopEvent;  // an eventfd, readable once stopping: every wait polls it
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable idle;  // signalled when `active` drops to 0
  size_t active = 0;             // connection threads running
  std::set<int> fds;             // open sockets, shut down by stop() to wake blocked calls

  struct Counters {
    std::atomic<uint64_t> connections{0}, refused{0}, requests{0}, nonHttpConnections{0},
        nonHttpBytes{0}, upgraded{0}, malformed{0}, headerTimeouts{0}, upstreamFailures{0};
  } counters;

  void track(int fd);
  // Forgets and closes fd under the lock, so stop() never shuts down a reused number.
  void close(int fd);
  ProxyStats stats() const;
};

// Serves one accepted client socket until either side closes or the proxy stops; closes it.
void serveConnection(const std::shared_ptr<ProxyShared>& shared, int client);

}  // namespace chaosd::http
