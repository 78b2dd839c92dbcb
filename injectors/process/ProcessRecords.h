#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/ProcessTable.h"
#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"

// The process family's data as typed structs, each with its one JSON conversion: the arguments
// of process.kill, the undo records of process.kill / process.pause (ProcessPlan) and of an
// exec target (ExecUndo), and what apply observes per victim. The code that acts reads only
// these structs. Undo records are journalled and reverted from by the guardian, perhaps of
// another release: their JSON keeps its keys and types. fromJson never throws: a corrupt
// record is a kInvalid error. Observed records keep the keys reports/ObservedText.cpp reads.
namespace chaosd {

// One process a fault hits: (pid, startTime) names it across pid reuse.
struct Victim {
  pid_t pid = 0;
  uint64_t startTime = 0;  // /proc/PID/stat field 22, clock ticks after boot
  std::string comm;

  nlohmann::json toJson() const;  // {"pid", "startTime", "comm"}
  // pid (an integer) and startTime (unsigned) are required, comm is optional. A pid <= 0 is
  // refused: to the kernel it names a process group, or every process.
  static Result<Victim> fromJson(const nlohmann::json& j);
};

// process.kill's arguments, as its schema normalised them (ProcessFaults.cpp): the signal
// number (default SIGKILL) and the interval in nanoseconds (absent: one round).
struct KillArgs {
  int signal = SIGKILL;
  std::chrono::nanoseconds interval{0};

  nlohmann::json toJson() const;
  // Absent keys keep their defaults; a key of the wrong type is kInvalid.
  static Result<KillArgs> fromJson(const nlohmann::json& args);
};

// The undo record of process.kill and process.pause: what prepare() decided. apply, revert
// and audit work from it alone, in the owner or in the guardian.
struct ProcessPlan {
  std::string faultId;
  std::string faultType;     // "process.kill" / "process.pause"
  std::string selectorText;  // "process name=api-server"
  ProcessSelector selector;  // re-resolved by interval rounds and the restart watch
  Selection selection;       // its seed is `seed`
  uint64_t seed = 0;
  bool seedFromExperiment = false;  // else drawn from std::random_device, recorded to replay
  int signal = 0;
  std::chrono::nanoseconds duration{0};  // 0: an instantaneous kill
  std::chrono::nanoseconds interval{0};  // process.kill only; 0: one round
  bool noop = false;                     // `empty: skip` and nothing matched
  size_t matched = 0;                    // processes the selector matched at prepare
  size_t eligible = 0;                   // of those, the ones that may be hit
  std::vector<std::string> refused;      // protected matches, one line each
  std::vector<Victim> victims;           // chosen at prepare (interval: round 0's one)
  std::vector<Victim> stopped;           // process.pause: the victims we stop, and resume
  std::vector<Victim> alreadyStopped;    // process.pause: stopped by someone else; left alone

  // Version 1: "stopped" and "alreadyStopped" are written for process.pause only.
  nlohmann::json toJson() const;
  // Checks the record's shape and that it belongs to faultId ("" accepts any). faultId and
  // faultType are required; other keys absent take their defaults, as in every release.
  static Result<ProcessPlan> fromJson(const nlohmann::json& undo, std::string_view faultId = {});
};

// The undo record of a process an exec target started (process.exec): its group is stopped
// at revert, SIGTERM first, SIGKILL after `grace`.
struct ExecUndo {
  pid_t pid = 0;  // also the process group id
  uint64_t startTime = 0;
  std::string program;  // the resolved executable, for people
  std::chrono::milliseconds grace{5000};

  nlohmann::json toJson() const;  // {"pid", "startTime", "program", "graceMs"}
  // pid (> 1) and startTime are required. A graceMs other than an integer, or a program
  // other than a string, is ignored: stopping the group must not depend on them.
  static Result<ExecUndo> fromJson(const nlohmann::json& undo);
};

// One entry of process.kill's observed "victims": a victim and what became of it, or an
// interval round that signalled no one (no victim, its time in atMs).
struct KillOutcome {
  std::optional<Victim> victim;
  std::optional<uint64_t> round;  // interval kills only
  std::optional<double> atMs;
  std::string outcome;                // "signalled", victimStateText(), "error: ..."
  std::optional<double> signalledMs;  // when signalled: then diedMs is written, null until seen
  std::optional<double> diedMs;
  std::optional<double> diedAfterSignalMs;

  nlohmann::json toJson() const;
};

// One entry of process.kill's observed "restarts": a process matching the selector that
// appeared after a kill, and the kill it replaces (the latest one before it started).
struct RestartSeen {
  Victim process;  // comm: what it runs at the revert, re-read then (it may have exec'd)
  // The command it had when seen, when that is not known to be what it runs now: it exec'd
  // since (a supervisor's fork seen before its exec: `ip` of `ip netns exec NS python3 ...`),
  // or it was gone by the revert, so the name may be the one before an exec. Empty otherwise.
  std::string startedAs;
  double detectedMs = 0;
  std::optional<pid_t> replaces;
  std::optional<double> restartMs;

  nlohmann::json toJson() const;
};

// One entry of process.pause's observed "victims".
struct PauseOutcome {
  Victim victim;
  std::string outcome;  // "signalled", "stopped", victimStateText(), ...
  std::optional<double> signalledMs;
  std::optional<double> stoppedMs;

  nlohmann::json toJson() const;
};

}  // namespace chaosd
