#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "experiments/model/Experiment.h"

// Who may inject what where (docs/security.md): the daemon's policy file, by default
// /etc/chaosd/policy.yaml, reloaded on SIGHUP. Root may do anything; any other caller the
// socket lets in may only read (list, status, reports) until a grant names them. A grant names
// users and groups, the fault types they may use, the targets those faults may aim at, and the
// limits that apply; a submission is allowed when every fault step is allowed by one grant of
// the caller's. Parsed once into plain structs; the matcher is a pure function.
namespace chaosd::daemon {

inline constexpr const char* kDefaultPolicyPath = "/etc/chaosd/policy.yaml";

struct PolicyGrant {
  std::string name;  // for messages; "grant N" when the file names none
  int line = 0;      // of the grant in the policy file, 1-based
  std::vector<uid_t> uids;
  std::vector<std::string> userNames;
  std::vector<gid_t> gids;
  // Fault types: "process.kill", a family "network.*", or "*" for every type.
  std::vector<std::string> faults;
  // Targets. Process targets must be confined by their selector to one of these cgroup
  // subtrees ("/system.slice/a.service"), or to processes of one of these users.
  std::vector<std::string> cgroups;
  std::vector<uid_t> processUids;
  // Interface targets: "NETNS/IFNAME", NETNS a name under /run/netns or "host", IFNAME or "*".
  std::vector<std::string> interfaces;
  // Path targets: canonical prefixes (a path inside one; whole components).
  std::vector<std::string> paths;
  // Container targets by name: globs of the container names ("web", "web-*"); a target must
  // select by a name they match (an id or labels alone are not confined).
  std::vector<std::string> containers;
  // Kubernetes pods: "NAMESPACE/POD" globs ("shop/*", "shop/web-*"); a kubernetes: target's
  // namespace and pod (its glob as written, or a name) must be covered by one.
  std::vector<std::string> kubernetes;
  // Faults without a target (host-wide: the host's clock, CPU stress of the machine).
  bool host = false;
  // Limits: each fault step's duration, and the experiment's guardrail maxTargets.
  std::optional<Duration> maxDuration;
  std::optional<uint32_t> maxTargets;
};

struct Policy {
  std::string path;     // where it was read from ("" when built in code)
  bool loaded = false;  // false: no file there; every non-root caller is read-only
  std::vector<PolicyGrant> grants;
};

// Parses a policy document; errors name the file, line and field. Group and user names are
// looked up in the system's databases here, once.
Result<Policy> parsePolicy(const std::string& text, const std::string& path);
// Reads the file; a missing file is an empty policy (loaded = false), not an error.
Result<Policy> loadPolicy(const std::string& path);

// What the policy says about one experiment for one caller.
struct PolicyDecision {
  bool allowed = false;
  // Why not: the step, its line in the experiment, and each grant of the caller's with its
  // line in the policy file and what it lacks. "" when allowed.
  std::string reason;
  // The limits the grants used impose, to be applied to the experiment's guardrails.
  std::optional<uint32_t> maxTargets;
  std::optional<Duration> maxDuration;
  std::vector<std::string> grantsUsed;  // "payments (/etc/chaosd/policy.yaml:3)"
};

// Whether `who` may run `experiment`. Root always may; a caller with no grant may not (the
// read-only default); otherwise every fault step must be allowed by one grant of the caller's:
// its type, its target (none: host-wide) and its duration. Exec targets (processes the run
// starts as the caller) need no target grant.
PolicyDecision checkExperiment(const Policy& policy, const Credentials& who,
                               const Experiment& experiment);
// Whether `who` has any grant (may submit at all, pause or delete their own schedules).
bool hasGrant(const Policy& policy, const Credentials& who);

// The policy in force, swapped whole on reload (SIGHUP); readers keep the one they took.
class PolicyStore {
 public:
  explicit PolicyStore(std::string path) : path_(std::move(path)) {}
  // Reads the file again; on an error the policy in force stays and the error is returned.
  Result<void> reload();
  std::shared_ptr<const Policy> current() const;
  const std::string& path() const { return path_; }
  // For tests and the daemon's start: sets the policy without a file.
  void set(Policy policy);

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> policy_ = std::make_shared<const Policy>();
};

}  // namespace chaosd::daemon
