// qdisc_bench: apply + revert of a network.bandwidth (tbf) fault, N times, in a network
// namespace of the bench's own: chaosd's path as the engine takes it (prepare with its root
// snapshot, journal the intent, the HTB root + default class + fault class + tbf leaf + u32
// filter through libnl-route, mark applied; then filter, class and root deleted, mark
// reverted) against the peers' way, a `tc` process per change (`tc qdisc add ... root tbf`, `tc
// qdisc del ... root`), and against a bare libnl request pair (a root tbf added and deleted on
// one socket: the kernel's floor for one qdisc change), and against the same tree and filter by
// bare libnl requests on one socket kept open (no dumps, no namespace switch: the floor for
// what the injector changes). The tc rows come twice: through a shell and `ip netns exec` (as
// tools that shell out do it), and as `tc -n NS` started with posix_spawn (no shell, no
// `ip netns exec`: the cheapest a tool running tc can be). Prints per-cycle medians and ratios.
// Target: at least 100x faster than tc processes. Needs root; creates and deletes namespace
// chaosd-qbench-<pid> and a journal in a temporary folder.
//
// `qdisc_bench [N]` (default 200).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/QdiscInjector.h"

extern char** environ;

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

// `tc -n NS ARGS...` as one process, no shell; its exit status.
int tcSpawn(const std::string& ns, const std::string& args) {
  std::vector<std::string> argv = {"tc", "-n", ns};
  for (size_t at = 0; at < args.size();) {
    const size_t end = std::min(args.find(' ', at), args.size());
    if (end > at) argv.push_back(args.substr(at, end - at));
    at = end + 1;
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "tc", &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The tree QdiscInjector builds for this fault, by hand on a socket kept open: HTB root c4a0:
// (default 1), classes c4a0:1 and c4a0:1234 at line rate, tbf 1234: under c4a0:1234, a u32
// filter (IPv4 destination /32) to c4a0:1234; then filter, class and root deleted, as the
// injector's revert does for its last fault. Returns the number of failed requests.
int bareTree(nl_sock* sock, int ifindex) {
  int failed = 0;
  auto set = [&](auto* obj, uint32_t parent, uint32_t handle) {
    rtnl_tc_set_ifindex(TC_CAST(obj), ifindex);
    rtnl_tc_set_parent(TC_CAST(obj), parent);
    rtnl_tc_set_handle(TC_CAST(obj), handle);
  };
  const uint32_t root = TC_HANDLE(0xc4a0, 0);
  rtnl_qdisc* q = rtnl_qdisc_alloc();
  set(q, TC_H_ROOT, root);
  rtnl_tc_set_kind(TC_CAST(q), "htb");
  rtnl_htb_set_defcls(q, 1);
  failed += rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_REPLACE) != 0;
  for (uint32_t minor : {1U, 0x1234U}) {
    rtnl_class* c = rtnl_class_alloc();
    set(c, root, TC_HANDLE(0xc4a0, minor));
    rtnl_tc_set_kind(TC_CAST(c), "htb");
    rtnl_htb_set_rate64(c, 12'500'000'000ULL);
    rtnl_htb_set_ceil64(c, 12'500'000'000ULL);
    rtnl_htb_set_rbuffer(c, 1U << 20);
    rtnl_htb_set_cbuffer(c, 1U << 20);
    rtnl_htb_set_quantum(c, 200000);
    failed += rtnl_class_add(sock, c, NLM_F_CREATE | NLM_F_EXCL) != 0;
    rtnl_class_put(c);
  }
  rtnl_qdisc* leaf = rtnl_qdisc_alloc();
  set(leaf, TC_HANDLE(0xc4a0, 0x1234), TC_HANDLE(0x1234, 0));
  rtnl_tc_set_kind(TC_CAST(leaf), "tbf");
  rtnl_qdisc_tbf_set_rate(leaf, 1'250'000, 16384, 0);
  rtnl_qdisc_tbf_set_limit_by_latency(leaf, 50'000);
  failed += rtnl_qdisc_add(sock, leaf, NLM_F_CREATE | NLM_F_EXCL) != 0;
  rtnl_qdisc_put(leaf);
  rtnl_cls* f = rtnl_cls_alloc();
  rtnl_tc_set_ifindex(TC_CAST(f), ifindex);
  rtnl_tc_set_parent(TC_CAST(f), root);
  rtnl_cls_set_prio(f, 2);
  rtnl_cls_set_protocol(f, ETH_P_IP);
  rtnl_tc_set_kind(TC_CAST(f), "u32");
  rtnl_u32_add_key_uint32(f, htonl(0x0a630002), 0xffffffff, 16, 0);
  rtnl_u32_set_classid(f, TC_HANDLE(0xc4a0, 0x1234));
  rtnl_u32_set_cls_terminal(f);
  failed += rtnl_cls_add(sock, f, NLM_F_CREATE) != 0;
  failed += rtnl_cls_delete(sock, f, 0) != 0;
  rtnl_cls_put(f);
  rtnl_class* c = rtnl_class_alloc();
  set(c, root, TC_HANDLE(0xc4a0, 0x1234));
  rtnl_tc_set_kind(TC_CAST(c), "htb");
  failed += rtnl_class_delete(sock, c) != 0;
  rtnl_class_put(c);
  failed += rtnl_qdisc_delete(sock, q) != 0;
  rtnl_qdisc_put(q);
  return failed;
}

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
      sh("ip -n " + ns + " link set cqb0 up") != 0 ||
      sh("ip -n " + ns + " link set cqb1 up") != 0) {
    std::fprintf(stderr, "cannot set up namespace %s\n", ns.c_str());
    sh("ip netns del " + ns);
    return 1;
  }
  // Both ends up, and the qdisc attached (link-watch does it up to a second later): the
  // target is a live interface, where a root qdisc change deactivates and reactivates the
  // device (an RCU grace period), as it does on a real one.
  for (int i = 0; i < 500 && sh("ip -n " + ns + " -o link show cqb0 | grep -q 'state UP'") != 0;
       ++i) {
    ::usleep(10'000);
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
  std::vector<double> preparePart;
  for (int i = 0; i < n; ++i) {
    chaosd::FaultRequest r;
    r.runId = "bench";
    r.faultId = "qk-" + std::to_string(i);
    r.faultType = "network.bandwidth";
    r.target = &target;
    r.args = {{"rate", 10'000'000}, {"to", {{"cidr", {"10.99.0.2/32"}}}}};
    // prepare only reads (it is also what `chaosctl plan` runs); the changes are apply+revert.
    const auto tp = Clock::now();
    auto prepared = injector.prepare(r);
    preparePart.push_back(msSince(tp));
    const auto t0 = Clock::now();
    failures += !(prepared && injector.apply(r.faultId, prepared->undo) &&
                  injector.revert(r.faultId, prepared->undo));
    kernelPart.push_back(msSince(t0));
  }
  std::filesystem::remove_all(dir);

  // The bare kernel floor: one root tbf added and deleted through libnl on one socket; and the
  // injector's tree and filter, by hand on one socket.
  std::vector<double> bare;
  std::vector<double> bareSameTree;
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
    for (int i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      failures += bareTree(sock, ifindex);
      bareSameTree.push_back(msSince(t0));
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
  // The same two, `tc -n NS` spawned directly: no shell, no `ip netns exec` (which unshares a
  // mount namespace and remounts /sys for every process).
  std::vector<double> tcSpawned;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    failures += tcSpawn(ns, "qdisc add dev cqb0 root tbf rate 10mbit burst 16kb latency 50ms") != 0;
    failures += tcSpawn(ns, "qdisc del dev cqb0 root") != 0;
    tcSpawned.push_back(msSince(t0));
  }
  std::vector<double> tcSpawnedTree;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    failures += tcSpawn(ns, "qdisc add dev cqb0 root handle c4a0: htb default 1") != 0;
    failures += tcSpawn(ns, "class add dev cqb0 parent c4a0: classid c4a0:1 htb rate 100gbit") != 0;
    failures +=
        tcSpawn(ns, "class add dev cqb0 parent c4a0: classid c4a0:1234 htb rate 100gbit") != 0;
    failures += tcSpawn(ns,
                        "qdisc add dev cqb0 parent c4a0:1234 handle 1234: tbf rate 10mbit burst "
                        "16kb latency 50ms") != 0;
    failures += tcSpawn(ns,
                        "filter add dev cqb0 parent c4a0: prio 2 protocol ip u32 match ip dst "
                        "10.99.0.2/32 flowid c4a0:1234") != 0;
    failures += tcSpawn(ns, "filter del dev cqb0 parent c4a0: prio 2") != 0;
    failures += tcSpawn(ns, "class del dev cqb0 classid c4a0:1234") != 0;
    failures += tcSpawn(ns, "qdisc del dev cqb0 root") != 0;
    tcSpawnedTree.push_back(msSince(t0));
  }
  sh("ip netns del " + ns);

  const double mo = median(ours), mb = median(bare), mt = median(tc), mtt = median(tcTree);
  std::printf("== tbf fault apply + revert, %d times, in namespace %s (medians per cycle)\n", n,
              ns.c_str());
  std::printf("  chaosd (prepare+snapshot, HTB tree, filter, journalled): %8.3f ms\n", mo);
  std::printf("  of which the injector's prepare (reads only):            %8.3f ms\n",
              median(preparePart));
  std::printf("  of which the injector's apply + revert (kernel part):    %8.3f ms\n",
              median(kernelPart));
  std::printf("  bare libnl (root tbf add + delete, one socket):          %8.3f ms\n", mb);
  std::printf("  tc processes (add + del, 2 per cycle):                    %8.3f ms\n", mt);
  std::printf("  tc processes, the same HTB tree and filter (8 per cycle): %8.3f ms\n", mtt);
  const double ms = median(tcSpawned), mst = median(tcSpawnedTree), mbt = median(bareSameTree);
  const double mk = median(kernelPart);
  std::printf("  `tc -n` spawned, no shell (add + del, 2 per cycle):       %8.3f ms\n", ms);
  std::printf("  `tc -n` spawned, the same tree and filter (8 per cycle):  %8.3f ms\n", mst);
  std::printf("  bare libnl, the same tree and filter, one socket:         %8.3f ms\n", mbt);
  std::printf(
      "  ratio spawned tc / chaosd: %.1fx; spawned same tree / chaosd: %.1fx; apply + revert / "
      "bare "
      "same tree: %.2fx (target <= 2x)\n",
      ms / mo, mst / mo, mk / mbt);
  std::printf(
      "  ratio tc / chaosd: %.1fx (target >= 100x); same tree with tc / chaosd: %.1fx; "
      "same tree with tc / chaosd's apply + revert: %.1fx; chaosd / bare libnl: %.1fx\n",
      mt / mo, mtt / mo, mtt / median(kernelPart), mo / mb);
  if (failures != 0) std::printf("  %d operations failed\n", failures);
  return failures == 0 ? 0 : 1;
}
