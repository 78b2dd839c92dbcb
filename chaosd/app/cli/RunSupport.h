#pragma once

#include <csignal>
#include <functional>
#include <string>
#include <thread>

#include "chaosd/base/Result.h"
#include "chaosd/engine/journal/FaultJournal.h"

// What `chaosctl run` and `chaosctl calibrate` share around OwnedRun: stopping on a signal,
// the run's id and folder name, the state journal and what earlier runs left in it.
namespace chaosd::cli {

// While it lives, SIGINT and SIGTERM call `stop` with "interrupted by SIGINT" (from a thread,
// not the handler: the handler only writes a byte to a pipe). No signal mask is changed, so
// child processes (probes, rollbacks) start with the usual one. One at a time per process.
class StopSignals {
 public:
  explicit StopSignals(std::function<void(const std::string&)> stop);
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals();

 private:
  std::thread thread_;
  struct sigaction oldInt_ {};
  struct sigaction oldTerm_ {};
};

// 16 random hex digits.
std::string newRunId();

// The time now, UTC: "20240501T100000Z" (compact, for folder names) or
// "2024-05-01T10:00:00Z" (iso).
std::string utcStamp(bool iso = false);

// "<name>-<UTC stamp>-<first 8 of runId>".
std::string runFolderName(const std::string& name, const std::string& runId);

// The journal in `stateDir` (made 0700 when missing).
Result<FaultJournal> openStateJournal(const std::string& stateDir);

// Reverts what an earlier run left behind (its owner and guardian died, the machine rebooted),
// as the daemon does at its start; faults of live owners are left alone. Prints each.
void recoverLeftovers(FaultJournal& journal);

}  // namespace chaosd::cli
