// The program GuardianTest drives: the guardian (`__guardian`, with test.file registered) and
// an owner that starts a guardian, then journals and applies test.file faults.
//
//   chaosd_guardian_helper own --journal P --run ID --dir D [--faults N] [--mode M]
//                              [--deadline-ms D] [--grace-ms G]
// Modes: hold   apply N faults, then wait to be killed
//        finish apply N faults, revert them, end the run, finish the guardian, exit 0
//        leave  apply N faults, end the run and finish the guardian without reverting
//        churn  journal + apply + revert faults in a loop until killed
// Progress lines on stdout: "guardian PID", "applied N", "churning", "finished".
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "chaosd/engine/Guardian.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/testing/FileFaultInjector.h"

namespace chaosd {
namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int fail(const std::string& what, const Error& error) {
  std::fprintf(stderr, "owner: %s: %s\n", what.c_str(), error.describe().c_str());
  return 1;
}

struct Owner {
  FaultJournal journal;
  std::string runId;
  std::string dir;
  std::chrono::milliseconds deadline;
  GuardianHandle* guardian = nullptr;
  FileFaultInjector injector;
  int next = 0;

  Result<FaultIntent> prepare(bool durable) {
    FaultRequest request;
    request.runId = runId;
    request.faultId = runId + "-f" + std::to_string(next++);
    request.stepName = "step-" + std::to_string(next);
    request.faultType = std::string(kTestFileFault);
    request.args = {{"path", dir}};
    auto prepared = injector.prepare(request);
    if (!prepared) return std::move(prepared).error();
    return makeIntent(request, *prepared, std::chrono::system_clock::now() + deadline, durable);
  }

  // Journals the faults in one transaction, then applies each (the journal says intent first).
  Result<std::vector<FaultIntent>> applyBatch(int count, bool durable) {
    std::vector<FaultIntent> intents;
    for (int i = 0; i < count; ++i) {
      auto intent = prepare(durable);
      if (!intent) return std::move(intent).error();
      intents.push_back(std::move(*intent));
    }
    CHAOSD_TRY(journal.recordIntents(runId, intents));
    for (const auto& f : intents) {
      if (!guardian->alive()) return Error(ErrorCode::kAborted, "the guardian died");
      auto applied = injector.apply(f.faultId, f.undo);
      if (!applied) return std::move(applied).error();
      auto marked = journal.markApplied(f.faultId);
      if (!marked) return std::move(marked).error();
    }
    return intents;
  }

  Result<void> revert(const std::vector<FaultIntent>& faults) {
    for (auto it = faults.rbegin(); it != faults.rend(); ++it) {
      auto r = injector.revert(it->faultId, it->undo);
      if (!r) return std::move(r).error();
      auto marked = journal.markReverted(it->faultId);
      if (!marked) return std::move(marked).error();
    }
    return success();
  }
};

int runOwner(int argc, char** argv) {
  std::map<std::string, std::string> opt{
      {"--faults", "3"}, {"--mode", "hold"}, {"--deadline-ms", "60000"}, {"--grace-ms", "3000"}};
  for (int i = 2; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
  auto number = [&](const char* name) { return std::stol(opt[name]); };
  const std::string mode = opt["--mode"];

  auto journal = openJournal(opt["--journal"]);
  if (!journal) return fail("opening the journal", journal.error());
  auto start = selfStartTime();
  if (!start) return fail("reading the start time", start.error());
  RunRecord run;
  run.runId = opt["--run"];
  run.experiment = "guardian-test-" + mode;
  run.ownerPid = ::getpid();
  run.ownerStartTime = *start;
  if (auto r = journal->beginRun(run); !r) return fail("beginning the run", r.error());

  GuardianConfig config;
  config.journalPath = opt["--journal"];
  config.runId = run.runId;
  config.leadingArgs = {"chaosd_guardian_helper", std::string(kGuardianSubcommand)};
  config.deadlineGrace = std::chrono::milliseconds(number("--grace-ms"));
  auto guardian = startGuardian(config);
  if (!guardian) return fail("starting the guardian", guardian.error());
  say("guardian " + std::to_string(guardian->pid()));

  Owner owner{std::move(*journal),
              run.runId,
              opt["--dir"],
              std::chrono::milliseconds(number("--deadline-ms")),
              &*guardian,
              {},
              0};

  if (mode == "churn") {
    say("churning");
    for (int cycle = 0;; ++cycle) {
      // Every third cycle durable (synchronous=FULL), alternating batches of one and two.
      auto faults = owner.applyBatch(1 + cycle % 2, cycle % 3 == 0);
      if (!faults) return fail("applying", faults.error());
      if (auto r = owner.revert(*faults); !r) return fail("reverting", r.error());
    }
  }

  auto faults = owner.applyBatch(static_cast<int>(number("--faults")), false);
  if (!faults) return fail("applying", faults.error());
  say("applied " + std::to_string(faults->size()));
  if (mode == "hold") {
    for (;;) ::pause();
  }
  if (mode == "finish") {
    if (auto r = owner.revert(*faults); !r) return fail("reverting", r.error());
  }
  if (auto r = owner.journal.endRun(run.runId, "ok"); !r) return fail("ending", r.error());
  if (auto r = guardian->finish(); !r) return fail("finishing the guardian", r.error());
  say("finished");
  return 0;
}

}  // namespace
}  // namespace chaosd

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "__guardian") == 0) {
    return chaosd::runGuardian(argc, argv, chaosd::registerTestFaults);
  }
  if (argc > 1 && std::strcmp(argv[1], "own") == 0) return chaosd::runOwner(argc, argv);
  std::fprintf(stderr, "usage: %s own --journal P --run ID --dir D [--faults N] [--mode M]\n",
               argv[0]);
  return 2;
}
