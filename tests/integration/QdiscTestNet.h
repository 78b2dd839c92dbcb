#pragma once

// Scaffolding shared by the qdisc fault tests (QdiscFaultTest here, NetemVmQdiscTest in the
// VM): two network namespaces of the test's own joined by a veth pair, sockets opened inside
// them, a TCP throughput measurement and a UDP echo. Only scaffolding runs `ip`/`tc`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/QdiscInjector.h"
#include "tests/support/NetnsPair.h"
#include "tests/support/Shell.h"

namespace chaosd::qdisctest {

using chaosd::testing::runShell;
using chaosd::testing::shellStatus;
using Clock = std::chrono::steady_clock;

inline NetnsRef named(const std::string& name) {
  NetnsRef ref;
  ref.name = name;
  return ref;
}

inline bool isV6(const std::string& a) { return a.find(':') != std::string::npos; }

inline Result<Fd> socketIn(const std::string& ns, int type, const std::string& addr, uint16_t port,
                           bool listen, int sndbuf = 0) {
  Fd fd;
  auto ran = runInNetns(named(ns), [&]() -> Result<void> {
    const int family = isV6(addr) ? AF_INET6 : AF_INET;
    fd = Fd(::socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd) return Error::fromErrno("socket", errno);
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sndbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(port);
      ::inet_pton(AF_INET6, addr.c_str(), &sa->sin6_addr);
      len = sizeof *sa;
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(port);
      ::inet_pton(AF_INET, addr.c_str(), &sa->sin_addr);
      len = sizeof *sa;
    }
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if (listen) {
      if (::bind(fd.get(), sa, len) != 0) return Error::fromErrno("bind " + addr, errno);
      if (type == SOCK_STREAM && ::listen(fd.get(), 4) != 0)
        return Error::fromErrno("listen", errno);
    } else if (::connect(fd.get(), sa, len) != 0) {
      return Error::fromErrno("connect " + addr, errno);
    }
    return success();
  });
  if (!ran) return std::move(ran).error();
  return fd;
}

