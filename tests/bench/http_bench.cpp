// http_bench: the cost and the accuracy of http.fault's proxy. A small keep-alive HTTP/1.1
// server of the bench's own (threads of this process, listening in namespace B) answers "ok";
// wrk in namespace A loads it, in the same run: direct, and through the proxy with a rule that
// matches no request (the proxy parses every head, decides, relays). Prints p50 and p99 latency
// and throughput of each and the ratios. Then accuracy: abort 10% over N requests (the count
// against the binomial 99% interval), and a 200 ms delay measured by a sequential client against
// the same requests direct. Needs root and wrk; creates and deletes namespaces
// chaosd-httpb-<pid>-a/-b.
//
// `http_bench [SECONDS] [CONNECTIONS] [REQUESTS] [ROUNDS]` (default 5 s, 64, 10000, 3): ROUNDS
// pairs of direct-then-proxied wrk runs, each pair's ratios printed, then the spread (min,
// median, max) of the ratios: the machine may be shared, so one pair is not a figure.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/http/HttpFaultInjector.h"
#include "injectors/network/NftKernel.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string out(const std::string& cmd) {
  std::string s;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return s;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  ::pclose(p);
  return s;
}

// One connection: answers every request head with "ok", keep-alive.
void serve(int fd) {
  std::string in;
  char buf[16384];
  static const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    size_t at = 0;
    std::string batch;
    while ((at = in.find("\r\n\r\n")) != std::string::npos) {
      in.erase(0, at + 4);
      batch += resp;
    }
    if (!batch.empty() && ::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL) < 0) break;
  }
  ::close(fd);
}

// The forwarder: each accepted connection is paired with one to the server; bytes are relayed
// both ways as they come. Edge-triggered; a send that would block waits (tiny answers here).
class Forwarder {
 public:
  Forwarder(int listener, sockaddr_in server, int loops, uint32_t mark)
      : listener_(listener), server_(server), mark_(mark) {
    for (int i = 0; i < loops; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Forwarder() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    for (auto& t : threads_) t.join();
  }

 private:
  struct Pair {
    int fd[2];
    bool closed = false;
  };
  static void sendAll(int fd, const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w > 0) {
        p += w;
        n -= static_cast<size_t>(w);
      } else if (w < 0 && errno == EAGAIN) {
        pollfd pf{fd, POLLOUT, 0};
        ::poll(&pf, 1, 100);
      } else {
        return;
      }
    }
  }
  void loop() {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event l{EPOLLIN | EPOLLEXCLUSIVE, {.u64 = 0}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, listener_, &l);
    std::vector<epoll_event> ev(256);
    std::vector<Pair*> dead;
    char buf[65536];
    while (!stop_) {
      for (Pair* p : dead) delete p;
      dead.clear();
      const int n = ::epoll_wait(ep, ev.data(), static_cast<int>(ev.size()), 100);
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = ev[static_cast<size_t>(i)].data.u64;
        if (tag == 0) {
          const int c = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) continue;
          const int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ::setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ::setsockopt(u, SOL_SOCKET, SO_MARK, &mark_, sizeof mark_);  // skips the redirect
          if (::connect(u, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) != 0) {
            ::close(c);
            ::close(u);
            continue;
          }
          ::fcntl(u, F_SETFL, O_NONBLOCK);
          auto* pair = new Pair{{c, u}};
          for (int side = 0; side < 2; ++side) {
            epoll_event e{EPOLLIN | EPOLLRDHUP | EPOLLET,
                          {.u64 = reinterpret_cast<uintptr_t>(pair) | static_cast<unsigned>(side)}};
            ::epoll_ctl(ep, EPOLL_CTL_ADD, pair->fd[side], &e);
          }
          continue;
        }
        auto* pair = reinterpret_cast<Pair*>(tag & ~uint64_t{1});
        const int side = static_cast<int>(tag & 1);
        while (!pair->closed) {
          const ssize_t r = ::recv(pair->fd[side], buf, sizeof buf, 0);
          if (r > 0) {
            sendAll(pair->fd[1 - side], buf, static_cast<size_t>(r));
            if (static_cast<size_t>(r) < sizeof buf) break;
            continue;
          }
          if (r < 0 && errno == EAGAIN) break;
          ::close(pair->fd[0]);  // closing both removes both from the epoll set
          ::close(pair->fd[1]);
          pair->closed = true;  // freed after the batch, which may still name it
          dead.push_back(pair);
        }
      }
    }
    for (Pair* p : dead) delete p;
    ::close(ep);
  }

  int listener_;
  sockaddr_in server_;
  uint32_t mark_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The forwarder's upstream connections carry it; its redirect skips them.
