// The time fault type (time.skew) and its argument schema, and the exec hook that starts exec
// targets with libfaketime preloaded when a time.skew step aims at them.
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/time/ClockKernel.h"
#include "injectors/time/FakeTime.h"
#include "injectors/time/TimeRecords.h"
#include "injectors/time/TimeSkewInjector.h"

namespace chaosd {
namespace {

// Variables that would make libfaketime ignore the control file or stop faking midway.
const std::vector<std::string> kOverridingEnv = {"FAKETIME",
                                                 "FAKETIME_START_AFTER_SECONDS",
                                                 "FAKETIME_STOP_AFTER_SECONDS",
                                                 "FAKETIME_START_AFTER_NUMCALLS",
                                                 "FAKETIME_STOP_AFTER_NUMCALLS",
                                                 "FAKETIME_UPDATE_TIMESTAMP_FILE",
                                                 "FAKETIME_CACHE_DURATION"};

// A process a time.skew step aims at is started with libfaketime reading a control file of
// ours, at "+0" (the true time) until a fault writes its offset. The environment reaches its
// children too. Only an exec can set this up: a running process cannot be given a preload.
class FakeTimeContribution final : public ExecContribution {
 public:
  FakeTimeContribution(std::shared_ptr<FakeTimeTargets> targets, std::shared_ptr<ClockKernel> clock)
      : targets_(std::move(targets)), clock_(std::move(clock)) {}
  ~FakeTimeContribution() override {
    if (pid_ != 0) targets_->remove(pid_, startTime_);
    if (!controlFile_.empty()) {
      ::unlink(controlFile_.c_str());
      ::unlink((controlFile_ + ".new").c_str());
    }
  }
  FakeTimeContribution(const FakeTimeContribution&) = delete;
  FakeTimeContribution& operator=(const FakeTimeContribution&) = delete;

  void beforeExec(ExecOptions& options) override {
    auto library = findFakeTimeLibrary();
    if (!library) {
      problem_ = library.error().describe();
      return;
    }
    const std::string dir =
        options.runDir.empty() ? std::filesystem::temp_directory_path().string() : options.runDir;
    auto file = makeControlFile(dir);
    if (!file) {
      problem_ = file.error().describe();
      return;
    }
    library_ = *library;
    controlFile_ = *file;
    options.preload.push_back(library_);
    options.env["FAKETIME_TIMESTAMP_FILE"] = controlFile_;
    // Read at every clock call: a fault's offset shows at the next call after apply and
    // revert (about 5 us a call; libfaketime's cache would delay a change by up to 2 s).
    options.env["FAKETIME_NO_CACHE"] = "1";
    // The skew is of the wall clock, as a wrong system clock is: CLOCK_MONOTONIC stays true
    // (libfaketime would otherwise move it too, and timers with it).
    options.env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
    options.unsetEnv.insert(options.unsetEnv.end(), kOverridingEnv.begin(), kOverridingEnv.end());
  }

  void started(StartedExec& process, nlohmann::json& observed) override {
    if (!problem_.empty()) {
      observed["faketime"] = {{"error", problem_}};
      return;
    }
    pid_ = process.pid;
    startTime_ = process.startTime;
    targets_->add(
        FakeTimeTarget{pid_, startTime_, controlFile_, library_, clock_->now().realtimeNs});
    observed["faketime"] = {{"library", library_}, {"controlFile", controlFile_}};
  }

 private:
  std::shared_ptr<FakeTimeTargets> targets_;
  std::shared_ptr<ClockKernel> clock_;
  std::string problem_;
  std::string library_;
  std::string controlFile_;
  pid_t pid_ = 0;
  uint64_t startTime_ = 0;
};

std::optional<ArgProblem> validOffset(const ArgContext& ctx) {
  if (!ctx.args.contains("offset") || !ctx.args["offset"].is_string()) return std::nullopt;
  auto offset = parseClockOffset(ctx.args["offset"].get<std::string>());
  if (!offset) return ArgProblem{"offset", offset.error().message()};
  return std::nullopt;
}

// Stepping the host's clock reaches every process, chaosd's own timestamps included: only
// when the experiment says so, checked by `validate` and `plan` before anything runs.
std::optional<ArgProblem> hostClockAllowed(const ArgContext& ctx) {
  if (!ctx.onHost || ctx.allowHostClock) return std::nullopt;
  return ArgProblem{"",
                    "time.skew without a target steps the host's clock (CLOCK_REALTIME) for "
                    "every process: refused; set guardrails.allowHostClock: true, or give an "
                    "exec target"};
}

}  // namespace

void registerTimeFaults(FaultRegistry& registry) {
  auto targets = std::make_shared<FakeTimeTargets>();
  std::shared_ptr<ClockKernel> clock = systemClockKernel();
  FaultType skew;
  skew.name = "time.skew";
  skew.summary =
      "move the clock a started process and its children see (libfaketime), or without a "
      "target the host's clock (guardrails.allowHostClock)";
  skew.targetKinds = {TargetKind::kExec};
  skew.targetOptional = true;  // the host: clock_adjtime, NTP clients paused
  skew.schema.args = {
      arg::required(arg::make("offset", ArgType::kString,
                              "how far the clock is moved, a signed duration: -2h, +30s, +1m30s"))};
  skew.schema.constraints.push_back(validOffset);
  skew.schema.constraints.push_back(hostClockAllowed);
  skew.factory = [targets, clock] {
    return std::make_unique<TimeSkewInjector>(targets, clock, systemProcessKernel(),
                                              TimeSkewInjector::Options{});
  };
  (void)registry.add(std::move(skew));
  registry.addExecHook(
      [targets, clock](const std::vector<ExecStep>& steps) -> std::unique_ptr<ExecContribution> {
        for (const auto& step : steps) {
          if (step.faultType == "time.skew") {
            return std::make_unique<FakeTimeContribution>(targets, clock);
          }
        }
        return nullptr;
      });
}

}  // namespace chaosd
