// The owner process NfqueueDelayTest kills: it journals and applies one network.delay through
// NFQUEUE (the consumer runs in this process), optionally under a guardian, then waits.
//
//   chaosd_nfqueue_helper own --journal P --run ID --netns NAME --iface IF --cidr C
//                             --delay-ms D [--guardian 1]
//   chaosd_nfqueue_helper __guardian ...   (the guardian, with network.delay -> NFQUEUE)
// Progress lines on stdout: "guardian PID", "applied QUEUE".
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueDelay.h"

namespace chaosd {
namespace {

void registerNfqueueDelay(FaultRegistry& registry) {
  FaultType t;
  t.name = "network.delay";
  t.targetKinds = {TargetKind::kInterface};
  t.factory = [] { return std::make_unique<NfqueueDelayInjector>(); };
  (void)registry.add(std::move(t));
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int fail(const std::string& what, const Error& error) {
  std::fprintf(stderr, "owner: %s: %s\n", what.c_str(), error.describe().c_str());
  return 1;
}

int runOwner(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"--guardian", "0"}, {"--delay-ms", "50"}};
  for (int i = 2; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
  auto journal = openJournal(opt["--journal"]);
  if (!journal) return fail("opening the journal", journal.error());
  auto start = selfStartTime();
  if (!start) return fail("reading the start time", start.error());
  RunRecord run;
  run.runId = opt["--run"];
  run.experiment = "nfqueue-owner";
  run.ownerPid = ::getpid();
  run.ownerStartTime = *start;
  if (auto r = journal->beginRun(run); !r) return fail("beginning the run", r.error());
  std::optional<GuardianHandle> guardian;
  if (opt["--guardian"] == "1") {
    GuardianConfig config;
    config.journalPath = opt["--journal"];
    config.runId = run.runId;
    config.leadingArgs = {"chaosd_nfqueue_helper", std::string(kGuardianSubcommand)};
    auto g = startGuardian(config);
    if (!g) return fail("starting the guardian", g.error());
    say("guardian " + std::to_string(g->pid()));
    guardian.emplace(std::move(*g));
  }
  TargetSpec target;
  target.name = "link";
  target.kind = TargetKind::kInterface;
  target.interface.name = opt["--iface"];
  target.interface.netns.name = opt["--netns"];
  FaultRequest request;
  request.runId = run.runId;
  request.faultId = run.runId + "-delay";
  request.stepName = "slow";
  request.faultType = "network.delay";
  request.target = &target;
  request.args = {{"delay", std::stoll(opt["--delay-ms"]) * 1'000'000},
                  {"direction", "egress"},
                  {"to", {{"cidr", {opt["--cidr"]}}}}};
  NfqueueDelayInjector injector;
  auto prepared = injector.prepare(request);
  if (!prepared) return fail("preparing", prepared.error());
  auto intent = makeIntent(request, *prepared,
                           std::chrono::system_clock::now() + std::chrono::minutes(5), false);
  if (auto r = journal->recordIntent(run.runId, intent); !r) return fail("journalling", r.error());
  auto applied = injector.apply(request.faultId, prepared->undo);
  if (!applied) return fail("applying", applied.error());
  if (auto r = journal->markApplied(request.faultId); !r) return fail("marking", r.error());
  say("applied " + std::to_string(prepared->undo["queue"].get<int>()));
  for (;;) ::pause();
}

}  // namespace
}  // namespace chaosd

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "__guardian") == 0) {
    return chaosd::runGuardian(argc, argv, chaosd::registerNfqueueDelay);
  }
  if (argc > 1 && std::strcmp(argv[1], "own") == 0) return chaosd::runOwner(argc, argv);
  std::fprintf(stderr, "usage: %s own --journal P --run ID --netns N --iface I --cidr C\n",
               argv[0]);
  return 2;
}
