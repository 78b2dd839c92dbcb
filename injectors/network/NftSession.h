#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "chaosd/base/Result.h"

struct nft_ctx;

// libnftables for the nftables faults (injectors/network/NftablesInjector.h): a context whose
// output and errors are captured, and the pool that keeps one per network namespace.
namespace chaosd {

// A libnftables context whose output and errors are captured, not printed. Thread-safe: one
// command at a time. Its netlink socket belongs to the namespace the thread was in when the
// context was made.
class NftSession {
 public:
  NftSession();
  ~NftSession();
  NftSession(const NftSession&) = delete;
  NftSession& operator=(const NftSession&) = delete;

  // Runs the commands as one transaction; the error text nft would print on failure.
  Result<std::string> run(const std::string& commands) { return runWith(commands, 0); }
  // A listing in JSON with rule handles.
  Result<std::string> listJson(const std::string& what);

 private:
  Result<std::string> runWith(const std::string& commands, unsigned flags);

  std::mutex mu_;
  nft_ctx* ctx_;
};

// One session per network namespace, kept while the run's table lives there, shared by the
// injectors of one FaultRegistry (made in registerNetworkFaults). Closing a netfilter netlink
// socket after a transaction makes nf_tables flush its deferred destruction work, which waits
// for an RCU grace period (10-20 ms here): a session per change would pay that on every apply
// and revert. A session's socket holds its namespace alive, so it is dropped when the run's
// table is deleted. Call both inside the namespace (after NetnsGuard::enter).
class NftSessionPool {
 public:
  // The session of the calling thread's namespace, made on first use.
  Result<std::shared_ptr<NftSession>> here();
  // Forgets the calling thread's namespace's session; it closes when its last user lets go.
  void dropHere();

 private:
  std::mutex mu_;
  std::map<std::pair<dev_t, ino_t>, std::shared_ptr<NftSession>> sessions_;
};

}  // namespace chaosd
