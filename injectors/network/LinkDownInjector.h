#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "injectors/Injector.h"
#include "injectors/network/LinkDownRecords.h"
#include "injectors/network/LinkKernel.h"

// network.down: an interface taken down (IFF_UP cleared through rtnetlink, in the target's
// namespace) and brought back with its addresses and routes. prepare records the link (its
// index), every address on it and every route through it in every table of the namespace;
// revert sets it up and re-adds each recorded address and route that is missing (the kernel
// drops routes through a link that goes down, and IPv6 addresses with them), from the record
// alone. Routes the kernel makes itself (proto kernel: the connected prefix, local, broadcast,
// multicast) come back with their addresses and are left to it. A link that is down already is
// refused: the fault owns only the down it caused. Safety: the interface that holds a default
// route (guardrails.allowDefaultRouteDown) or carries an SSH session of the namespace
// (guardrails.allowSsh) is refused, and the loopback only in chaosd's own namespace.
// docs/faults/network-down.md.
namespace chaosd {

class LinkDownInjector final : public Injector {
 public:
  explicit LinkDownInjector(std::shared_ptr<LinkKernel> kernel);

  // Reads the link, its addresses and routes; refuses (kInvalid) what the safety rules protect.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Clears IFF_UP; observed: what the kernel dropped with it.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Sets IFF_UP and re-adds what is missing. Idempotent; a link or namespace gone, or a link of
  // the same name with another index, is left alone (noted).
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The link still down, or a recorded address or (not kernel-made) route missing.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<LinkKernel> kernel_;
  std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point> downAt_;  // by fault id
  std::set<std::string> foundDown_;  // faults whose apply found the link down: not ours to raise
};

}  // namespace chaosd
