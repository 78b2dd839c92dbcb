// ThreadedHttpKernel: http.fault's proxy as threads of this process inside the target's network
// namespace. One acceptor thread enters the namespace (setns, for itself only) and makes the
// listener there; the connection threads it starts inherit its namespace, so the sockets they
// open to the original destinations are the namespace's too. They die with this process: after
// a kill -9 only the nftables table is left, and the guardian deletes it.
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <future>
#include <thread>

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "injectors/http/HttpConnection.h"
#include "injectors/http/HttpKernel.h"
#include "injectors/network/NftRecords.h"

namespace chaosd::http {
namespace {

// Each connection thread's stack: the relay needs little (a 16 KiB buffer, the parser), and
// thousands of idle connections must not reserve 8 MiB each.
constexpr size_t kConnectionStack = 256 * 1024;

// A listener on a free port of the calling thread's namespace: IPv6 dual-stack when the
// namespace has IPv6, else IPv4 only.
Result<Fd> listenAnyPort() {
  Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd) {
    int zero = 0;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd = Fd();
  }
  if (!fd) {
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
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

struct ConnectionStart {
  std::shared_ptr<ProxyShared> shared;
  int client;
};

void* connectionMain(void* arg) {
  std::unique_ptr<ConnectionStart> start(static_cast<ConnectionStart*>(arg));
  serveConnection(start->shared, start->client);
  std::lock_guard lock(start->shared->mu);
  if (--start->shared->active == 0) start->shared->idle.notify_all();
  return nullptr;
}

class ThreadedProxy final : public Proxy {
 public:
  ThreadedProxy(std::shared_ptr<ProxyShared> shared, Fd listener, uint16_t port)
      : shared_(std::move(shared)), listener_(std::move(listener)), port_(port) {}
  ~ThreadedProxy() override { stop(); }

  // Starts the acceptor, which enters the namespace `netns` (invalid: stays) before anything.
  Result<void> start(const Fd& netns) {
    std::promise<Result<void>> entered;
    auto done = entered.get_future();
    const int nsFd = netns.valid() ? netns.get() : -1;
    acceptor_ = std::thread([this, nsFd, &entered] {
      if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) {
        entered.set_value(Error::fromErrno("setns into the target's network namespace", errno));
        return;
      }
      entered.set_value(success());
      acceptLoop();
    });
    return done.get();
  }
  uint16_t port() const override { return port_; }

  ProxyStats stop() override {
    if (!stopped_) {
      stopped_ = true;
      shared_->stopping = true;
      const uint64_t one = 1;
      (void)!::write(shared_->stopEvent.get(), &one, sizeof one);
      if (acceptor_.joinable()) acceptor_.join();
      listener_ = Fd();
      std::unique_lock lock(shared_->mu);
      for (int fd : shared_->fds) ::shutdown(fd, SHUT_RDWR);
      shared_->idle.wait(lock, [&] { return shared_->active == 0; });
    }
    return shared_->stats();
  }

 private:
  void acceptLoop() {
    for (;;) {
      std::array<pollfd, 2> p{
          {{shared_->stopEvent.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}}};
      if (::poll(p.data(), p.size(), -1) < 0 && errno != EINTR) return;
      if (p[0].revents != 0 || shared_->stopping) return;
      if (p[1].revents == 0) continue;
      const int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      launch(c);
    }
  }

  void launch(int client) {
    {
      std::lock_guard lock(shared_->mu);
      if (shared_->active >= shared_->config.maxConnections) {
        shared_->counters.refused.fetch_add(1, std::memory_order_relaxed);
        linger l{1, 0};
        ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(client);
        return;
      }
      ++shared_->active;
      shared_->fds.insert(client);
    }
    auto* start = new ConnectionStart{shared_, client};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kConnectionStack);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    const int rc = pthread_create(&t, &attr, connectionMain, start);
    pthread_attr_destroy(&attr);
    if (rc != 0) {  // no thread: as over the cap
      delete start;
      shared_->close(client);
      std::lock_guard lock(shared_->mu);
      --shared_->active;
      shared_->counters.refused.fetch_add(1, std::memory_order_relaxed);
    }
  }

  std::shared_ptr<ProxyShared> shared_;
  Fd listener_;
  uint16_t port_;
  std::thread acceptor_;
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
  shared->stopEvent = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!shared->stopEvent) return Error::fromErrno("eventfd", errno);
  auto ns = openNetns(netnsAtPath(config.netnsPath));
  if (!ns) return std::move(ns).error();
  shared->config = std::move(config);
  // The listener is made by a short thread inside the namespace; the acceptor then enters it
  // for good (setns is per thread), so the threads it starts are born there.
  Fd listener;
  auto made = runInNetns(netnsAtPath(shared->config.netnsPath), [&]() -> Result<void> {
    auto l = listenAnyPort();
    if (!l) return std::move(l).error();
    listener = std::move(*l);
    return success();
  });
  if (!made) return std::move(made).error().withContext("the http.fault proxy");
  const uint16_t port = portOf(listener.get());
  auto proxy = std::make_unique<ThreadedProxy>(shared, std::move(listener), port);
  if (auto started = proxy->start(*ns); !started) return std::move(started).error();
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
