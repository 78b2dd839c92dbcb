#include "injectors/network/NfqueueDelayContext.h"

#include <utility>

namespace chaosd {

bool NfqueueDelayContext::runs(const std::string& faultId) const {
  std::lock_guard lock(mu_);
  return consumers_.contains(faultId);
}

void NfqueueDelayContext::keep(const std::string& faultId,
                               std::unique_ptr<nfq::QueueConsumer> consumer) {
  std::unique_ptr<nfq::QueueConsumer> replaced;  // stopped outside the lock
  std::lock_guard lock(mu_);
  replaced = std::exchange(consumers_[faultId], std::move(consumer));
}

std::unique_ptr<nfq::QueueConsumer> NfqueueDelayContext::take(const std::string& faultId) {
  std::lock_guard lock(mu_);
  auto it = consumers_.find(faultId);
  if (it == consumers_.end()) return nullptr;
  auto consumer = std::move(it->second);
  consumers_.erase(it);
  return consumer;
}

std::optional<nfq::QueueVerdict> NfqueueDelayContext::knownVerdict() const {
  std::lock_guard lock(mu_);
  return verdict_;
}

void NfqueueDelayContext::learnVerdict(nfq::QueueVerdict verdict) {
  std::lock_guard lock(mu_);
  verdict_ = verdict;
}

}  // namespace chaosd
