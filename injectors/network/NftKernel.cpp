#include "injectors/network/NftKernel.h"

#include <utility>

#include "chaosd/base/Netns.h"
#include "injectors/network/NftRecords.h"

namespace chaosd {

LibnftablesKernel::LibnftablesKernel(std::shared_ptr<NftSessionPool> sessions)
    : sessions_(std::move(sessions)) {}

Result<std::string> LibnftablesKernel::run(const std::string& netnsPath,
                                           const std::string& commands) {
  auto guard = NetnsGuard::enter(netnsAtPath(netnsPath));
  if (!guard) return std::move(guard).error();
  auto nft = sessions_->here();
  if (!nft) return std::move(nft).error();
  return (*nft)->run(commands);
}

Result<std::string> LibnftablesKernel::listJson(const std::string& netnsPath,
                                                const std::string& what, NftSessionUse use) {
  auto guard = NetnsGuard::enter(netnsAtPath(netnsPath));
  if (!guard) return std::move(guard).error();
  if (use == NftSessionUse::kOneOff) {
    NftSession nft;
    return nft.listJson(what);
  }
  auto nft = sessions_->here();
  if (!nft) return std::move(nft).error();
  return (*nft)->listJson(what);
}

void LibnftablesKernel::forget(const std::string& netnsPath) {
  auto guard = NetnsGuard::enter(netnsAtPath(netnsPath));
  if (!guard) return;
  sessions_->dropHere();
}

}  // namespace chaosd
