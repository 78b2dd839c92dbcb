#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "injectors/FilterRefresh.h"
#include "injectors/Injector.h"
#include "injectors/network/NftKernel.h"
#include "injectors/network/NftRecords.h"
#include "injectors/network/NftRules.h"
#include "injectors/network/NftSession.h"

// network.partition (and network.loss with backend nftables): rules in an nftables table of
// the run's own (`inet chaosd_run_<run id>`, one per run and network namespace), added through
// libnftables in the target interface's namespace. The table and its two base chains (hooks
// output and input) are a shared need of the faults (injectors/Injector.h): the engine creates
// it before the run's first such fault and deletes it after the last, because hooking a base
// chain into netfilter waits for an RCU grace period (milliseconds per transaction). Each fault
// adds only its rules, tagged with the comment "chaosd:<fault id>", and its revert deletes the
// rules with that comment (by handle) and nothing else. A fault whose host names are refreshed
// also adds two named sets of its own (hosts_<fault id>_v4/_v6) that its rules match and a
// refresh refills; its revert deletes them after its rules. Other tables are never read or
// written. Both undo records (NftRecords.h) hold the namespace's path and the table's name, so
// the guardian reverts them alone. The kernel is reached only through an NftKernel (NftKernel.h);
// the injectors of one registry share its NftSessionPool. docs/faults/network.md.
namespace chaosd {

// The internal fault type of the run's table.
inline constexpr std::string_view kNftablesTableFaultType = "network.nft-table";

class NftablesInjector final : public Injector, public FilterRefresh {
 public:
  // With a session pool of its own (tests, tools); the registry passes a shared one.
  NftablesInjector();
  explicit NftablesInjector(std::shared_ptr<NftSessionPool> sessions);
  // Through another kernel surface (a fake, in unit tests).
  explicit NftablesInjector(std::shared_ptr<NftKernel> kernel);

  // Builds the fault's rules from the args (partition: drop or reject to/from the peers;
  // loss: a random-number match that drops a share) and names the run's table as a shared
  // need. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Adds the rules in one libnftables transaction: all of them or none.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Deletes the rules carrying the fault's comment (by handle). Idempotent: rules or a table
  // already gone are success. The handles come from a listing of the run's table; one listing
  // serves the reverts of a group (kept up to 10 s, each fault's rules taken from it once; a
  // fault it does not name, a packet count, or a delete the kernel refuses lists again), so a
  // group's revert is linear in its faults, not quadratic (docs/benchmarks.md, scale_bench).
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The fault's rules (and host sets) still there.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // With `refresh`: the record with the new host addresses (same sets, same rules); kUnsupported
  // for a fault prepared without a host set.
  Result<nlohmann::json> reprepare(const std::string& faultId, const nlohmann::json& undo,
                                   const nlohmann::json& args) override;
  // Replaces the elements of the fault's host sets in one transaction (flush + add). The rules
  // stay as they are; a revert deletes the rules, then the sets.
  Result<void> update(const std::string& faultId, const nlohmann::json& undo,
                      const nlohmann::json& next) override;

 private:
  class RevertListings;
  std::shared_ptr<NftKernel> kernel_;
  std::shared_ptr<RevertListings> listings_;
};

// The run's table: apply creates it with its base chains, revert deletes it (idempotent) and
// drops the namespace's pooled session, audit finds it. prepare is never called: the undo comes
// from NftablesInjector::prepare.
class NftablesTableInjector final : public Injector {
 public:
  // With a session pool of its own (tests, tools); the registry passes a shared one.
  NftablesTableInjector();
  explicit NftablesTableInjector(std::shared_ptr<NftSessionPool> sessions);
  // Through another kernel surface (a fake, in unit tests).
  explicit NftablesTableInjector(std::shared_ptr<NftKernel> kernel);

  Result<PreparedFault> prepare(const FaultRequest&) override {
    return Error(ErrorCode::kInternal, "network.nft-table is prepared with the faults it serves");
  }
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<NftKernel> kernel_;
};

}  // namespace chaosd
