#pragma once

#include <cstdint>
#include <memory>

#include "injectors/FilterRefresh.h"
#include "injectors/Injector.h"
#include "injectors/network/NfqueueDelayContext.h"
#include "injectors/network/NfqueueKernel.h"
#include "injectors/network/NfqueueRecords.h"

// network.delay without netem (backend nftables): a table of the fault's own (`inet
// chaosd_<fault id>`, in the target interface's namespace) sends the matching packets to an
// NFQUEUE queue with the bypass flag, and a consumer thread in this process holds each packet
// for its delay (plus jitter) and accepts it, earliest release first.
//
// Ownership: the table is the only kernel object the undo record names, so revert (here or in
// the guardian) deletes it and nothing else. The consumer lives only in the process that
// applied the fault; if that process dies, the kernel drops the packets it held at that
// moment and, thanks to the bypass flag, lets every later packet through undelayed until the
// guardian deletes the table. The args and the undo record: NfqueueRecords.h; the consumers
// live in an NfqueueDelayContext the injectors of one registry share. The kernel is reached only
// through an NfqueueKernel (NfqueueKernel.h). docs/faults/network.md.
namespace chaosd {

class NfqueueDelayInjector final : public Injector, public FilterRefresh {
 public:
  // With a context of its own (tests, tools); the registry passes a shared one.
  NfqueueDelayInjector();
  explicit NfqueueDelayInjector(std::shared_ptr<NfqueueDelayContext> context);
  // Through another kernel surface (a fake, in unit tests).
  NfqueueDelayInjector(std::shared_ptr<NfqueueDelayContext> context,
                       std::shared_ptr<NfqueueKernel> kernel);

  // Checks the args (delay, jitter, distribution uniform/normal/pareto, limit, filters),
  // builds the rules, and picks a queue number free in the namespace (derived from the fault
  // id). Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Binds the queue and starts the consumer, then adds the table in one batch: nft's `queue`
  // expression where the kernel has it, else the xtables NFQUEUE target through nft_compat.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Deletes the table (idempotent, from the undo alone), then stops this process's consumer of
  // the fault, if any, accepting every packet it still holds. Observed: matched, queued,
  // released, releasedAtStop, failOpen, overflow and the consumer's lateness.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The table still there; the consumer still running in this process.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // With `refresh`: the record with the new filter (same table, queue, delay and seed).
  Result<nlohmann::json> reprepare(const std::string& faultId, const nlohmann::json& undo,
                                   const nlohmann::json& args) override;
  // Replaces the table's rules in one batch (a flush and the new rules): a packet meets the old
  // rules or the new ones. Only in the process that applied the fault (it knows the verdict and
  // holds the consumer); a revert deletes the table whole whatever its rules.
  Result<void> update(const std::string& faultId, const nlohmann::json& undo,
                      const nlohmann::json& next) override;

 private:
  std::shared_ptr<NfqueueDelayContext> context_;
  std::shared_ptr<NfqueueKernel> kernel_;
};

// The queue numbers the backend picks from: [kNfqueueFirst, kNfqueueFirst + kNfqueueCount).
inline constexpr uint16_t kNfqueueFirst = 0x4300;
inline constexpr uint16_t kNfqueueCount = 0x1000;

}  // namespace chaosd
