#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

namespace chaosd {

struct TargetSpec;
struct Guardrails;

// One fault about to be prepared: its type, its target (nullptr when the type takes none)
// and its arguments, already validated against the type's ArgSchema and normalised.
struct FaultRequest {
  std::string runId;
  std::string faultId;  // unique per fault applied; names kernel objects where useful
  std::string stepName;
  std::string faultType;  // "network.delay"
  const TargetSpec* target = nullptr;
  nlohmann::json args;
  std::chrono::nanoseconds duration{0};
  // The experiment's guardrails, for checks that need the machine's state (network.down's
  // default-route and SSH checks); nullptr: the defaults (everything protected).
  const Guardrails* guardrails = nullptr;
};

// Something the faults of one run share, held from the first fault that needs it to the end of
// the run: the nftables table whose base chains the partition and loss rules hang from
// (hooking a base chain into netfilter waits for an RCU grace period, so once per run, not once
// per fault). The engine journals and applies it, once per key, before the first fault that
// names it, and reverts it after the run's last fault; the guardian reverts it like a fault
// (journalled before the faults, so reverted after them). `faultType` is an internal fault type
// whose injector applies and reverts `undo`.
struct SharedNeed {
  std::string key;  // one resource per key and run: "nft:/run/netns/app:chaosd_run_1a2b"
  std::string faultType;
  nlohmann::json undo;
  std::string description;
};

// The result of prepare(): everything needed to undo the fault, decided before the kernel is
// touched, so it can be journalled as intent. revert(undo) must work from this alone, in
// another process (the guardian), after the owner died.
struct PreparedFault {
  nlohmann::json undo;
  std::string description;             // "delay 200ms on veth-db (netns app)"
  std::vector<std::string> resources;  // conflict keys: "iface:/run/netns/app:veth-db"
  bool revertible = true;              // false for a kill: nothing can bring it back
  std::vector<SharedNeed> shared;      // held before this fault is applied
};

// What apply() observed (bytes actually filled, backend used, pids signalled).
struct AppliedFault {
  std::string backend;
  nlohmann::json observed = nlohmann::json::object();
};

// A fault family's implementation. Contract for every method: it touches only what the
// undo record names, and returns errors as values.
class Injector {
 public:
  virtual ~Injector() = default;

  // Resolves the target and decides names and handles. Reads the machine, never changes it.
  virtual Result<PreparedFault> prepare(const FaultRequest& request) = 0;

  // Applies a prepared fault. On failure it may leave a partial state: the engine then calls
  // revert(undo), which must clean it up.
  virtual Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) = 0;

  // Removes the fault. Idempotent; succeeds when there is nothing left to remove (an intent
  // never applied, a second revert). Returns what was observed during the fault.
  virtual Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) = 0;

  // Looks for anything of this fault left on the machine after revert; one line each.
  virtual Result<std::vector<std::string>> audit(const nlohmann::json& undo) = 0;
};

}  // namespace chaosd
