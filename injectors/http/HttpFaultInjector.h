#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "injectors/FilterRefresh.h"
#include "injectors/Injector.h"
#include "injectors/http/HttpKernel.h"
#include "injectors/network/NftKernel.h"

// http.fault: requests to a dependency (destination addresses and ports) leaving the target's
// network namespace are aborted with a status, delayed, reset or have their response cut short,
// for a percentage of the requests a rule matches (method, path prefix or regex, headers); every
// other request and byte passes untouched.
//
// Mechanism: a proxy owned by the fault (threads of this process inside the namespace,
// HttpProxy.cpp) and a table of the fault's own (`inet chaosd_<fault id>`) whose nat output
// chain redirects new TCP connections to the dependency to the proxy's port. Never redirected:
// port 22, and the proxy's own upstream connections (they carry the record's SO_MARK, which the
// chain's first rule returns). The proxy finds the original destination with SO_ORIGINAL_DST.
//
// Ownership: the table is the only kernel object the undo record names. Revert deletes it first
// (new connections go direct at once), then stops the proxy (its connections close). After a
// kill -9 the proxy died with the process; the guardian deletes the table from the record.
// HttpRecords.h holds the args and the undo record; docs/faults/http.md.
namespace chaosd {

// The proxies of the faults this process applied, by fault id, from apply to revert (another
// injector of the same registry may revert). Thread-safe.
class HttpContext {
 public:
  struct Running {
    std::unique_ptr<http::Proxy> proxy;
    std::shared_ptr<http::Policy> policy;
  };
  bool runs(const std::string& faultId) const;
  void keep(const std::string& faultId, Running running);
  std::optional<Running> take(const std::string& faultId);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Running> running_;
};

class HttpFaultInjector final : public Injector, public FilterRefresh {
 public:
  // The kernel's surfaces (libnftables, the threaded proxy).
  explicit HttpFaultInjector(std::shared_ptr<HttpContext> context);
  // Other surfaces (fakes, in unit tests).
  HttpFaultInjector(std::shared_ptr<HttpContext> context, std::shared_ptr<NftKernel> nft,
                    std::shared_ptr<http::HttpKernel> proxies);

  // Checks the args, names the table and the mark. Reads only.
  Result<PreparedFault> prepare(const FaultRequest& request) override;
  // Starts the proxy, then adds the table (one transaction) redirecting to its port.
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  // Deletes the table, then stops this process's proxy. Idempotent, from the undo alone.
  // Observed: the counts per rule and the proxy's.
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  // The table still there; the proxy still running in this process.
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;

  // `refresh`: the record with the host names' new addresses (the same table and sets).
  Result<nlohmann::json> reprepare(const std::string& faultId, const nlohmann::json& undo,
                                   const nlohmann::json& args) override;
  // Replaces the sets' addresses in one transaction.
  Result<void> update(const std::string& faultId, const nlohmann::json& undo,
                      const nlohmann::json& next) override;

 private:
  std::shared_ptr<HttpContext> context_;
  std::shared_ptr<NftKernel> nft_;
  std::shared_ptr<http::HttpKernel> proxies_;
};

// The nft commands adding the fault's table, redirecting to `port` (exposed for tests).
struct HttpFaultUndo;
std::string httpRedirectCommands(const HttpFaultUndo& undo, uint16_t port);

}  // namespace chaosd
