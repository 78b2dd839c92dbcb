#pragma once

#include <memory>
#include <string>

#include "chaosd/base/Result.h"
#include "injectors/network/NftSession.h"

// The kernel surface of the nftables faults (injectors/network/NftablesInjector.h): nft text
// run in a network namespace, named by its file's path. The injectors hold only this, so their
// apply, revert and failure paths run against a fake in the unit tier (tests/support/
// FakeNftKernel.h); the real one enters the namespace, which needs root.
namespace chaosd {

// Which libnftables session a listing goes through.
enum class NftSessionUse {
  kPooled,  // the namespace's pooled session (made on first use, kept until forget)
  kOneOff,  // one made for the call and closed after it: keeps no namespace alive (audits)
};

class NftKernel {
 public:
  virtual ~NftKernel() = default;

  // Runs nft commands in the namespace at `netnsPath` ("" the host's) as one transaction: all
  // of them or none. nft's output; kKernel with nft's error text ("nftables: Error: ...") when
  // refused; entering the namespace fails as NetnsGuard::enter does (kNotFound: it is gone).
  virtual Result<std::string> run(const std::string& netnsPath, const std::string& commands) = 0;
  // `list <what>` ("table inet T") as libnftables' JSON ({"nftables": [...]}) with handles;
  // errors as run's (a table not there: kKernel, "No such file or directory").
  virtual Result<std::string> listJson(const std::string& netnsPath, const std::string& what,
                                       NftSessionUse use) = 0;
  // Forgets the namespace's pooled session; its socket closes once no call uses it. Nothing
  // when the namespace is gone.
  virtual void forget(const std::string& netnsPath) = 0;
};

// The kernel's nftables through libnftables, in sessions pooled per namespace (NftSession.h),
// each call inside the namespace (NetnsGuard) on the calling thread.
class LibnftablesKernel final : public NftKernel {
 public:
  explicit LibnftablesKernel(std::shared_ptr<NftSessionPool> sessions);

  Result<std::string> run(const std::string& netnsPath, const std::string& commands) override;
  Result<std::string> listJson(const std::string& netnsPath, const std::string& what,
                               NftSessionUse use) override;
  void forget(const std::string& netnsPath) override;

 private:
  std::shared_ptr<NftSessionPool> sessions_;
};

}  // namespace chaosd