// Goodput in Mbit/s of one TCP stream from `fromNs` to `addr:port` in `toNs`, counted at the
// receiver over `seconds` after a warm-up (the bucket's initial burst and slow start).
// Reads (and drops) what `fd` has queued now, for at most 50 ms: on an unshaped link data
// arrives as fast as it is read (9.6 Gbit/s over veth), and an unbounded drain ran past the
// whole window under the sanitizer build (0.0 Mbit/s measured on an unlimited path).
inline void drainQueued(int fd, std::vector<char>& buf) {
  const auto until = Clock::now() + std::chrono::milliseconds(50);
  while (Clock::now() < until && ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
}

inline Result<double> tcpMbit(const std::string& fromNs, const std::string& toNs,
                              const std::string& addr, uint16_t port, double seconds = 1.5) {
  auto listener = socketIn(toNs, SOCK_STREAM, addr, port, true);
  if (!listener) return std::move(listener).error();
  // Buffers of seconds at the rates measured (set before connecting; accepted sockets inherit
  // the listener's), so the kernel keeps the shaper busy while a loaded machine leaves the
  // sender or receiver thread waiting for a core (load 11 cut 16 Mbit/s to 13 without them).
  const int big = 8 << 20;
  ::setsockopt(listener->get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  auto client = socketIn(fromNs, SOCK_STREAM, addr, port, false, big);
  if (!client) return std::move(client).error();
  Fd conn(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return Error::fromErrno("accept", errno);
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::vector<char> buf(64 * 1024, 'x');
    while (!stop) {
      pollfd p{client->get(), POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (::send(client->get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
          errno != EAGAIN) {
        break;
      }
    }
  });
  std::vector<char> buf(256 * 1024);
  const auto t0 = Clock::now();
  const auto start = t0 + std::chrono::milliseconds(400);
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t bytes = 0;
  Clock::time_point first{};
  while (Clock::now() < end) {
    pollfd p{conn.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (first == Clock::time_point{}) {
      if (Clock::now() < start) {
        ::recv(conn.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        continue;
      }
      // What queued up before the window passed the shaper before it: not counted, or a
      // receiver a loaded machine stalled across `start` reads a backlog at once and the rate
      // comes out above the shaper's (13.8 of 12 Mbit/s once in CI).
      drainQueued(conn.get(), buf);
      first = Clock::now();
      continue;
    }
    const ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) bytes += static_cast<uint64_t>(n);
  }
  stop = true;
  ::shutdown(client->get(), SHUT_RDWR);
  sender.join();
  if (first == Clock::time_point{}) return 0.0;
  const double secs = std::chrono::duration<double>(Clock::now() - first).count();
  return bytes * 8.0 / secs / 1e6;
}

// Mbit/s of UDP payload received in `toNs` at `addr:port` while `fromNs` offers `offeredMbit`
// in 1400-byte datagrams, paced, counted over `seconds` after a warm-up. Measures a shaper
// that drops (ingress) without TCP's reaction to the drops: what arrives is what the bucket
// lets through (payload is 1400 of the 1442 link-layer bytes tbf counts).
inline Result<double> udpMbit(const std::string& fromNs, const std::string& toNs,
                              const std::string& addr, uint16_t port, double offeredMbit,
                              double seconds = 1.5) {
  auto sink = socketIn(toNs, SOCK_DGRAM, addr, port, true);
  if (!sink) return std::move(sink).error();
  const int big = 4 << 20;
  ::setsockopt(sink->get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  auto source = socketIn(fromNs, SOCK_DGRAM, addr, port, false);
  if (!source) return std::move(source).error();
  constexpr size_t kDatagram = 1400;
  const auto warmup = std::chrono::milliseconds(300);
  const auto window =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::vector<char> buf(kDatagram, 'u');
    const double perSecond = offeredMbit * 1e6 / 8 / kDatagram;
    const auto t0 = Clock::now();
    uint64_t sent = 0;
    while (!stop) {
      const double due = std::chrono::duration<double>(Clock::now() - t0).count() * perSecond;
      while (sent < due) {
        ::send(source->get(), buf.data(), buf.size(), MSG_DONTWAIT);
        ++sent;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pacing, not waiting
    }
  });
  std::vector<char> buf(kDatagram * 2);
  const auto start = Clock::now() + warmup;
  const auto end = start + window;
  uint64_t bytes = 0;
  Clock::time_point first{};
  for (auto now = Clock::now(); now < end; now = Clock::now()) {
    pollfd p{sink->get(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    if (first == Clock::time_point{}) {
      if (now < start) {
        ::recv(sink->get(), buf.data(), buf.size(), MSG_DONTWAIT);
        continue;
      }
      drainQueued(sink->get(), buf);  // as in tcpMbit: the window starts with an empty queue
      first = Clock::now();
      continue;
    }
    const ssize_t n = ::recv(sink->get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) bytes += static_cast<uint64_t>(n);
  }
  stop = true;
  sender.join();
  if (first == Clock::time_point{}) return 0.0;
  return bytes * 8.0 / std::chrono::duration<double>(Clock::now() - first).count() / 1e6;
}

// Two namespaces A and B joined by veth cqd-a (in A) / cqd-b (in B). A: net.1, fd<x>::1;
// B: net.2, net.3, fd<x>::2, fd<x>::3. Removed on destruction, whatever the test did.
class NetPair {
 public:
  bool setUp(const std::string& tag) {
    net = "10.232." + std::to_string(::getpid() % 250) + ".";
    net6 = "fd42:" + std::to_string(::getpid() % 9999) + "::";
    std::string err = pair_.create(tag, "cqd", {net + "1/24", net6 + "1/64"},
                                   {net + "2/24", net + "3/24", net6 + "2/64", net6 + "3/64"});
    a = pair_.a();
    b = pair_.b();
    // Until both ends are up everything sent is dropped (a loss test once saw 0 of 1,000
    // datagrams arrive in the VM): wait for it.
    if (err.empty()) err = pair_.waitUp(std::chrono::seconds(10));
    if (!err.empty()) {
      ADD_FAILURE() << err;
      return false;
    }
    return true;
  }

  TargetSpec target(const std::string& ns, const std::string& dev) const {
    TargetSpec t;
    t.name = "link";
    t.kind = TargetKind::kInterface;
    t.interface.name = dev;
    t.interface.netns.name = ns;
    return t;
  }

  std::string a, b, net, net6;

 private:
  chaosd::testing::NetnsPair pair_;
};

inline FaultRequest request(const TargetSpec& target, const std::string& type,
                            const std::string& id, nlohmann::json args) {
  FaultRequest r;
  r.runId = "t";
  r.faultId = id;
  r.stepName = "step";
  r.faultType = type;
  r.target = &target;
  r.args = std::move(args);
  return r;
}

}  // namespace chaosd::qdisctest
