#pragma once

#include <string>

#include "injectors/Injector.h"

// network.partition (and network.loss with backend nftables): rules in an nftables table of
// the fault's own (`inet chaosd_<fault id>`), added through libnftables in the target
// interface's network namespace. Revert deletes that table and nothing else; other tables
// are never read or written. The undo record holds the namespace's path, the table's name and
// the script, so the guardian reverts it alone. docs/faults/network.md.
namespace chaosd {

class NftablesInjector final : public Injector {
 public:
  // Builds the table's script from the args (partition: drop or reject to/from the peers;
  // loss: a random-number match that drops a share). Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Adds the table in one libnftables transaction: all of it or nothing.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Deletes the table. Idempotent: a table already gone is success.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The table still there.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;
};

// The table's script for a partition or an nftables loss, from normalised args; exposed for
// unit tests. `iface` scopes every rule to the target interface.
Result<std::string> nftablesScript(const std::string& faultType, const std::string& table,
                                   const std::string& iface, const nlohmann::json& args);

}  // namespace chaosd
