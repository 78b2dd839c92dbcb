// OwnedRun: the one path from begin to end that chaosctl run and the daemon share. A run is
// journalled and ended with its outcome, its run folder written, the caller told of the end
// once; a run on a target another live run holds is refused before anything begins; an abort
// asked for before the engine starts still stops it. No root: a command probe and a disk
// fault on a scratch folder, with chaosctl as the guardian's program.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/run/OwnedRun.h"
#include "chaosd/engine/Recovery.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "experiments/parser/ExperimentParser.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

class OwnedRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-ownedrun-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto j = openJournal(dir_ + "/journal.db");
    ASSERT_TRUE(j.ok()) << j.error().describe();
    journal_.emplace(std::move(*j));
  }
  void TearDown() override {
    journal_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // An experiment whose only probe is `true`; with `fill`, a 1 MiB disk.fill of dir_/data.
  Experiment experiment(bool fill) {
    std::string yaml =
        "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: owned}\n"
        "targets:\n  data: {path: \"" +
        dir_ +
        "/data\"}\n"
        "steadyState:\n  baseline: {duration: 200ms}\n  recovery: {duration: 200ms}\n"
        "  probes:\n    - name: ok\n      command: {argv: [/bin/true]}\n      every: 50ms\n"
        "method:\n";
    yaml += fill ? "  - {name: fill, fault: disk.fill, target: data, args: {size: 1MiB}, "
                   "duration: 200ms}\n"
                 : "  - {name: wait, pause: 100ms}\n";
    fs::create_directories(dir_ + "/data");
    ParseOptions options;
    options.registry = &cli::builtinRegistry();
    ParseResult parsed = parseExperimentText(yaml, "owned.yaml", options);
    EXPECT_TRUE(parsed.ok()) << (parsed.diagnostics.empty() ? "" : parsed.diagnostics[0].str());
    return parsed.ok() ? std::move(*parsed.experiment) : Experiment{};
  }

  OwnedRunConfig config(const std::string& runId) {
    OwnedRunConfig c;
    c.journal = &*journal_;
    c.registry = &cli::builtinRegistry();
    c.runId = runId;
    c.runDir = dir_ + "/runs/" + runId;
    c.guardian.executable = CHAOSCTL_PATH;
    c.guardian.logLevel = "warn";
    c.onEnded = [this](Outcome o) { ended_.push_back(o); };
    return c;
  }

  std::string dir_;
  std::optional<FaultJournal> journal_;
  std::vector<Outcome> ended_;
};

TEST_F(OwnedRunTest, ARunIsJournalledEndedAndWrittenAndTheCallerToldOnce) {
  const Experiment exp = experiment(/*fill=*/true);
  OwnedRun run(exp, config("run-ok"));
  ASSERT_EQ(run.targets().size(), 1u);
  EXPECT_EQ(run.targets()[0].key, "path:" + fs::weakly_canonical(dir_ + "/data").string());
  auto result = run.run();
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_EQ(result->run.outcome, Outcome::kOk) << result->run.reasons.size();
  EXPECT_EQ(result->exitCode(), 0);
  ASSERT_EQ(ended_.size(), 1u);
  EXPECT_EQ(ended_[0], Outcome::kOk);
  // The journal: the run ended ok, its one fault reverted.
  auto record = journal_->run("run-ok");
  ASSERT_TRUE(record.ok()) << record.error().describe();
  EXPECT_TRUE(record->endedAt.has_value());
  EXPECT_EQ(record->outcome, "ok");
  auto faults = journal_->faultsOfRun("run-ok");
  ASSERT_TRUE(faults.ok());
  ASSERT_EQ(faults->size(), 1u);
  EXPECT_EQ((*faults)[0].state, FaultState::kReverted);
  // The run folder: report.json and the reports made from it.
  EXPECT_FALSE(result->reportError.has_value());
  const std::string folder = dir_ + "/runs/run-ok";
  std::ifstream in(folder + "/report.json");
  const auto doc = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["outcome"], "ok");
  EXPECT_EQ(result->reports.size(), 3u);
  for (const char* f : {"junit.xml", "summary.md", "report.html"}) {
    EXPECT_TRUE(fs::exists(folder + "/" + f)) << f;
  }
}

TEST_F(OwnedRunTest, ARunOnATargetALiveRunHoldsIsRefusedBeforeItBegins) {
  const Experiment exp = experiment(/*fill=*/true);
  OwnedRun first(exp, config("holder"));
  // The holder is journalled as begun by a live owner (this process), as a run in progress.
  RunRecord holder;
  holder.runId = "holder";
  holder.experiment = "owned";
  holder.ownerPid = ::getpid();
  auto startTime = selfStartTime();
  ASSERT_TRUE(startTime.ok());
  holder.ownerStartTime = *startTime;
  holder.targets = first.targets();
  ASSERT_TRUE(journal_->beginRun(holder, journalOwnerAlive).ok());

  OwnedRun second(exp, config("second"));
  auto result = second.run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), ErrorCode::kConflict) << result.error().describe();
  EXPECT_NE(result.error().describe().find("holder"), std::string::npos);
  EXPECT_FALSE(journal_->run("second").ok()) << "a refused run is not journalled";
  EXPECT_TRUE(ended_.empty());
  EXPECT_FALSE(fs::exists(dir_ + "/runs/second/report.json"));
}

TEST_F(OwnedRunTest, AnAbortAskedForBeforeTheEngineStartsStopsTheRun) {
  const Experiment exp = experiment(/*fill=*/false);
  OwnedRun run(exp, config("aborted"));
  run.requestAbort("stopped by the test");
  run.requestAbort("a second reason is not kept");
  EXPECT_EQ(run.abortReason(), "stopped by the test");
  auto result = run.run();
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_EQ(result->run.outcome, Outcome::kAborted);
  EXPECT_EQ(result->exitCode(), 3);
  ASSERT_EQ(ended_.size(), 1u);
  EXPECT_EQ(ended_[0], Outcome::kAborted);
  auto record = journal_->run("aborted");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->outcome, "aborted");
}

TEST(OwnedRunResultTest, AMissingReportIsARuntimeErrorUnlessSomethingWasLeftBehind) {
  OwnedRunResult r;
  r.run.outcome = Outcome::kDeviated;
  EXPECT_EQ(r.exitCode(), 1);
  r.reportError = Error(ErrorCode::kIo, "disk full");
  EXPECT_EQ(r.exitCode(), 5);
  r.run.outcome = Outcome::kLeftovers;
  EXPECT_EQ(r.exitCode(), 4);
}

}  // namespace
}  // namespace chaosd
