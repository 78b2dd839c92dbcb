#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "injectors/Injector.h"
#include "injectors/syscall/SupervisorRegistry.h"

// syscall.error and syscall.delay: a rule handed to the supervisor of the exec target's
// seccomp listener (SyscallSupervisor), removed at revert. The filter itself was installed
// when the engine started the target. docs/faults/syscall.md.
namespace chaosd {

class SyscallInjector final : public Injector {
 public:
  // Reaches supervisors through `supervisors`, the registry the exec hook of the same
  // registerSyscallFaults adds them to (or a test's, holding fakes).
  explicit SyscallInjector(std::shared_ptr<SupervisorRegistry> supervisors);

  // Resolves the syscall names and the errno, draws the probability seed (recorded), and
  // finds the supervisor of the started process. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Hands the rule to the supervisor: from now on matching calls fail or wait.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Takes the rule back: calls run normally again. Observed: matched, hit, passed. Without a
  // supervisor in this process (the guardian after a crash) there is nothing to take back:
  // the target is stopped with its experiment. Idempotent.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The rule still applied.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  // file.corrupt's record: openat and open, hit with a corrupted copy.
  Result<PreparedFault> prepareCorrupt(const FaultRequest& request, const RuleSupervisor& sup,
                                       pid_t pid);

  std::shared_ptr<SupervisorRegistry> supervisors_;
};

// The calls file.corrupt intercepts: openat and open (openat2 is not: glibc's open() and
// fopen() use openat).
const std::vector<std::string>& fileCorruptSyscalls();

// The value of an errno name ("EIO"); nullopt for a name chaosd does not know.
std::optional<int> errnoByName(const std::string& name);
// The errno names syscall.error accepts.
const std::vector<std::string>& knownErrnoNames();

}  // namespace chaosd
