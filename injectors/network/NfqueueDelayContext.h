#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "injectors/network/NfqueueConsumer.h"
#include "injectors/network/NfqueueRules.h"

// What the NFQUEUE delay injectors of one registry share (registerNetworkFaults makes one and
// hands it to every injector it creates): the consumers of the faults this process applied, by
// fault id, which live from apply to revert (the engine may revert with another injector than
// the one that applied, as recovery does), and the verdict expression this kernel takes, learnt
// by the first apply. Thread-safe.
namespace chaosd {

class NfqueueDelayContext {
 public:
  NfqueueDelayContext() = default;
  ~NfqueueDelayContext() = default;
  NfqueueDelayContext(const NfqueueDelayContext&) = delete;
  NfqueueDelayContext& operator=(const NfqueueDelayContext&) = delete;
  NfqueueDelayContext(NfqueueDelayContext&&) = delete;
  NfqueueDelayContext& operator=(NfqueueDelayContext&&) = delete;

  // Whether a consumer of this fault runs here.
  bool runs(const std::string& faultId) const;
  // Keeps a fault's consumer until take(); replaces one already kept.
  void keep(const std::string& faultId, std::unique_ptr<nfq::QueueConsumer> consumer);
  // The fault's consumer, no longer kept; nullptr when none runs here.
  std::unique_ptr<nfq::QueueConsumer> take(const std::string& faultId);

  // The verdict expression an apply found working; nullopt before the first.
  std::optional<nfq::QueueVerdict> knownVerdict() const;
  void learnVerdict(nfq::QueueVerdict verdict);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<nfq::QueueConsumer>> consumers_;
  std::optional<nfq::QueueVerdict> verdict_;
};

}  // namespace chaosd
