#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "chaosd/base/Result.h"
#include "injectors/http/HttpPolicy.h"
#include "injectors/http/HttpSockets.h"

// The kernel surface of http.fault besides its nftables table (reached through NftKernel): the
// proxy the redirected connections reach. The injector holds only these, so its apply, revert
// and failure paths run against fakes in the unit tier.
namespace chaosd::http {

struct ProxyConfig {
  std::string netnsPath;  // "" for the caller's namespace
  uint32_t mark = 0;      // SO_MARK of the proxy's upstream connections (the rules skip it)
  std::shared_ptr<Policy> policy;
  size_t maxConnections = 1024;  // client connections at once; more are reset at accept
  std::chrono::nanoseconds headerTimeout{std::chrono::seconds(10)};  // a request's head
  size_t threads = 0;  // event loops; 0: one per CPU this process may run on (at most 8)
};

// What the proxy saw besides the per-rule counts.
struct ProxyStats {
  uint64_t connections = 0;         // client connections accepted and served
  uint64_t refused = 0;             // reset at accept: over maxConnections
  uint64_t requests = 0;            // request heads parsed
  uint64_t nonHttpConnections = 0;  // relayed as bytes: not HTTP (TLS, another protocol)
  uint64_t nonHttpBytes = 0;        // bytes relayed on those, both ways
  uint64_t upgraded = 0;            // relayed as bytes after a 101 or CONNECT
  uint64_t malformed = 0;           // a request that stopped parsing mid-way (relayed as bytes)
  uint64_t headerTimeouts = 0;      // closed: a head not complete within headerTimeout
  uint64_t upstreamFailures = 0;    // the original destination refused or unreachable
  nlohmann::json toJson() const;
};

// A running proxy: a listening socket in the namespace and the event loops serving it.
class Proxy {
 public:
  virtual ~Proxy() = default;
  // The port it listens on, in its namespace (the redirect's target).
  virtual uint16_t port() const = 0;
  // Closes the listener and every connection (clients see a close or a reset), joins the
  // loops' threads. Idempotent; the final counts.
  virtual ProxyStats stop() = 0;
};

class HttpKernel {
 public:
  virtual ~HttpKernel() = default;
  // Listens on a free port of the namespace (both families) and starts serving it.
  virtual Result<std::unique_ptr<Proxy>> startProxy(ProxyConfig config) = 0;
  // The namespace's established TCP connections that `match` holds (sock_diag).
  virtual Result<std::vector<OpenConnection>> openConnections(const std::string& netnsPath,
                                                              const ConnectionMatch& match) = 0;
  // Destroys them (SOCK_DESTROY); how many were. Those closed meanwhile are skipped.
  virtual Result<size_t> resetConnections(const std::string& netnsPath,
                                          const std::vector<OpenConnection>& connections) = 0;
};

// The kernel's: event-loop threads of this process inside the namespace (HttpProxy.cpp).
class ThreadedHttpKernel final : public HttpKernel {
 public:
  Result<std::unique_ptr<Proxy>> startProxy(ProxyConfig config) override;
  Result<std::vector<OpenConnection>> openConnections(const std::string& netnsPath,
                                                      const ConnectionMatch& match) override;
  Result<size_t> resetConnections(const std::string& netnsPath,
                                  const std::vector<OpenConnection>& connections) override;
};

}  // namespace chaosd::http