constexpr uint32_t kFwdMark = 0x68747462;

struct Load {
  double rps = 0, p50us = 0, p99us = 0;
};

double toUs(const std::string& v) {
  const double x = std::atof(v.c_str());
  if (v.find("us") != std::string::npos) return x;
  if (v.find("ms") != std::string::npos) return x * 1e3;
  return x * 1e6;
}

Load wrk(const std::string& ns, const std::string& url, int seconds, int conns) {
  const std::string o = out("ip netns exec " + ns + " wrk -t2 -c" + std::to_string(conns) + " -d" +
                            std::to_string(seconds) + "s --latency " + url + " 2>&1");
  Load l;
  auto field = [&](const std::string& key) {
    const auto at = o.find(key);
    if (at == std::string::npos) return std::string();
    const auto s = o.find_first_not_of(' ', at + key.size());
    return o.substr(s, o.find('\n', s) - s);
  };
  l.rps = std::atof(field("Requests/sec:").c_str());
  l.p50us = toUs(field(" 50%"));
  l.p99us = toUs(field(" 99%"));
  return l;
}

// `count` sequential GETs of `path` on one keep-alive connection from `ns`: median latency (us).
double sequential(const std::string& ns, const std::string& addr, const std::string& path,
                  int count) {
  chaosd::NetnsRef ref;
  ref.name = ns;
  chaosd::Fd s;
  (void)chaosd::runInNetns(ref, [&]() -> chaosd::Result<void> {
    s = chaosd::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return chaosd::success();
  });
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(8080);
  ::inet_pton(AF_INET, addr.c_str(), &to.sin_addr);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return -1;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: b\r\n\r\n";
  std::vector<double> us;
  char buf[4096];
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    if (::send(s.get(), req.data(), req.size(), MSG_NOSIGNAL) < 0) return -1;
    std::string got;
    while (got.find("\r\n\r\nok") == std::string::npos) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return -1;
      got.append(buf, static_cast<size_t>(n));
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chaosd;
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int conns = argc > 2 ? std::atoi(argv[2]) : 64;
  const long requests = argc > 3 ? std::atol(argv[3]) : 10000;
  const int rounds = std::max(1, argc > 4 ? std::atoi(argv[4]) : 3);
  const std::string id = std::to_string(::getpid() % 100000);
  const std::string a = "chaosd-httpb-" + id + "-a", b = "chaosd-httpb-" + id + "-b";
  const std::string client = "10.236.0.1", server = "10.236.0.2";
  auto cleanup = [&] {
    sh("ip netns del " + a);
    sh("ip netns del " + b);
  };
  if (sh("ip netns add " + a) || sh("ip netns add " + b) ||
      sh("ip -n " + a + " link add hb" + id + "a type veth peer name hb" + id + "b netns " + b) ||
      sh("ip -n " + a + " addr add " + client + "/24 dev hb" + id + "a") ||
      sh("ip -n " + b + " addr add " + server + "/24 dev hb" + id + "b") ||
      sh("ip -n " + a + " link set hb" + id + "a up") ||
      sh("ip -n " + b + " link set hb" + id + "b up") || sh("ip -n " + a + " link set lo up") ||
      sh("ip -n " + b + " link set lo up")) {
    std::fprintf(stderr, "http_bench: could not set up the namespaces (root? iproute2?)\n");
    cleanup();
    return 1;
  }
  NetnsRef nsB;
  nsB.name = b;
  Fd listener;
  (void)runInNetns(nsB, [&]() -> Result<void> {
    listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(8080);
    ::inet_pton(AF_INET, server.c_str(), &at.sin_addr);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(listener.get(), 1024) != 0) {
      return Error(ErrorCode::kIo, "listen");
    }
    return success();
  });
  std::thread([fd = listener.get()] {
    for (;;) {
      const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::thread(serve, c).detach();
    }
  }).detach();
  // Wait for the link (its qdisc comes up from link-watch, up to a second).
  for (int i = 0; i < 300 && sequential(a, server, "/", 1) < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // The forwarder, made inside namespace A: its threads are born there.
  NetnsRef nsA;
  nsA.name = a;
  Fd fwdListener;
  std::unique_ptr<Forwarder> forwarder;
  (void)runInNetns(nsA, [&]() -> Result<void> {
    fwdListener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(8081);
    at.sin_addr.s_addr = htonl(INADDR_ANY);  // a redirect reaches it on 127.0.0.1
    if (::bind(fwdListener.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(fwdListener.get(), 1024) != 0) {
      return Error(ErrorCode::kIo, "listen");
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(8080);
    ::inet_pton(AF_INET, server.c_str(), &to.sin_addr);
    const auto cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    forwarder = std::make_unique<Forwarder>(fwdListener.get(), to, std::min(cpus, 8), kFwdMark);
    return success();
  });

  // The forwarder behind the same kind of redirect as http.fault's (nat output, SYN only), so
  // the floor also pays conntrack and NAT on every packet of namespace A.
  LibnftablesKernel nft(std::make_shared<NftSessionPool>());
  const std::string nsPath = "/run/netns/" + a;
  const std::string fwdTable =
      "add table inet httpb_fwd\n"
      "add chain inet httpb_fwd output { type nat hook output priority -100; policy accept; }\n"
      "add rule inet httpb_fwd output meta mark " +
      std::to_string(kFwdMark) +
      " return\n"
      "add rule inet httpb_fwd output tcp dport 8080 tcp flags & (syn | ack) == syn redirect to "
      ":8081\n";

  TargetSpec target;
  target.kind = TargetKind::kInterface;
  target.interface.name = "hb" + id + "a";
  target.interface.netns.name = a;
  auto context = std::make_shared<HttpContext>();
  HttpFaultInjector injector(context);
  auto hold = [&](json rules, const std::string& faultId) -> json {
    FaultRequest r;
    r.runId = "bench";
    r.faultId = faultId;
    r.faultType = "http.fault";
    r.target = &target;
    r.args = {{"ports", {8080}},
              {"rules", rules},
              {"maxConnections", 1024},
              {"headerTimeout", 10'000'000'000}};
    auto p = injector.prepare(r);
    if (!p || !injector.apply(faultId, p->undo)) {
      std::fprintf(stderr, "http_bench: apply failed\n");
      cleanup();
      std::exit(1);
    }
    return p->undo;
  };
  const std::string url = "http://" + server + ":8080/";
  const std::string fwdUrl = "http://" + client + ":8081/";

  (void)wrk(a, url, 1, conns);  // warm-up
#ifdef NDEBUG
  const char* build = "optimised build";
#else
  const char* build = "DEBUG build: not a figure";
#endif
  std::printf("http_bench: wrk -t2 -c%d -d%ds, %d rounds (%s)\n", conns, seconds, rounds, build);
  std::vector<double> tput, p50add, p99add, seqAdd, fwdTput, fwdP50add, overFwd, natTput, natP50add,
      overNat;
  json undo;
  for (int round = 1; round <= rounds; ++round) {
    const Load direct = wrk(a, url, seconds, conns);
    const double seqDirect = sequential(a, server, "/x", 2000);
    const Load fwd = wrk(a, fwdUrl, seconds, conns);
    if (auto r = nft.run(nsPath, fwdTable); !r) {
      std::fprintf(stderr, "http_bench: the forwarder's redirect: %s\n",
                   r.error().describe().c_str());
      cleanup();
      return 1;
    }
    const Load fwdNat = wrk(a, url, seconds, conns);
    (void)nft.run(nsPath, "delete table inet httpb_fwd\n");
    undo = hold({{{"path", "/never"}, {"abort", {{"status", 500}, {"percent", 1.0}}}}}, "b1");
    const Load proxied = wrk(a, url, seconds, conns);
    const double seqProxied = sequential(a, server, "/x", 2000);
    (void)injector.revert("b1", undo);
    std::printf("  round %d direct:    %9.0f req/s  p50 %7.1f us  p99 %8.1f us\n", round,
                direct.rps, direct.p50us, direct.p99us);
    std::printf(
        "  round %d forwarder: %9.0f req/s  p50 %7.1f us  p99 %8.1f us  (bytes only: the floor)\n",
        round, fwd.rps, fwd.p50us, fwd.p99us);
    std::printf(
        "  round %d fwd+nat:   %9.0f req/s  p50 %7.1f us  p99 %8.1f us  (the floor behind a "
        "redirect)\n",
        round, fwdNat.rps, fwdNat.p50us, fwdNat.p99us);
    std::printf(
        "  round %d via proxy: %9.0f req/s  p50 %7.1f us  p99 %8.1f us  (no rule matches)\n", round,
        proxied.rps, proxied.p50us, proxied.p99us);
    std::printf(
        "  round %d ratios:    throughput %.2f  p50 +%.1f us (%.2fx)  p99 +%.1f us (%.2fx); "
        "sequential keep-alive median %.1f -> %.1f us (+%.1f us)\n",
        round, proxied.rps / direct.rps, proxied.p50us - direct.p50us, proxied.p50us / direct.p50us,
        proxied.p99us - direct.p99us, proxied.p99us / direct.p99us, seqDirect, seqProxied,
        seqProxied - seqDirect);
    std::printf(
        "  round %d floor:     forwarder throughput %.2f of direct, p50 +%.1f us; the proxy "
        "%.2f of the forwarder\n",
        round, fwd.rps / direct.rps, fwd.p50us - direct.p50us, proxied.rps / fwd.rps);
    std::printf(
        "  round %d floor+nat: forwarder behind the redirect %.2f of direct, p50 +%.1f us; the "
        "proxy %.2f of it\n",
        round, fwdNat.rps / direct.rps, fwdNat.p50us - direct.p50us, proxied.rps / fwdNat.rps);
    natTput.push_back(fwdNat.rps / direct.rps);
    natP50add.push_back(fwdNat.p50us - direct.p50us);
    overNat.push_back(proxied.rps / fwdNat.rps);
    fwdTput.push_back(fwd.rps / direct.rps);
    fwdP50add.push_back(fwd.p50us - direct.p50us);
    overFwd.push_back(proxied.rps / fwd.rps);
    tput.push_back(proxied.rps / direct.rps);
    p50add.push_back(proxied.p50us - direct.p50us);
    p99add.push_back(proxied.p99us - direct.p99us);
    seqAdd.push_back(seqProxied - seqDirect);
  }
  auto spread = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    char buf[96];
    std::snprintf(buf, sizeof buf, "min %.2f median %.2f max %.2f", v.front(), v[v.size() / 2],
                  v.back());
    return std::string(buf);
  };
  std::printf("  spread: throughput ratio %s\n", spread(tput).c_str());
  std::printf("  spread: p50 added us %s; p99 added us %s\n", spread(p50add).c_str(),
              spread(p99add).c_str());
  std::printf("  spread: sequential added us %s\n", spread(seqAdd).c_str());
  std::printf("  spread: forwarder throughput ratio %s; its p50 added us %s\n",
              spread(fwdTput).c_str(), spread(fwdP50add).c_str());
  std::printf("  spread: proxy throughput over the forwarder's %s\n", spread(overFwd).c_str());
  std::printf("  spread: redirected forwarder throughput ratio %s; its p50 added us %s\n",
              spread(natTput).c_str(), spread(natP50add).c_str());
  std::printf("  spread: proxy throughput over the redirected forwarder's %s\n",
              spread(overNat).c_str());

  // Accuracy: abort 10% of `requests` on keep-alive connections.
  undo = hold({{{"path", "/"}, {"abort", {{"status", 503}, {"percent", 0.1}}}}}, "b2");
  std::string cmdUrls;
  const long perCurl = 500;
  for (long i = 0; i < perCurl; ++i) cmdUrls += " -o /dev/null " + url;
  for (long done = 0; done < requests; done += perCurl) {
    sh("ip netns exec " + a + " curl -s" + cmdUrls);
  }
  auto observed = injector.revert("b2", undo);
  const double n = observed ? (*observed)["rules"][0]["matched"].get<double>() : 0;
  const double k = observed ? (*observed)["rules"][0]["aborted"].get<double>() : 0;
  const double sd = std::sqrt(n * 0.1 * 0.9);
  std::printf(
      "  abort 10%%: %.0f of %.0f aborted (%.2f%%); binomial 99%% interval %.0f..%.0f: %s\n", k, n,
      100 * k / n, n * 0.1 - 2.576 * sd, n * 0.1 + 2.576 * sd,
      std::fabs(k - n * 0.1) <= 2.576 * sd ? "inside" : "OUTSIDE");

  // Accuracy: a 200 ms delay.
  undo = hold(
      {{{"path", "/slow"}, {"delay", {{"delay", 200'000'000}, {"jitter", 0}, {"percent", 1.0}}}}},
      "b3");
  const double slow = sequential(a, server, "/slow", 20);
  const double fast = sequential(a, server, "/fast", 20);
  (void)injector.revert("b3", undo);
  std::printf(
      "  delay 200ms: median %.1f ms (not delayed through the proxy: %.3f ms); added %.1f ms "
      "(%+.1f%%)\n",
      slow / 1e3, fast / 1e3, (slow - fast) / 1e3, ((slow - fast) / 2e5 - 1) * 100);
  forwarder.reset();
  cleanup();
  return 0;
}
