#pragma once

// FakeDnsKernel: the DnsKernel of dns.error over a FakeNetfilter (shared with the
// FakeNfqueueKernel that holds its table). startInterception binds the queue (EBUSY when bound:
// kConflict) and hands back a FakeInterception whose stop() unbinds it and returns the counts
// a test put in `stats`. Each bind and unbind is logged in FakeNetfilter::events.
#include <memory>
#include <string>
#include <utility>

#include "injectors/dns/DnsKernel.h"
#include "tests/support/FakeNetfilter.h"

namespace chaosd::testing {

class FakeInterception final : public dns::Interception {
 public:
  FakeInterception(std::shared_ptr<FakeNetfilter> state, std::string netnsPath, uint16_t queue,
                   std::shared_ptr<dns::DnsStats> stats)
      : state_(std::move(state)),
        netnsPath_(std::move(netnsPath)),
        queue_(queue),
        stats_(std::move(stats)) {}
  ~FakeInterception() override { (void)stop(); }
  dns::DnsStats stop() override {
    if (!stopped_) {
      stopped_ = true;
      if (!state_->gone(netnsPath_)) state_->netns(netnsPath_).boundQueues.erase(queue_);
      state_->events.push_back("unbind " + std::to_string(queue_) + " " + netnsPath_);
    }
    return *stats_;
  }
  uint16_t queue() const override { return queue_; }

 private:
  std::shared_ptr<FakeNetfilter> state_;
  std::string netnsPath_;
  uint16_t queue_;
  std::shared_ptr<dns::DnsStats> stats_;
  bool stopped_ = false;
};

class FakeDnsKernel final : public dns::DnsKernel {
 public:
  explicit FakeDnsKernel(std::shared_ptr<FakeNetfilter> state) : state_(std::move(state)) {}

  Result<std::unique_ptr<dns::Interception>> startInterception(
      dns::InterceptConfig config) override {
    if (auto e = state_->failures.onCall("startInterception")) return std::move(*e);
    if (state_->gone(config.netnsPath)) return FakeNetfilter::goneError(config.netnsPath);
    auto matcher = dns::QueryMatcher::create(config.names, config.types);
    if (!matcher) return std::move(matcher).error();
    FakeNetfilterNs& ns = state_->netns(config.netnsPath);
    if (ns.boundQueues.contains(config.queue)) {
      return Error(ErrorCode::kConflict,
                   "NFQUEUE queue " + std::to_string(config.queue) + " is held by another socket",
                   EBUSY);
    }
    ns.boundQueues.insert(config.queue);
    state_->events.push_back("bind " + std::to_string(config.queue) + " " + config.netnsPath);
    last = config;
    return std::unique_ptr<dns::Interception>(
        std::make_unique<FakeInterception>(state_, config.netnsPath, config.queue, stats));
  }

  std::shared_ptr<dns::DnsStats> stats = std::make_shared<dns::DnsStats>();
  dns::InterceptConfig last;  // of the last interception started

 private:
  std::shared_ptr<FakeNetfilter> state_;
};

}  // namespace chaosd::testing
