// nfqueue_bench: the per-packet cost of network.delay's NFQUEUE consumer. Small UDP datagrams
// from namespace A to B over veth, a closed loop with W in flight (below the queue's limit, so
// nothing fails open), in the same run: no rule at all; an nft table of the same shape whose
// rule only counts (the cost of the rule itself); the NFQUEUE delay with a 1 us delay (every
// packet goes through the kernel queue, the consumer's heap and a verdict). Prints packets/s,
// the ratios and the cost per packet. Needs root; creates and deletes namespaces
// chaosd-nqb-<pid>-a/-b.
//
// `nfqueue_bench [PACKETS] [IN_FLIGHT]` (defaults 200000 and 64).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueDelay.h"

namespace {

using Clock = std::chrono::steady_clock;

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

chaosd::Fd udpIn(const std::string& ns) {
  chaosd::NetnsRef ref;
  ref.name = ns;
  chaosd::Fd out;
  (void)chaosd::runInNetns(ref, [&]() -> chaosd::Result<void> {
    out = chaosd::Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    return chaosd::success();
  });
  return out;
}

sockaddr_in addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// Packets per second of `count` datagrams A -> B with at most `window` not yet received.
double blast(const std::string& a, const std::string& b, long count, long window) {
  chaosd::Fd sink = udpIn(b);
  sockaddr_in any = addr("0.0.0.0", 9100);
  const int big = 8 << 20;
  ::setsockopt(sink.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (::bind(sink.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) return 0;
  std::atomic<long> received{0};
  std::thread reader([&] {
    char buf[64];
    while (received.load() < count) {
      pollfd p{sink.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) return;  // lost packets: give up rather than hang
      if (::recv(sink.get(), buf, sizeof buf, 0) > 0) ++received;
    }
  });
  chaosd::Fd src = udpIn(a);
  sockaddr_in to = addr("10.233.0.2", 9100);
  char payload[32] = {};
  const auto t0 = Clock::now();
  for (long sent = 0; sent < count; ++sent) {
    while (sent - received.load() >= window) std::this_thread::yield();
    (void)::sendto(src.get(), payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to);
  }
  reader.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(received.load()) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  const long window = argc > 2 ? std::atol(argv[2]) : 64;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "nfqueue_bench needs root (it creates network namespaces)\n");
    return 1;
  }
  const std::string id = std::to_string(::getpid());
  const std::string a = "chaosd-nqb-" + id + "-a", b = "chaosd-nqb-" + id + "-b";
  auto cleanup = [&] {
    sh("ip netns del " + a);
    sh("ip netns del " + b);
  };
  if (sh("ip netns add " + a) != 0 || sh("ip netns add " + b) != 0 ||
      sh("ip -n " + a + " link add cnqb-a type veth peer name cnqb-b netns " + b) != 0 ||
      sh("ip -n " + a + " addr add 10.233.0.1/24 dev cnqb-a") != 0 ||
      sh("ip -n " + b + " addr add 10.233.0.2/24 dev cnqb-b") != 0 ||
      sh("ip -n " + a + " link set cnqb-a up") != 0 ||
      sh("ip -n " + b + " link set cnqb-b up") != 0) {
    std::fprintf(stderr, "cannot set up the namespaces\n");
    cleanup();
    return 1;
  }
  (void)blast(a, b, n / 10, window);  // warm-up: neighbour resolution, caches
  const double plain = blast(a, b, n, window);

  // The same rule shape (interface, family, address, protocol, counter), accepting.
  sh("ip netns exec " + a +
     " nft 'add table inet nqb; add chain inet nqb c { type filter hook postrouting priority "
     "-300; policy accept; }; add rule inet nqb c oifname \"cnqb-a\" ip daddr 10.233.0.2 "
     "meta l4proto udp counter accept'");
  const double rule = blast(a, b, n, window);
  sh("ip netns exec " + a + " nft delete table inet nqb");

  chaosd::TargetSpec target;
  target.name = "link";
  target.kind = chaosd::TargetKind::kInterface;
  target.interface.name = "cnqb-a";
  target.interface.netns.name = a;
  chaosd::FaultRequest r;
  r.runId = "bench";
  r.faultId = "nqb-" + id;
  r.faultType = "network.delay";
  r.target = &target;
  r.args = {{"delay", 1000}, {"to", {{"cidr", {"10.233.0.2/32"}}}}, {"protocol", "udp"}};
  chaosd::NfqueueDelayInjector injector;
  auto prepared = injector.prepare(r);
  if (!prepared || !injector.apply(r.faultId, prepared->undo)) {
    std::fprintf(stderr, "cannot apply the delay: %s\n",
                 prepared ? "apply failed" : prepared.error().describe().c_str());
    cleanup();
    return 1;
  }
  const double queued = blast(a, b, n, window);
  auto observed = injector.revert(r.faultId, prepared->undo);
  cleanup();

  std::printf("nfqueue_bench: %ld datagrams of 32 bytes A->B over veth, %ld in flight\n", n,
              window);
  std::printf("  no rule                 %10.0f packets/s\n", plain);
  std::printf("  nft rule, counter       %10.0f packets/s  (%.2fx the plain rate)\n", rule,
              rule / plain);
  std::printf(
      "  NFQUEUE delay 1 us      %10.0f packets/s  (%.2fx the plain rate, %.2fx the "
      "rule's)\n",
      queued, queued / plain, queued / rule);
  std::printf("  consumer cost per packet: %.2f us (vs the plain path), %.2f us (vs the rule)\n",
              1e6 / queued - 1e6 / plain, 1e6 / queued - 1e6 / rule);
  if (observed) std::printf("  observed %s\n", observed->dump().c_str());
  return 0;
}
