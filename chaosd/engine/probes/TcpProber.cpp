#include "chaosd/engine/probes/TcpProber.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "chaosd/base/Fd.h"

namespace chaosd {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

std::string addressText(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
  inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
}

std::vector<SocketAddress> toAddresses(const addrinfo* list) {
  std::vector<SocketAddress> out;
  for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress a;
    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    a.text = addressText(ai->ai_addr);
    out.push_back(std::move(a));
  }
  return out;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for a name; kept alive by whichever of caller and helper thread ends last.
struct Lookup {
  std::mutex mu;
  std::condition_variable done;
  bool finished = false;
  int rc = 0;
  AddrInfoPtr result;
};

Result<std::vector<SocketAddress>> resolveName(const std::string& host, const std::string& port,
                                               SteadyTime deadline) {
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
    std::lock_guard lock(lookup->mu);
    lookup->rc = rc;
    lookup->result.reset(list);
    lookup->finished = true;
    lookup->done.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mu);
  if (!lookup->done.wait_until(lock, deadline, [&] { return lookup->finished; })) {
    return Error(ErrorCode::kTimeout, "resolve " + host + ": timed out");
  }
  if (lookup->rc != 0) {
    return Error(ErrorCode::kNotFound, "resolve " + host + ": " + gai_strerror(lookup->rc));
  }
  return toAddresses(lookup->result.get());
}

int remainingMs(SteadyTime deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

// 0 when connected; else the errno that stopped it (ETIMEDOUT when the deadline passed).
int connectWithin(const SocketAddress& target, SteadyTime deadline) {
  Fd fd(::socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.addr), target.len) == 0) {
    return 0;
  }
  if (errno != EINPROGRESS) return errno;
  for (;;) {
    pollfd p{fd.get(), POLLOUT, 0};
    const int n = ::poll(&p, 1, remainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ETIMEDOUT;
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
    return error;
  }
}

}  // namespace

Result<std::vector<SocketAddress>> resolveTcp(const std::string& rawHost, uint16_t port,
                                              SteadyTime deadline) {
  std::string host = rawHost;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string service = std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &list) == 0) {
    AddrInfoPtr owned(list);
    return toAddresses(owned.get());
  }
  return resolveName(host, service, deadline);
}

Result<std::unique_ptr<Probe>> TcpProber::create(const ProbeSpec& spec, const Clock& clock) {
  if (spec.tcp.host.empty() || spec.tcp.port == 0) {
    return Error(ErrorCode::kInvalid, "tcp probe needs a host and a port 1..65535");
  }
  return std::unique_ptr<Probe>(new TcpProber(spec, clock));
}

Observation TcpProber::observe() {
  const auto deadline = std::chrono::steady_clock::now() + spec().timeout;
  auto addresses = resolveTcp(spec().tcp.host, spec().tcp.port, deadline);
  if (!addresses) return Observation::fail(addresses.error().message());
  if (addresses->empty()) {
    return Observation::fail("resolve " + spec().tcp.host + ": no IPv4 or IPv6 address");
  }
  std::string failure;
  for (const auto& address : *addresses) {
    const int error = connectWithin(address, deadline);
    if (error == 0) return Observation::pass("connected to " + address.text);
    if (error == ETIMEDOUT && std::chrono::steady_clock::now() >= deadline) {
      return Observation::fail("timeout after " + describeTimeout(spec().timeout) +
                               " connecting to " + address.text);
    }
    failure = "connect " + address.text + ": " + std::strerror(error);
  }
  return Observation::fail(failure);
}

}  // namespace chaosd
