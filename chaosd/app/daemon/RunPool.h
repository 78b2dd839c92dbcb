#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "chaosd/app/daemon/Metrics.h"
#include "chaosd/app/daemon/Policy.h"
#include "chaosd/app/daemon/RunEvents.h"
#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "chaosd/engine/TargetKeys.h"
#include "chaosd/engine/journal/FaultJournal.h"
#include "injectors/FaultRegistry.h"

// The experiments the daemon runs at once, each on a thread of its own, each an OwnedRun as
// `chaosctl run`'s: journal the run, start its guardian, run the engine, write the run folder
// (<stateDir>/runs/<id>), end the run. Two runs whose faults would touch the same
// interface, process or path are not run together: the second is refused, whether the first
// is the daemon's or a `chaosctl run` of its own (the journal records every run's targets).
namespace chaosd::daemon {

struct RunPoolConfig {
  std::string stateDir;  // runs/<id> holds each run's reports
  std::string logLevel = "info";
  // The guardian: this program with these leading arguments (see GuardianConfig).
  std::string guardianExecutable = "/proc/self/exe";
  std::vector<std::string> guardianArgs{"chaosd", "__guardian"};
  // Who may inject what where (docs/security.md); null: every caller may submit anything
  // (tests of the pool alone).
  const PolicyStore* policy = nullptr;
  // What the journal and runs/ keep; applied after every run (pruneHistory).
  Retention retention;
};

struct SubmitRequest {
  std::string yaml;
  std::map<std::string, std::string> vars;
  std::string fileName = "submitted.yaml";  // how diagnostics name the document
  std::string source = "api";               // "api" or "schedule:<id>"
  pid_t invokerPid = 0;                     // the caller (protected from its own faults)
  // Who asks: a non-root caller's runs execute every command as the caller and are checked
  // against the policy. Unset: the daemon itself (as root).
  std::optional<Credentials> caller;
  // A synchronised start: the method begins at this instant (checked by the caller).
  std::optional<std::chrono::system_clock::time_point> startAt;
};

struct Submitted {
  std::string runId;
  std::string experiment;
  std::string experimentHash;
};

// Why a submission was refused: the error (kInvalid, kConflict, kAborted when shutting down)
// and, for an invalid experiment, every diagnostic.
struct SubmitRefusal {
  Error error;
  std::vector<std::string> diagnostics;
  std::string experimentHash;
};

// The experiment's hash as the audit trail names it: sha256 of the YAML, then each variable
// as NAME=VALUE on a line of its own.
std::string experimentHash(const std::string& yaml, const std::map<std::string, std::string>& vars);

// Deletes the runs, faults and audit lines `retention` no longer keeps from the journal, and
// the deleted runs' folders (<stateDir>/runs/<id>). Logs what it removed; a failure is logged
// and changes nothing else (the history is trimmed at the next call).
void pruneHistory(FaultJournal& journal, const Retention& retention, const std::string& stateDir);

class RunPool {
 public:
  RunPool(FaultJournal& journal, const FaultRegistry& registry, Metrics& metrics,
          RunPoolConfig config);
  ~RunPool();  // aborts what runs and waits for it

  // Parses and validates the experiment, checks it against the runs in progress and starts
  // it. Returns at once; the run goes on in its thread.
  std::variant<Submitted, SubmitRefusal> submit(const SubmitRequest& request);

  // Live progress of a run in progress (phase, faults held, samples); nullopt when the run is
  // not running here.
  std::optional<nlohmann::json> progress(const std::string& runId) const;
  // Asks a run in progress to stop (faults reverted at once). kNotFound when not running here.
  Result<void> abort(const std::string& runId, const std::string& reason);
  // Refuses new runs, aborts every run in progress and waits for them to end.
  void shutdown(const std::string& reason);
  size_t active() const;
  // The runs in progress here, newest submission first.
  std::vector<std::string> activeIds() const;
  // The journalled caller of a run in progress here (RunRecord::caller); nullopt when not
  // running here.
  std::optional<nlohmann::json> caller(const std::string& runId) const;
  // The live feed of a run in progress here (or one that ended a moment ago: the last 16 are
  // kept); null otherwise.
  std::shared_ptr<const RunEvents> events(const std::string& runId) const;
  // The directory of a run's reports (it may not exist).
  std::string runDir(const std::string& runId) const;
  // Waits until no run is in progress or the timeout passes; true when none is.
  bool waitIdle(std::chrono::milliseconds timeout) const;

  struct Active;

 private:
  // submit() without its audit line.
  std::variant<Submitted, SubmitRefusal> admit(const SubmitRequest& request,
                                               const std::string& hash);
  void execute(std::shared_ptr<Active> run);
  // The run in progress here whose targets overlap run's, as a kConflict error. Under mu_.
  std::optional<Error> conflictWithActive(const Active& run) const;
  void finished(const std::string& runId);

  FaultJournal& journal_;
  const FaultRegistry& registry_;
  Metrics& metrics_;
  RunPoolConfig config_;
  mutable std::mutex mu_;
  mutable std::condition_variable idle_;
  bool accepting_ = true;
  std::map<std::string, std::shared_ptr<Active>> active_;
  std::deque<std::pair<std::string, std::shared_ptr<RunEvents>>> endedFeeds_;
  std::vector<std::thread> threads_;  // joined at shutdown; finished ones joined on submit
  std::vector<std::thread::id> done_;
};

}  // namespace chaosd::daemon
