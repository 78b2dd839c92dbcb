// load_bench: the open-loop generator (`load:`) against a trivial local HTTP server, rate by
// rate, and wrk (closed loop, as many requests as it can) against the same server in the same
// run. For each asked rate: the rate achieved (sent per second over the window) and its ratio
// to the asked one, the answers per second, the generator's own lateness and the latency p99;
// the highest rate held within 1%; then wrk's rate and the ratio of the two.
//
//   load_bench [SECONDS per rate, default 3] [wrk connections, default 64]
//
// The server is a child process: one thread, epoll, keep-alive, "ok" to every request. No root.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "chaosd/engine/load/LoadGenerator.h"
#include "tests/support/Shell.h"

namespace {

// Serves until killed. Responds to every "\r\n\r\n" seen (requests without bodies).
[[noreturn]] void serve(int listener) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  static const char kReply[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
  std::map<int, std::string> pending;
  epoll_event events[256];
  char buf[16384];
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      const ssize_t got = ::read(fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fd);
        pending.erase(fd);
        continue;
      }
      std::string& in = pending[fd];
      in.append(buf, static_cast<size_t>(got));
      std::string out;
      size_t end = 0;
      while ((end = in.find("\r\n\r\n")) != std::string::npos) {
        in.erase(0, end + 4);
        out.append(kReply, sizeof kReply - 1);
      }
      if (!out.empty()) (void)!::write(fd, out.data(), out.size());
    }
  }
}

double wrkRate(const std::string& url, int seconds, int connections) {
  const std::string out = chaosd::testing::runShell("wrk -t2 -c" + std::to_string(connections) +
                                                    " -d" + std::to_string(seconds) + "s " + url);
  const size_t at = out.find("Requests/sec:");
  return at == std::string::npos ? 0 : std::atof(out.c_str() + at + 13);
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 3;
  const int connections = argc > 2 ? std::atoi(argv[2]) : 64;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, 4096) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    return 1;
  }
  const pid_t server = ::fork();
  if (server == 0) serve(listener);
  ::close(listener);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";

#ifdef NDEBUG
  const char* build = "optimised build";
#else
  const char* build = "NOT an optimised build: figures are low";
#endif
  std::printf("load_bench: %ds per rate against a trivial keep-alive server (%s)\n", seconds,
              build);
  std::printf("%10s %10s %8s %10s %10s %12s %10s\n", "asked/s", "sent/s", "ratio", "ok/s", "errors",
              "lateness99", "p99");
  double held = 0;
  for (double rate : {500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0}) {
    chaosd::LoadSpec spec;
    spec.http.url = url;
    spec.rate = rate;
    spec.timeout = std::chrono::seconds(2);
    chaosd::LoadGenerator gen(spec);
    if (!gen.start().ok()) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // connections warm up
    gen.phaseStarted(chaosd::Phase::kDuring);
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    gen.phaseEnded(chaosd::Phase::kDuring);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gen.stop();
    const auto report = gen.report();
    const auto& p = report.phases.at(0);
    const double ratio = p.sentRate / rate;
    std::printf("%10.0f %10.1f %8.4f %10.1f %10llu %10.2fms %8.2fms\n", rate, p.sentRate, ratio,
                p.throughput, static_cast<unsigned long long>(p.errors),
                static_cast<double>(report.lateness99) / 1e6, static_cast<double>(p.p99) / 1e6);
    for (const auto& [kind, n] : p.errorKinds) {
      std::printf("%10s %llu x %s\n", "", static_cast<unsigned long long>(n), kind.c_str());
    }
    std::fflush(stdout);
    if (ratio < 0.99 || ratio > 1.01 || p.errors > 0) break;
    held = rate;
  }
  const double wrk = wrkRate(url, seconds, connections);
  std::printf("highest rate held within 1%% with no error: %.0f/s\n", held);
  std::printf("wrk -t2 -c%d (closed loop, as fast as it can): %.0f requests/s\n", connections, wrk);
  if (wrk > 0) std::printf("ratio held / wrk: %.2f\n", held / wrk);
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  return 0;
}
