// network_bench: apply + revert of a partition, N times, in a network namespace of the
// bench's own: chaosd's path as the engine takes it (prepare, journal the intent, one
// libnftables transaction adding the fault's rules to the run's table, mark applied; then one
// transaction deleting them by handle, mark reverted; the run's table is created once, before
// the first cycle, as the engine does per run) against the peers' mechanism, an `iptables`
// process per change (-A, then -D), and an `nft` process per change, in the same run. Also the
// cost of a table per fault (how chaosd did it before: a base chain hooked and unhooked per
// fault), and the same for network.reset against iptables REJECT --reject-with tcp-reset
// processes. Target: chaosd at least 50x faster than iptables processes. Needs root; creates and
// deletes namespace chaosd-bench-<pid> and a journal in a temporary folder.
//
// `network_bench [N]` (default 200).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NftablesInjector.h"

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "network_bench needs root (it creates a network namespace)\n");
    return 1;
  }
  const std::string ns = "chaosd-bench-" + std::to_string(::getpid());
  if (sh("ip netns add " + ns) != 0 ||
      sh("ip -n " + ns + " link add cbench0 type veth peer name cbench1") != 0 ||
      sh("ip -n " + ns + " link set cbench0 up") != 0) {
    std::fprintf(stderr, "cannot set up namespace %s\n", ns.c_str());
    sh("ip netns del " + ns);
    return 1;
  }

  chaosd::TargetSpec target;
  target.name = "link";
  target.kind = chaosd::TargetKind::kInterface;
  target.interface.name = "cbench0";
  target.interface.netns.name = ns;
  char dirTemplate[] = "/tmp/chaosd-bench-XXXXXX";
  const std::string dir = ::mkdtemp(dirTemplate);
  auto journal = chaosd::openJournal(dir + "/journal.db");
  chaosd::RunRecord run;
  run.runId = "bench";
  run.experiment = "network_bench";
  run.ownerPid = ::getpid();
  if (!journal || !journal->beginRun(run)) {
    std::fprintf(stderr, "cannot open a journal in %s\n", dir.c_str());
    sh("ip netns del " + ns);
    return 1;
  }
  chaosd::NftablesInjector injector;
  chaosd::NftablesTableInjector table;
  int failures = 0;
  auto request = [&](int i, const std::string& type = "network.partition") {
    chaosd::FaultRequest r;
    r.runId = "bench";
    r.faultId = "bench-" + type + "-" + std::to_string(i);
    r.faultType = type;
    r.target = &target;
    r.args = {{"cidr", {"10.99.0.2/32"}}, {"direction", "both"}};
    return r;
  };
  // The run's table, once (the engine's shared need), timed on its own.
  auto first = injector.prepare(request(-1));
  const nlohmann::json tableUndo = first->shared.at(0).undo;
  const auto tt = Clock::now();
  failures += !table.apply("bench-table", tableUndo).ok();
  const double tableMs = msSince(tt);
  // n journalled apply + revert cycles of one fault type, in the run's table: ms in all.
  auto cycles = [&](const std::string& type) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      chaosd::FaultRequest r = request(i, type);
      auto prepared = injector.prepare(r);
      if (!prepared) {
        ++failures;
        continue;
      }
      const bool ok =
          journal->recordIntent("bench", chaosd::makeIntent(r, *prepared, {}, false)) &&
          injector.apply(r.faultId, prepared->undo) && journal->markApplied(r.faultId) &&
          injector.revert(r.faultId, prepared->undo) && journal->markReverted(r.faultId);
      failures += !ok;
    }
    return msSince(t0);
  };
  const double ours = cycles("network.partition");
  const double oursReset = cycles("network.reset");
  failures += !table.revert("bench-table", tableUndo).ok();

  // A table per fault: the table and its base chains added and deleted in every cycle.
  const auto tp = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto prepared = injector.prepare(request(i));
    const bool ok = prepared && table.apply("t", tableUndo) &&
                    injector.apply(prepared->undo["faultId"], prepared->undo) &&
                    table.revert("t", tableUndo);
    failures += !ok;
  }
  const double perFault = msSince(tp);
  std::filesystem::remove_all(dir);

  const std::string exec = "ip netns exec " + ns + " ";
  const auto t1 = Clock::now();
  for (int i = 0; i < n; ++i) {
    failures += sh(exec + "iptables -A OUTPUT -o cbench0 -d 10.99.0.2/32 -j DROP") != 0;
    failures += sh(exec + "iptables -A INPUT -i cbench0 -s 10.99.0.2/32 -j DROP") != 0;
    failures += sh(exec + "iptables -D OUTPUT -o cbench0 -d 10.99.0.2/32 -j DROP") != 0;
    failures += sh(exec + "iptables -D INPUT -i cbench0 -s 10.99.0.2/32 -j DROP") != 0;
  }
  const double iptables = msSince(t1);

  // The peers' way to reset connections: iptables REJECT --reject-with tcp-reset, a process
  // per rule added or deleted.
  const std::string reject = " -p tcp -j REJECT --reject-with tcp-reset";
  const auto t3 = Clock::now();
  for (int i = 0; i < n; ++i) {
    failures += sh(exec + "iptables -A OUTPUT -o cbench0 -d 10.99.0.2/32" + reject) != 0;
    failures += sh(exec + "iptables -A INPUT -i cbench0 -s 10.99.0.2/32" + reject) != 0;
    failures += sh(exec + "iptables -D OUTPUT -o cbench0 -d 10.99.0.2/32" + reject) != 0;
    failures += sh(exec + "iptables -D INPUT -i cbench0 -s 10.99.0.2/32" + reject) != 0;
  }
  const double iptablesReset = msSince(t3);

  const auto t2 = Clock::now();
  for (int i = 0; i < n; ++i) {
    failures += sh(exec +
                   "nft 'add table inet b; add chain inet b o { type filter hook output "
                   "priority 0; }; add rule inet b o oifname \"cbench0\" ip daddr 10.99.0.2 "
                   "drop'") != 0;
    failures += sh(exec + "nft delete table inet b") != 0;
  }
  const double nft = msSince(t2);
  sh("ip netns del " + ns);

  std::printf("== partition apply + revert, %d times, in namespace %s\n", n, ns.c_str());
  std::printf("  chaosd (rules in the run's table, journalled): %8.1f ms (%.3f ms per cycle)\n",
              ours, ours / n);
  std::printf("    the run's table, created once per run:       %8.2f ms\n", tableMs);
  std::printf("  a table per fault (hooks per fault):           %8.1f ms (%.2f ms per cycle)\n",
              perFault, perFault / n);
  std::printf("  iptables processes (4 per cycle):              %8.1f ms (%.2f ms per cycle)\n",
              iptables, iptables / n);
  std::printf("  nft processes (2 per cycle):                   %8.1f ms (%.2f ms per cycle)\n",
              nft, nft / n);
  std::printf(
      "  ratio iptables / chaosd: %.1fx (target >= 50x); nft / chaosd: %.1fx; "
      "table per fault / chaosd: %.1fx\n",
      iptables / ours, nft / ours, perFault / ours);
  std::printf("== network.reset apply + revert, %d times\n", n);
  std::printf("  chaosd (counted reject rules, journalled):     %8.1f ms (%.3f ms per cycle)\n",
              oursReset, oursReset / n);
  std::printf("  iptables REJECT tcp-reset processes (4/cycle): %8.1f ms (%.2f ms per cycle)\n",
              iptablesReset, iptablesReset / n);
  std::printf("  ratio iptables / chaosd: %.1fx\n", iptablesReset / oursReset);
  if (failures != 0) std::printf("  %d operations failed\n", failures);
  return failures == 0 ? 0 : 1;
}
