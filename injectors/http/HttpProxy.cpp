// ThreadedHttpKernel: http.fault's proxy as event-loop threads of this process inside the
// target's network namespace. Each loop thread enters the namespace (setns, for itself only)
// before serving, so the sockets it opens to the original destinations are the namespace's too.
// The loops share one listener made there. They die with this process: after a kill -9 only the
// nftables table is left, and the guardian deletes it.
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <thread>
#include <vector>

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "injectors/http/HttpConnection.h"
#include "injectors/http/HttpKernel.h"
#include "injectors/http/HttpLoop.h"
#include "injectors/network/NftRecords.h"

namespace chaosd::http {
namespace {

// More loops than this buy nothing for a proxy in front of one dependency.
constexpr size_t kMaxLoops = 8;

size_t loopCount(size_t asked) {
  if (asked > 0) return std::min(asked, kMaxLoops);
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return std::clamp<size_t>(static_cast<size_t>(cpus), 1, kMaxLoops);
}

// A listener on a free port of the calling thread's namespace: IPv6 dual-stack when the
// namespace has IPv6, else IPv4 only.
Result<Fd> listenAnyPort() {
  Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd) {
    int zero = 0;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd = Fd();
  }
  if (!fd) {
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Error::fromErrno("socket", errno);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      return Error::fromErrno("bind the proxy's listener", errno);
    }
  }
  if (::listen(fd.get(), 1024) != 0) return Error::fromErrno("listen", errno);
  return fd;
}

uint16_t portOf(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

class LoopProxy final : public Proxy {
 public:
  LoopProxy(std::shared_ptr<ProxyShared> shared, Fd listener, Fd stopEvent, uint16_t port)
      : shared_(std::move(shared)),
        listener_(std::move(listener)),
        stopEvent_(std::move(stopEvent)),
        port_(port) {}
  ~LoopProxy() override { stop(); }

  // Starts the loops, each entering the namespace `netns` (invalid: stays) before anything.
  Result<void> start(const Fd& netns, size_t loops) {
    const int nsFd = netns.valid() ? netns.get() : -1;
    for (size_t i = 0; i < loops; ++i) {
      loops_.push_back(std::make_unique<EventLoop>(shared_, listener_.get(), stopEvent_.get()));
      std::promise<Result<void>> entered;
      auto done = entered.get_future();
      EventLoop* loop = loops_.back().get();
      threads_.emplace_back([nsFd, loop, &entered] {
        if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) {
          entered.set_value(Error::fromErrno("setns into the target's network namespace", errno));
          return;
        }
        ::pthread_setname_np(::pthread_self(), "chaosd-http");
        entered.set_value(success());
        loop->run();
      });
      if (auto r = done.get(); !r) return r;
    }
    return success();
  }
  uint16_t port() const override { return port_; }

  ProxyStats stop() override {
    if (!stopped_) {
      stopped_ = true;
      shared_->stopping = true;
      const uint64_t one = 1;  // never read: every loop sees it readable
      (void)!::write(stopEvent_.get(), &one, sizeof one);
      for (auto& t : threads_) t.join();
      loops_.clear();
      listener_ = Fd();
    }
    return shared_->stats();
  }

 private:
  std::shared_ptr<ProxyShared> shared_;
  Fd listener_;
  Fd stopEvent_;
  uint16_t port_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace

nlohmann::json ProxyStats::toJson() const {
  return {{"connections", connections},
          {"refused", refused},
          {"requests", requests},
          {"nonHttpConnections", nonHttpConnections},
          {"nonHttpBytes", nonHttpBytes},
          {"upgraded", upgraded},
          {"malformed", malformed},
          {"headerTimeouts", headerTimeouts},
          {"upstreamFailures", upstreamFailures}};
}

Result<std::unique_ptr<Proxy>> ThreadedHttpKernel::startProxy(ProxyConfig config) {
  if (!config.policy) return Error(ErrorCode::kInternal, "http proxy without a policy");
  auto shared = std::make_shared<ProxyShared>();
  Fd stopEvent(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stopEvent) return Error::fromErrno("eventfd", errno);
  auto ns = openNetns(netnsAtPath(config.netnsPath));
  if (!ns) return std::move(ns).error();
  shared->config = std::move(config);
  // The listener is made by a short thread inside the namespace; each loop's thread then enters
  // it for good (setns is per thread).
  Fd listener;
  auto made = runInNetns(netnsAtPath(shared->config.netnsPath), [&]() -> Result<void> {
    auto l = listenAnyPort();
    if (!l) return std::move(l).error();
    listener = std::move(*l);
    return success();
  });
  if (!made) return std::move(made).error().withContext("the http.fault proxy");
  const uint16_t port = portOf(listener.get());
  auto proxy = std::make_unique<LoopProxy>(shared, std::move(listener), std::move(stopEvent), port);
  if (auto started = proxy->start(*ns, loopCount(shared->config.threads)); !started) {
    return std::move(started).error();
  }
  log::get("http")->debug("http.fault proxy listening port={} netns={}", port,
                          shared->config.netnsPath);
  return std::unique_ptr<Proxy>(std::move(proxy));
}

Result<std::vector<OpenConnection>> ThreadedHttpKernel::openConnections(
    const std::string& netnsPath, const ConnectionMatch& match) {
  std::vector<OpenConnection> out;
  auto ran = runInNetns(netnsAtPath(netnsPath), [&]() -> Result<void> {
    auto listed = listConnections(match);
    if (!listed) return std::move(listed).error();
    out = std::move(*listed);
    return success();
  });
  if (!ran) return std::move(ran).error();
  return out;
}

Result<size_t> ThreadedHttpKernel::resetConnections(
    const std::string& netnsPath, const std::vector<OpenConnection>& connections) {
  size_t destroyed = 0;
  auto ran = runInNetns(netnsAtPath(netnsPath), [&]() -> Result<void> {
    auto n = destroyConnections(connections);
    if (!n) return std::move(n).error();
    destroyed = *n;
    return success();
  });
  if (!ran) return std::move(ran).error();
  return destroyed;
}

}  // namespace chaosd::http
