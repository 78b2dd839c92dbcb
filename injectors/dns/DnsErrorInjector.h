#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "injectors/Injector.h"
#include "injectors/dns/DnsKernel.h"
#include "injectors/network/NfqueueKernel.h"

// dns.error: DNS queries whose name matches a glob (and, optionally, whose type is one of a
// list) get an error answer (NXDOMAIN, SERVFAIL, REFUSED), are dropped, or are delayed; every
// other query and packet is untouched. Scope: the packets the target interface sends, in its
// network namespace.
//
// Mechanism: a table of the fault's own (`inet chaosd_<fault id>`, in the interface's
// namespace) whose postrouting chain sends UDP and TCP packets to the DNS port out of that
// interface to an NFQUEUE queue with the bypass flag (the xtables NFQUEUE target through
// nft_compat where nft's `queue` expression is missing, as for network.delay). An interceptor
// thread in this process reads each queued packet and decides (DnsInterceptor.h, DnsPolicy.h).
//
// Ownership: the table is the only kernel object the undo record names, so revert (here or in
// the guardian) deletes it and nothing else. If this process dies, its queue socket closes
// with it: the kernel drops the few queries it held at that moment, and the bypass flag lets
// every later one through untouched until the guardian deletes the table. DnsRecords.h holds
// the args and the undo record; docs/faults/dns.md.
namespace chaosd {

// The interceptions of the faults this process applied, by fault id, from apply to revert
// (another injector of the same registry may revert), and the verdict expression this kernel
// takes. Thread-safe.
class DnsContext {
 public:
  bool runs(const std::string& faultId) const;
  void keep(const std::string& faultId, std::unique_ptr<dns::Interception> interception);
  std::unique_ptr<dns::Interception> take(const std::string& faultId);
  std::optional<nfq::QueueVerdict> knownVerdict() const;
  void learnVerdict(nfq::QueueVerdict verdict);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<dns::Interception>> running_;
  std::optional<nfq::QueueVerdict> verdict_;
};

class DnsErrorInjector final : public Injector {
 public:
  // The kernel's surfaces (NetlinkNfqueueKernel, NfqueueDnsKernel).
  explicit DnsErrorInjector(std::shared_ptr<DnsContext> context);
  // Other surfaces (fakes, in unit tests).
  DnsErrorInjector(std::shared_ptr<DnsContext> context, std::shared_ptr<NfqueueKernel> tables,
                   std::shared_ptr<dns::DnsKernel> dns);

  // Checks the args, builds the rules, picks a queue number free in the namespace. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Starts the interceptor (binds the queue), then adds the table in one batch.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Flushes the table's rules, stops this process's interceptor (accepting every query it
  // holds), deletes the table. Idempotent, from the undo alone. Observed: the counts, per name.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The table still there; the interceptor still running in this process.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

 private:
  std::shared_ptr<DnsContext> context_;
  std::shared_ptr<NfqueueKernel> tables_;
  std::shared_ptr<dns::DnsKernel> dns_;
};

}  // namespace chaosd
