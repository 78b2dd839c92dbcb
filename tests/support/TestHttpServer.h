#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/Wait.h"

// A small HTTP/1.1 server for tests: real sockets on loopback, one thread per connection,
// `Connection: close` after each response. Header-only so every test binary can use it.
namespace chaosd::testing {

struct HttpReply {
  HttpReply(int status_ = 200, std::string body_ = "",
            std::chrono::milliseconds delay_ = std::chrono::milliseconds(0))
      : status(status_), body(std::move(body_)), delay(delay_) {}

  int status = 200;
  std::string body;
  std::chrono::milliseconds delay{0};          // before the response; cut short by stop()
  std::map<std::string, std::string> headers;  // Content-Length is added
};

struct SeenRequest {
  std::string method;
  std::string target;                          // "/api/v1/query?query=up"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// A listening TCP socket on loopback port 0. The kernel completes connections into the
// backlog without accept(), which is all a TCP probe needs.
class TestTcpListener {
 public:
  explicit TestTcpListener(const std::string& address = "127.0.0.1") {
    family_ = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    fd_ = ::socket(family_, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family_ == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      if (::inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) != 1) {
        throw std::runtime_error("bad address " + address);
      }
      len = sizeof *in6;
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      if (::inet_pton(AF_INET, address.c_str(), &in->sin_addr) != 1) {
        throw std::runtime_error("bad address " + address);
      }
      len = sizeof *in;
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 128) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::runtime_error("bind/listen " + address + ": " + std::strerror(err));
    }
    len = sizeof ss;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(family_ == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                      : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~TestTcpListener() { close(); }
  TestTcpListener(const TestTcpListener&) = delete;
  TestTcpListener& operator=(const TestTcpListener&) = delete;

  uint16_t port() const { return port_; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // True when the machine has a usable IPv6 loopback.
  static bool hasIpv6Loopback() {
    try {
      TestTcpListener probe("::1");
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

 private:
  int family_ = AF_INET;
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A loopback port that refuses connections: bound, then closed again.
inline uint16_t closedPort() {
  TestTcpListener listener;
  return listener.port();
}

class TestHttpServer {
 public:
  using Handler = std::function<HttpReply(const SeenRequest&)>;

  explicit TestHttpServer(const std::string& address = "127.0.0.1") : listener_(address) {
    host_ = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~TestHttpServer() { stop(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return listener_.port(); }
  std::string baseUrl() const { return "http://" + host_ + ":" + std::to_string(port()); }
  std::string url(const std::string& path = "/") const { return baseUrl() + path; }

  // Every request from now on gets this reply.
  void reply(HttpReply r) {
    std::lock_guard lock(mu_);
    handler_ = [r](const SeenRequest&) { return r; };
  }
  void handle(Handler h) {
    std::lock_guard lock(mu_);
    handler_ = std::move(h);
  }

  size_t requestCount() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

  // Stops accepting, cuts delays short, joins every thread. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    stopCv_.notify_all();
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();
    ::close(wake_);
    listener_.close();
  }

 private:
  void acceptLoop() {
    for (;;) {
      pollfd p[2] = {{listener_.fd(), POLLIN, 0}, {wake_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents) return;
      const int conn = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, conn] { serve(conn); });
    }
  }

  // Reads one request; false when the peer went away first.
  static bool readRequest(int fd, SeenRequest& req) {
    std::string data;
    char buf[4096];
    size_t headerEnd = std::string::npos;
    size_t contentLength = 0;
    for (;;) {
      if (headerEnd == std::string::npos) {
        headerEnd = data.find("\r\n\r\n");
        if (headerEnd != std::string::npos) {
          parseHead(data.substr(0, headerEnd), req);
          auto it = req.headers.find("content-length");
          if (it != req.headers.end()) contentLength = std::stoul(it->second);
        }
      }
      if (headerEnd != std::string::npos && data.size() >= headerEnd + 4 + contentLength) {
        req.body = data.substr(headerEnd + 4, contentLength);
        return true;
      }
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
    }
  }

  static void parseHead(const std::string& head, SeenRequest& req) {
    size_t lineEnd = head.find("\r\n");
    const std::string first = head.substr(0, lineEnd);
    const size_t sp1 = first.find(' ');
    const size_t sp2 = first.find(' ', sp1 + 1);
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    while (lineEnd != std::string::npos) {
      const size_t start = lineEnd + 2;
      lineEnd = head.find("\r\n", start);
      const std::string line = head.substr(start, lineEnd - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers[name] = value;
    }
  }

  void serve(int fd) {
    SeenRequest req;
    if (readRequest(fd, req)) {
      HttpReply r;
      {
        std::lock_guard lock(mu_);
        seen_.push_back(req);
        if (handler_) r = handler_(req);
      }
      bool stopped = false;
      if (r.delay.count() > 0) {
        std::unique_lock lock(mu_);
        stopped = stopCv_.wait_for(lock, r.delay, [this] { return stopping_; });
      }
      if (!stopped) {
        std::string out = "HTTP/1.1 " + std::to_string(r.status) + " Test\r\n";
        for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
        out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
        out += "Connection: close\r\n\r\n" + r.body;
        for (size_t sent = 0; sent < out.size();) {
          const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      }
    }
    ::close(fd);
  }

  TestTcpListener listener_;
  std::string host_;
  int wake_ = -1;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable stopCv_;
  bool stopping_ = false;
  Handler handler_;
  std::vector<SeenRequest> seen_;
  std::vector<std::thread> workers_;
};

}  // namespace chaosd::testing
