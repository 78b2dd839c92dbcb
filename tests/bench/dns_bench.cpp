// dns_bench: the per-query cost of dns.error's interception. dnsmasq in namespace B answers
// db.internal and web.internal; a client in A asks N queries one after the other (ldns-built,
// UDP), in the same run: without the fault; with `dns.error nxdomain *.db.internal` applied,
// for a name that does not match (web.internal: queued, read with ldns, accepted, then
// answered by dnsmasq) and for one that does (api.db.internal: answered by the interceptor,
// never reaching dnsmasq). The same over TCP, a connection per query (N/4 of them): the
// non-matching query's segments are all queued and accepted, the matching one is answered inside
// the stream and the server's side reset. Prints the median and p90 round trip of each and the
// ratios to the query without the fault. Needs root and dnsmasq; creates and deletes namespaces
// chaosd-dnsb-<pid>-a/-b.
//
// `dns_bench [QUERIES]` (default 2000).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/dns/DnsErrorInjector.h"

// Last: ldns's headers define `bool`, `true` and `false` as macros for C (ldns/common.h), which
// breaks C++ headers included after them (<optional>'s operator<=>).
extern "C" {
#include <ldns/ldns.h>
}

namespace {

using Clock = std::chrono::steady_clock;

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct Spread {
  double median = 0, p90 = 0;
  size_t answered = 0;
};

// `count` queries for `name` from a socket in `ns` to server:53, one at a time (us).
Spread ask(const std::string& ns, const std::string& server, const std::string& name, long count) {
  chaosd::NetnsRef ref;
  ref.name = ns;
  chaosd::Fd s;
  (void)chaosd::runInNetns(ref, [&]() -> chaosd::Result<void> {
    s = chaosd::Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    return chaosd::success();
  });
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server.c_str(), &to.sin_addr);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return {};
  std::vector<double> us;
  std::vector<uint8_t> in(4096);
  for (long i = 0; i < count; ++i) {
    ldns_pkt* q = ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), LDNS_RR_TYPE_A,
                                     LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(q, static_cast<uint16_t>(i));
    uint8_t* wire = nullptr;
    size_t size = 0;
    ldns_pkt2wire(&wire, q, &size);
    ldns_pkt_free(q);
    const auto t0 = Clock::now();
    (void)::send(s.get(), wire, size, 0);
    free(wire);
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) == 1 && ::recv(s.get(), in.data(), in.size(), 0) > 0) {
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  }
  Spread out;
  out.answered = us.size();
  if (us.empty()) return out;
  std::sort(us.begin(), us.end());
  out.median = us[us.size() / 2];
  out.p90 = us[us.size() * 9 / 10];
  return out;
}

// `count` queries over TCP, each on a connection of its own (connect, the framed query, the
// whole answer), as `dig +tcp` and glibc ask (us, from connect to the answer read).
Spread askTcp(const std::string& ns, const std::string& server, const std::string& name,
              long count) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, server.c_str(), &to.sin_addr);
  chaosd::NetnsRef ref;
  ref.name = ns;
  std::vector<double> us;
  std::vector<uint8_t> in(4096);
  for (long i = 0; i < count; ++i) {
    chaosd::Fd s;
    (void)chaosd::runInNetns(ref, [&]() -> chaosd::Result<void> {
      s = chaosd::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      return chaosd::success();
    });
    ldns_pkt* q = ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), LDNS_RR_TYPE_A,
                                     LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(q, static_cast<uint16_t>(i));
    uint8_t* wire = nullptr;
    size_t size = 0;
    ldns_pkt2wire(&wire, q, &size);
    ldns_pkt_free(q);
    std::vector<uint8_t> out(size + 2);
    out[0] = static_cast<uint8_t>(size >> 8);
    out[1] = static_cast<uint8_t>(size);
    std::copy(wire, wire + size, out.begin() + 2);
    free(wire);
    const auto t0 = Clock::now();
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) continue;
    (void)::send(s.get(), out.data(), out.size(), MSG_NOSIGNAL);
    size_t have = 0;
    for (;;) {
      pollfd p{s.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) != 1) break;
      const ssize_t n = ::recv(s.get(), in.data() + have, in.size() - have, 0);
      if (n <= 0) break;
      have += static_cast<size_t>(n);
      if (have >= 2 && have >= 2 + static_cast<size_t>(in[0] << 8 | in[1])) {
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        break;
      }
    }
  }
  Spread out;
  out.answered = us.size();
  if (us.empty()) return out;
  std::sort(us.begin(), us.end());
  out.median = us[us.size() / 2];
  out.p90 = us[us.size() * 9 / 10];
  return out;
}

