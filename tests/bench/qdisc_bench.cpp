// qdisc_bench: apply + revert of a network.bandwidth (tbf) fault, N times, in a network
// namespace of the bench's own: chaosd's path as the engine takes it (prepare with its root
// snapshot, journal the intent, the HTB root + default class + fault class + tbf leaf + u32
// filter through libnl-route, mark applied; then filter, class and root deleted, mark
// reverted) against the peers' way, a `tc` process per change (`tc qdisc add ... root tbf`, `tc
// qdisc del ... root`), and against a bare libnl request pair (a root tbf added and deleted on
// one socket: the kernel's floor for one qdisc change). Prints per-cycle medians and ratios.
// Target: at least 100x faster than tc processes. Needs root; creates and deletes namespace
// chaosd-qbench-<pid> and a journal in a temporary folder.
//
// `qdisc_bench [N]` (default 200).
#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "chaosd/journal/FaultJournal.h"
#include "chaosd/system/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/QdiscInjector.h"

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "qdisc_bench needs root (it creates a network namespace)\n");
    return 1;
  }
  const std::string ns = "chaosd-qbench-" + std::to_string(::getpid());
  if (sh("ip netns add " + ns) != 0 ||
      sh("ip -n " + ns + " link add cqb0 type veth peer name cqb1") != 0 ||
      sh("ip -n " + ns + " link set cqb0 up") != 0) {
    std::fprintf(stderr, "cannot set up namespace %s\n", ns.c_str());
    sh("ip netns del " + ns);
    return 1;
  }
  chaosd::TargetSpec target;
  target.name = "link";
  target.kind = chaosd::TargetKind::kInterface;
  target.interface.name = "cqb0";
  target.interface.netns.name = ns;
  char dirTemplate[] = "/tmp/chaosd-qbench-XXXXXX";
  const std::string dir = ::mkdtemp(dirTemplate);
  auto journal = chaosd::openJournal(dir + "/journal.db");
  chaosd::RunRecord run;
  run.runId = "bench";
  run.experiment = "qdisc_bench";
  run.ownerPid = ::getpid();
  if (!journal || !journal->beginRun(run)) {
    std::fprintf(stderr, "cannot open a journal in %s\n", dir.c_str());
    sh("ip netns del " + ns);
    return 1;
  }
  chaosd::QdiscInjector injector;
  int failures = 0;
  std::vector<double> ours;
  for (int i = 0; i < n; ++i) {
    chaosd::FaultRequest r;
    r.runId = "bench";
    r.faultId = "qb-" + std::to_string(i);
    r.faultType = "network.bandwidth";
    r.target = &target;
    r.args = {{"rate", 10'000'000}, {"to", {{"cidr", {"10.99.0.2/32"}}}}};
    const auto t0 = Clock::now();
    auto prepared = injector.prepare(r);
    const bool ok = prepared &&
                    journal->recordIntent("bench", chaosd::makeIntent(r, *prepared, {}, false)) &&
                    injector.apply(r.faultId, prepared->undo) && journal->markApplied(r.faultId) &&
                    injector.revert(r.faultId, prepared->undo) && journal->markReverted(r.faultId);
    ours.push_back(msSince(t0));
    failures += !ok;
  }
  // The injector alone (no journal), to split the cost.
  std::vector<double> kernelPart;
  for (int i = 0; i < n; ++i) {
    chaosd::FaultRequest r;
    r.runId = "bench";
    r.faultId = "qk-" + std::to_string(i);
    r.faultType = "network.bandwidth";
    r.target = &target;
    r.args = {{"rate", 10'000'000}, {"to", {{"cidr", {"10.99.0.2/32"}}}}};
    const auto t0 = Clock::now();
    auto prepared = injector.prepare(r);
    failures += !(prepared && injector.apply(r.faultId, prepared->undo) &&
                  injector.revert(r.faultId, prepared->undo));
    kernelPart.push_back(msSince(t0));
  }
  std::filesystem::remove_all(dir);

  // The bare kernel floor: one root tbf added and deleted through libnl on one socket.
  std::vector<double> bare;
  chaosd::NetnsRef ref;
  ref.name = ns;
  auto ranBare = chaosd::runInNetns(ref, [&]() -> chaosd::Result<void> {
    nl_sock* sock = nl_socket_alloc();
    nl_connect(sock, NETLINK_ROUTE);
    rtnl_link* link = nullptr;
    rtnl_link_get_kernel(sock, 0, "cqb0", &link);
    const int ifindex = link != nullptr ? rtnl_link_get_ifindex(link) : 0;
    if (link != nullptr) rtnl_link_put(link);
    for (int i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      rtnl_qdisc* q = rtnl_qdisc_alloc();
      rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
      rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
      rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(0xc4b0, 0));
      rtnl_tc_set_kind(TC_CAST(q), "tbf");
      rtnl_qdisc_tbf_set_rate(q, 1'250'000, 16384, 0);
      rtnl_qdisc_tbf_set_limit_by_latency(q, 50'000);
      failures += rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_EXCL) != 0;
      failures += rtnl_qdisc_delete(sock, q) != 0;
      rtnl_qdisc_put(q);
      bare.push_back(msSince(t0));
    }
    nl_socket_free(sock);
    return chaosd::success();
  });
  failures += !ranBare.ok();

  const std::string exec = "ip netns exec " + ns + " ";
  std::vector<double> tc;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    failures +=
        sh(exec + "tc qdisc add dev cqb0 root tbf rate 10mbit burst 16kb latency 50ms") != 0;
    failures += sh(exec + "tc qdisc del dev cqb0 root") != 0;
    tc.push_back(msSince(t0));
  }
  // The same tree as chaosd builds, a tc process per change (how a tool on tc would filter).
  std::vector<double> tcTree;
  const std::string tcx = exec + "tc ";
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    failures += sh(tcx + "qdisc add dev cqb0 root handle c4a0: htb default 1") != 0;
    failures += sh(tcx + "class add dev cqb0 parent c4a0: classid c4a0:1 htb rate 100gbit") != 0;
    failures += sh(tcx + "class add dev cqb0 parent c4a0: classid c4a0:1234 htb rate 100gbit") != 0;
    failures += sh(tcx +
                   "qdisc add dev cqb0 parent c4a0:1234 handle 1234: tbf rate 10mbit "
                   "burst 16kb latency 50ms") != 0;
    failures += sh(tcx +
                   "filter add dev cqb0 parent c4a0: prio 2 protocol ip u32 match ip dst "
                   "10.99.0.2/32 flowid c4a0:1234") != 0;
    failures += sh(tcx + "filter del dev cqb0 parent c4a0: prio 2") != 0;
    failures += sh(tcx + "class del dev cqb0 classid c4a0:1234") != 0;
    failures += sh(tcx + "qdisc del dev cqb0 root") != 0;
    tcTree.push_back(msSince(t0));
  }
  sh("ip netns del " + ns);

  const double mo = median(ours), mb = median(bare), mt = median(tc), mtt = median(tcTree);
  std::printf("== tbf fault apply + revert, %d times, in namespace %s (medians per cycle)\n", n,
              ns.c_str());
  std::printf("  chaosd (prepare+snapshot, HTB tree, filter, journalled): %8.3f ms\n", mo);
  std::printf("  of which the injector alone (no journal):                %8.3f ms\n",
              median(kernelPart));
  std::printf("  bare libnl (root tbf add + delete, one socket):          %8.3f ms\n", mb);
  std::printf("  tc processes (add + del, 2 per cycle):                    %8.3f ms\n", mt);
  std::printf("  tc processes, the same HTB tree and filter (8 per cycle): %8.3f ms\n", mtt);
  std::printf(
      "  ratio tc / chaosd: %.1fx (target >= 100x); same tree with tc / chaosd: %.1fx; "
      "same tree with tc / chaosd's injector: %.1fx; chaosd / bare libnl: %.1fx\n",
      mt / mo, mtt / mo, mtt / median(kernelPart), mo / mb);
  if (failures != 0) std::printf("  %d operations failed\n", failures);
  return failures == 0 ? 0 : 1;
}
