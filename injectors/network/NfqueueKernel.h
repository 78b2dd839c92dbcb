#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "chaosd/base/Result.h"
#include "injectors/network/NfqueueConsumer.h"
#include "injectors/network/NfqueueRules.h"

// The kernel surface of network.delay through NFQUEUE (injectors/network/NfqueueDelay.h): the
// fault's own nftables table (NfqueueRules.h) and the queue's consumer (NfqueueConsumer.h), each
// in a network namespace named by its file's path ("" the host's). The injector holds only this,
// so its apply, revert and failure paths run against a fake in the unit tier (tests/support/
// FakeNfqueueKernel.h); the real one enters the namespace, which needs root. Entering fails as
// runInNetns does: kNotFound when the namespace is gone.
namespace chaosd {

class NfqueueKernel {
 public:
  virtual ~NfqueueKernel() = default;

  // The queue numbers bound in the namespace.
  virtual Result<std::set<uint16_t>> boundQueues(const std::string& netnsPath) = 0;
  // Adds the table, its chain and rules in one batch (all or nothing). kUnsupported when the
  // kernel lacks the verdict's expression.
  virtual Result<void> addQueueTable(const std::string& netnsPath, const nfq::QueueTable& table,
                                     nfq::QueueVerdict verdict) = 0;
  // Replaces the table's rules by those of `table` in one batch (nfq::replaceQueueRules);
  // kNotFound when the table is not there.
  virtual Result<void> replaceQueueRules(const std::string& netnsPath, const nfq::QueueTable& table,
                                         nfq::QueueVerdict verdict) = 0;
  // Deletes every rule of the table, keeping its chains; false when the table is not there.
  virtual Result<bool> flushTable(const std::string& netnsPath, const std::string& name) = 0;
  // Deletes the table; false when it is not there.
  virtual Result<bool> deleteTable(const std::string& netnsPath, const std::string& name) = 0;
  // Whether the table exists.
  virtual Result<bool> tableExists(const std::string& netnsPath, const std::string& name) = 0;
  // Packets the table's rules counted; nullopt when the table is gone.
  virtual Result<std::optional<uint64_t>> tablePackets(const std::string& netnsPath,
                                                       const std::string& name) = 0;
  // Binds config.queue in config.netnsPath and starts holding its packets. kConflict when
  // another socket holds the queue.
  virtual Result<std::unique_ptr<nfq::QueueConsumer>> startConsumer(nfq::ConsumerConfig config) = 0;
};

// The kernel's: libnftnl batches and the NFQUEUE netlink socket, each call on a thread of its
// own inside the namespace (runInNetns).
class NetlinkNfqueueKernel final : public NfqueueKernel {
 public:
  Result<std::set<uint16_t>> boundQueues(const std::string& netnsPath) override;
  Result<void> addQueueTable(const std::string& netnsPath, const nfq::QueueTable& table,
                             nfq::QueueVerdict verdict) override;
  Result<void> replaceQueueRules(const std::string& netnsPath, const nfq::QueueTable& table,
                                 nfq::QueueVerdict verdict) override;
  Result<bool> flushTable(const std::string& netnsPath, const std::string& name) override;
  Result<bool> deleteTable(const std::string& netnsPath, const std::string& name) override;
  Result<bool> tableExists(const std::string& netnsPath, const std::string& name) override;
  Result<std::optional<uint64_t>> tablePackets(const std::string& netnsPath,
                                               const std::string& name) override;
  Result<std::unique_ptr<nfq::QueueConsumer>> startConsumer(nfq::ConsumerConfig config) override;
};

}  // namespace chaosd
