#pragma once

#include <memory>
#include <string>

#include "injectors/FaultRegistry.h"
#include "injectors/Injector.h"
#include "injectors/disk/DiskFs.h"

// A fault for tests of the journal, the guardian and recovery: "test.file" creates a file of
// our own name in a directory, so a leftover is a plain file to look for. Not a builtin: only
// tests and the test guardian helper register it.
namespace chaosd {

inline constexpr std::string_view kTestFileFault = "test.file";

class FileFaultInjector final : public Injector {
 public:
  // The kernel's filesystem unless another is given (a fake, in unit tests).
  FileFaultInjector();
  explicit FileFaultInjector(std::shared_ptr<DiskFs> fs);

  // Decides the file, <args.path>/.chaosd-test-<faultId>; the directory must exist.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Creates the file and syncs it and its directory.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Unlinks the file (not synced); succeeds when it is already gone.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // One line when the file still exists.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // The file a fault with this id creates in dir.
  static std::string fileFor(const std::string& dir, const std::string& faultId);

 private:
  std::shared_ptr<DiskFs> fs_;
};

// Registers "test.file".
void registerTestFaults(FaultRegistry& registry);

}  // namespace chaosd
