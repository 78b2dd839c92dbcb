#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/Injector.h"

// process.kill: a signal (default SIGKILL) through a pidfd to each selected process, once or,
// with `interval`, to one selected process per interval for the step's duration. Then it
// watches for a process that replaces a victim (a supervisor's restart) and records the time
// it took. Nothing to undo. docs/faults/process.md.
namespace chaosd {

class KillInjector final : public Injector {
 public:
  struct Options {
    // How long apply() waits for the victims to die before it returns; the watch goes on
    // in the background for the rest of the step's duration.
    std::chrono::milliseconds deathWait{2000};
    // How long an instantaneous kill (no duration) watches for a restart at most. Revert
    // ends the watch in any case (it never waits for it), and the engine reverts an
    // instantaneous fault right after applying it.
    std::chrono::milliseconds instantRestartWatch{10000};
    // How often the restart watch looks for new processes.
    std::chrono::milliseconds restartPoll{25};
  };
  KillInjector();  // the real kernel
  explicit KillInjector(Options options);
  KillInjector(std::shared_ptr<ProcessKernel> kernel, Options options);
  // Stops and joins the watches still running.
  ~KillInjector() override;
  KillInjector(const KillInjector&) = delete;
  KillInjector& operator=(const KillInjector&) = delete;

  // Resolves the selector now and chooses the victims (interval: round 0's one) with the
  // experiment's seed or a recorded fresh one. Reads only. Refuses stopping signals
  // (STOP, TSTP, TTIN, TTOU: use process.pause, which resumes them).
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Signals every victim still the recorded process (pid and start time) through a pidfd;
  // one that exited or whose pid was reused is recorded, never signalled. Waits up to
  // deathWait for them to die, then starts the background watch (interval rounds, later
  // deaths, restarts). Observed: seed, victims with their outcome, signalledMs and diedMs.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Nothing to undo. Ends this fault's watch at once, takes a last look (deaths, a restart
  // already there) and returns what was seen: victims, interval rounds, restarts and
  // timeToRestartMs. From another instance (the guardian): a note only. Idempotent.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // Nothing can be left by a kill.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  struct Run;  // one applied kill and its watch (KillInjector.cpp)

 private:
  std::shared_ptr<ProcessKernel> kernel_;
  Options options_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Run>> runs_;  // by fault id
};

}  // namespace chaosd