void print(const char* what, const Spread& s, const Spread* base) {
  std::printf("  %-42s median %7.1f us  p90 %7.1f us  (%zu)", what, s.median, s.p90, s.answered);
  if (base != nullptr) std::printf("  ratio %.2f", s.median / base->median);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::atol(argv[1]) : 2000;
  const std::string id = std::to_string(::getpid() % 100000);
  const std::string a = "chaosd-dnsb-" + id + "-a", b = "chaosd-dnsb-" + id + "-b";
  const std::string server = "10.234.0.2";
  sh("ip netns add " + a);
  sh("ip netns add " + b);
  sh("ip -n " + a + " link add dnsb-a type veth peer name dnsb-b netns " + b);
  sh("ip -n " + a + " addr add 10.234.0.1/24 dev dnsb-a");
  sh("ip -n " + b + " addr add " + server + "/24 dev dnsb-b");
  for (const auto& [ns, dev] : {std::pair{a, "dnsb-a"}, std::pair{b, "dnsb-b"}}) {
    sh("ip -n " + ns + " link set " + dev + " up");
    sh("ip -n " + ns + " link set lo up");
  }
  const pid_t dnsmasq = ::fork();
  if (dnsmasq == 0) {
    const std::string listen = "--listen-address=" + server;
    ::execl("/usr/sbin/ip", "ip", "netns", "exec", b.c_str(), "/usr/sbin/dnsmasq",
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
            listen.c_str(), "--port=53", "--user=root",
            "--pid-file=", "--address=/db.internal/10.9.9.9", "--address=/web.internal/10.9.9.10",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 100 && ask(a, server, "web.internal", 1).answered == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (void)ask(a, server, "web.internal", 200);  // warm-up
  const Spread base = ask(a, server, "web.internal", count);
  const long tcpCount = std::max(1L, count / 4);
  (void)askTcp(a, server, "web.internal", 50);  // warm-up
  const Spread baseTcp = askTcp(a, server, "web.internal", tcpCount);

  chaosd::TargetSpec target;
  target.name = "link";
  target.kind = chaosd::TargetKind::kInterface;
  target.interface.name = "dnsb-a";
  target.interface.netns.name = a;
  chaosd::FaultRequest r;
  r.runId = "bench";
  r.faultId = "dnsb-1";
  r.faultType = "dns.error";
  r.target = &target;
  r.args = {{"names", {"*.db.internal"}},
            {"action", "nxdomain"},
            {"port", 53},
            {"protocol", "both"},
            {"limit", 1000}};
  chaosd::DnsErrorInjector injector(std::make_shared<chaosd::DnsContext>());
  auto prepared = injector.prepare(r);
  int rc = 1;
  if (prepared.ok() && injector.apply("dnsb-1", prepared->undo).ok()) {
    (void)ask(a, server, "web.internal", 200);
    const Spread other = ask(a, server, "web.internal", count);
    const Spread matched = ask(a, server, "api.db.internal", count);
    const Spread otherTcp = askTcp(a, server, "web.internal", tcpCount);
    const Spread matchedTcp = askTcp(a, server, "api.db.internal", tcpCount);
    (void)injector.revert("dnsb-1", prepared->undo);
    std::printf("dns_bench: %ld sequential UDP queries each\n", count);
    print("no fault (dnsmasq answers):", base, nullptr);
    print("fault, name not matching (dnsmasq):", other, &base);
    print("fault, name matching (forged NXDOMAIN):", matched, &base);
    std::printf("  interception cost per non-matching query: %.1f us\n",
                other.median - base.median);
    std::printf("dns_bench: %ld TCP queries each, a connection per query (connect to answer)\n",
                tcpCount);
    print("no fault (dnsmasq answers):", baseTcp, nullptr);
    print("fault, name not matching (dnsmasq):", otherTcp, &baseTcp);
    print("fault, name matching (forged in-stream):", matchedTcp, &baseTcp);
    std::printf("  interception cost per non-matching TCP query: %.1f us\n",
                otherTcp.median - baseTcp.median);
    rc = 0;
  } else {
    std::fprintf(stderr, "dns_bench: could not apply the fault\n");
  }
  ::kill(dnsmasq, SIGTERM);
  ::waitpid(dnsmasq, nullptr, 0);
  sh("ip netns del " + a);
  sh("ip netns del " + b);
  return rc;
}
