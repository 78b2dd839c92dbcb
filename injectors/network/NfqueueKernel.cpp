#include "injectors/network/NfqueueKernel.h"

#include <utility>

#include "chaosd/base/Netns.h"
#include "injectors/network/NftRecords.h"

namespace chaosd {
namespace {

// `call` on a thread inside the namespace; its value, or its error with the namespace named.
template <typename T, typename F>
Result<T> inNetns(const std::string& netnsPath, F&& call) {
  std::optional<T> value;
  auto ran = runInNetns(netnsAtPath(netnsPath), [&]() -> Result<void> {
    auto r = call();
    if (!r) return std::move(r).error();
    value.emplace(std::move(*r));
    return success();
  });
  if (!ran) return std::move(ran).error();
  return std::move(*value);
}

}  // namespace

Result<std::set<uint16_t>> NetlinkNfqueueKernel::boundQueues(const std::string& netnsPath) {
  return inNetns<std::set<uint16_t>>(netnsPath, [] { return nfq::boundQueues(); });
}

Result<void> NetlinkNfqueueKernel::addQueueTable(const std::string& netnsPath,
                                                 const nfq::QueueTable& table,
                                                 nfq::QueueVerdict verdict) {
  return runInNetns(netnsAtPath(netnsPath),
                    [&]() -> Result<void> { return nfq::addQueueTable(table, verdict); });
}

Result<void> NetlinkNfqueueKernel::replaceQueueRules(const std::string& netnsPath,
                                                     const nfq::QueueTable& table,
                                                     nfq::QueueVerdict verdict) {
  return runInNetns(netnsAtPath(netnsPath),
                    [&]() -> Result<void> { return nfq::replaceQueueRules(table, verdict); });
}

Result<bool> NetlinkNfqueueKernel::flushTable(const std::string& netnsPath,
                                              const std::string& name) {
  return inNetns<bool>(netnsPath, [&] { return nfq::flushTable(name); });
}

Result<bool> NetlinkNfqueueKernel::deleteTable(const std::string& netnsPath,
                                               const std::string& name) {
  return inNetns<bool>(netnsPath, [&] { return nfq::deleteTable(name); });
}

Result<bool> NetlinkNfqueueKernel::tableExists(const std::string& netnsPath,
                                               const std::string& name) {
  return inNetns<bool>(netnsPath, [&] { return nfq::tableExists(name); });
}

Result<std::optional<uint64_t>> NetlinkNfqueueKernel::tablePackets(const std::string& netnsPath,
                                                                   const std::string& name) {
  return inNetns<std::optional<uint64_t>>(netnsPath, [&] { return nfq::tablePackets(name); });
}

Result<std::unique_ptr<nfq::QueueConsumer>> NetlinkNfqueueKernel::startConsumer(
    nfq::ConsumerConfig config) {
  auto started = nfq::NfqueueConsumer::start(std::move(config));
  if (!started) return std::move(started).error();
  return std::unique_ptr<nfq::QueueConsumer>(std::move(*started));
}

}  // namespace chaosd
