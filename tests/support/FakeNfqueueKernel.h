#pragma once

// FakeNfqueueKernel: the NfqueueKernel of network.delay through NFQUEUE over a FakeNetfilter.
// addQueueTable puts the table, its base chain and one rule per match into the namespace's
// state, as the libnftnl batch does (all or nothing; a table of that name already there is
// EEXIST, the batch's NLM_F_EXCL); startConsumer binds the queue (EBUSY when bound: kConflict)
// and hands back a FakeQueueConsumer whose stop() accepts what it holds and unbinds. Each bind
// and unbind is logged in FakeNetfilter::events. Packets are made up by passPackets().
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "injectors/network/NfqueueKernel.h"
#include "tests/support/FakeNetfilter.h"

namespace chaosd::testing {

class FakeQueueConsumer final : public nfq::QueueConsumer {
 public:
  FakeQueueConsumer(std::shared_ptr<FakeNetfilter> state, std::string netnsPath, uint16_t queue,
                    std::shared_ptr<FakeQueueHolder> holder)
      : state_(std::move(state)),
        netnsPath_(std::move(netnsPath)),
        queue_(queue),
        holder_(std::move(holder)) {}
  ~FakeQueueConsumer() override { (void)stop(); }

  nfq::ConsumerStats stop() override {
    if (!stopped_) {
      stopped_ = true;
      holder_->releasedAtStop += holder_->held;
      holder_->held = 0;
      if (!state_->gone(netnsPath_)) {
        FakeNetfilterNs& ns = state_->netns(netnsPath_);
        ns.boundQueues.erase(queue_);
        ns.holders.erase(queue_);
      }
      state_->events.push_back("unbind " + std::to_string(queue_) + " " + netnsPath_);
    }
    nfq::ConsumerStats s;
    s.queued = holder_->queued;
    s.released = holder_->released;
    s.releasedAtStop = holder_->releasedAtStop;
    s.maxHeld = holder_->queued;
    return s;
  }
  uint16_t queue() const override { return queue_; }

 private:
  std::shared_ptr<FakeNetfilter> state_;
  std::string netnsPath_;
  uint16_t queue_;
  std::shared_ptr<FakeQueueHolder> holder_;
  bool stopped_ = false;
};

class FakeNfqueueKernel final : public NfqueueKernel {
 public:
  explicit FakeNfqueueKernel(
      std::shared_ptr<FakeNetfilter> state = std::make_shared<FakeNetfilter>())
      : state_(std::move(state)) {}

  Result<std::set<uint16_t>> boundQueues(const std::string& netnsPath) override {
    if (auto e = enter("boundQueues", netnsPath)) return std::move(*e);
    return state_->netns(netnsPath).boundQueues;
  }

  Result<void> addQueueTable(const std::string& netnsPath, const nfq::QueueTable& table,
                             nfq::QueueVerdict verdict) override {
    if (auto e = enter("addQueueTable", netnsPath)) return std::move(*e);
    if (verdict == nfq::QueueVerdict::kNftQueue && !nftQueueExpression) {
      return Error(ErrorCode::kUnsupported, "nft queue is not available in this kernel", ENOENT);
    }
    FakeNetfilterNs& ns = state_->netns(netnsPath);
    if (ns.table("inet", table.name) != nullptr) {
      return Error(ErrorCode::kKernel,
                   "adding table inet " + table.name + ": nftables refused the batch: File exists",
                   EEXIST);
    }
    FakeNftTable t;
    t.family = "inet";
    t.name = table.name;
    t.handle = ns.nextTableHandle++;
    t.nfqueue = table.queue;
    FakeNftChain chain;
    chain.name = table.egress ? "egress" : "ingress";
    chain.handle = t.nextHandle++;
    chain.type = "filter";
    chain.hook = table.egress ? "postrouting" : "prerouting";
    chain.priority = -300;
    chain.policy = "accept";
    addRules(t, chain, table, verdict);
    t.chains.push_back(std::move(chain));
    ns.tables.push_back(std::move(t));
    return success();
  }

  // One batch: the table's rules flushed, the new ones added (all or nothing).
  Result<void> replaceQueueRules(const std::string& netnsPath, const nfq::QueueTable& table,
                                 nfq::QueueVerdict verdict) override {
    if (auto e = enter("replaceQueueRules", netnsPath)) return std::move(*e);
    FakeNftTable* t = state_->netns(netnsPath).table("inet", table.name);
    FakeNftChain* chain = t == nullptr ? nullptr : t->chain(table.egress ? "egress" : "ingress");
    if (chain == nullptr) {
      return Error(ErrorCode::kNotFound, "table inet " + table.name + " is not there", ENOENT);
    }
    for (auto& c : t->chains) c.rules.clear();
    addRules(*t, *chain, table, verdict);
    return success();
  }

  Result<bool> flushTable(const std::string& netnsPath, const std::string& name) override {
    if (auto e = enter("flushTable", netnsPath)) return std::move(*e);
    FakeNftTable* t = state_->netns(netnsPath).table("inet", name);
    if (t == nullptr) return false;
    for (auto& c : t->chains) c.rules.clear();
    return true;
  }

  Result<bool> deleteTable(const std::string& netnsPath, const std::string& name) override {
    if (auto e = enter("deleteTable", netnsPath)) return std::move(*e);
    return state_->netns(netnsPath).eraseTable("inet", name);
  }

  Result<bool> tableExists(const std::string& netnsPath, const std::string& name) override {
    if (auto e = enter("tableExists", netnsPath)) return std::move(*e);
    return state_->netns(netnsPath).table("inet", name) != nullptr;
  }

  Result<std::optional<uint64_t>> tablePackets(const std::string& netnsPath,
                                               const std::string& name) override {
    if (auto e = enter("tablePackets", netnsPath)) return std::move(*e);
    const FakeNftTable* t = state_->netns(netnsPath).table("inet", name);
    if (t == nullptr) return std::optional<uint64_t>();
    uint64_t sum = 0;
    for (const auto& c : t->chains) {
      for (const auto& r : c.rules) sum += r.packets;
    }
    return std::optional<uint64_t>(sum);
  }

  Result<std::unique_ptr<nfq::QueueConsumer>> startConsumer(nfq::ConsumerConfig config) override {
    if (auto e = enter("startConsumer", config.netnsPath)) return std::move(*e);
    FakeNetfilterNs& ns = state_->netns(config.netnsPath);
    if (ns.boundQueues.contains(config.queue)) {
      return Error(ErrorCode::kConflict,
                   "NFQUEUE queue " + std::to_string(config.queue) + " is held by another socket",
                   EBUSY);
    }
    ns.boundQueues.insert(config.queue);
    auto holder = std::make_shared<FakeQueueHolder>();
    ns.holders[config.queue] = holder;
    lastMaxlen = config.maxlen;
    state_->events.push_back("bind " + std::to_string(config.queue) + " " + config.netnsPath);
    return std::unique_ptr<nfq::QueueConsumer>(std::make_unique<FakeQueueConsumer>(
        state_, config.netnsPath, config.queue, std::move(holder)));
  }

  // `count` packets matching the first rule of the table: counted, then queued to its consumer
  // and held; or, with no consumer bound or `queued` false (the kernel's queue full), let
  // through undelayed (the bypass and fail-open flags).
  void passPackets(const std::string& netnsPath, const std::string& name, uint64_t count,
                   bool queued = true) {
    FakeNetfilterNs& ns = state_->netns(netnsPath);
    FakeNftTable* t = ns.table("inet", name);
    if (t == nullptr || t->chains.empty() || t->chains[0].rules.empty()) return;
    t->chains[0].rules[0].packets += count;
    auto it = ns.holders.find(t->nfqueue.value_or(0));
    if (!queued) return;
    if (it == ns.holders.end()) return;
    it->second->queued += count;
    it->second->held += count;
  }
  // The delay of every held packet of the queue passes: they are accepted.
  void releaseHeld(const std::string& netnsPath, uint16_t queue) {
    auto& holders = state_->netns(netnsPath).holders;
    if (auto it = holders.find(queue); it != holders.end()) {
      it->second->released += it->second->held;
      it->second->held = 0;
    }
  }
  // Another socket (another program) holds the queue.
  void bindElsewhere(const std::string& netnsPath, uint16_t queue) {
    state_->netns(netnsPath).boundQueues.insert(queue);
  }
  // The Nth call of `method` from now fails with `error`.
  void failCall(const std::string& method, int nth, Error error) {
    state_->failures.failNth(method, nth, std::move(error));
  }
  int calls(const std::string& method) const { return state_->failures.calls(method); }

  FakeNetfilter& state() { return *state_; }
  bool nftQueueExpression = true;  // false: a kernel without CONFIG_NFT_QUEUE
  uint32_t lastMaxlen = 0;         // of the last consumer started

 private:
  static void addRules(FakeNftTable& t, FakeNftChain& chain, const nfq::QueueTable& table,
                       nfq::QueueVerdict verdict) {
    const std::string target = verdict == nfq::QueueVerdict::kNftQueue
                                   ? "queue flags bypass to " + std::to_string(table.queue)
                                   : "xt target \"NFQUEUE\"";
    for (const auto& m : table.matches) {
      FakeNftRule rule;
      rule.handle = t.nextHandle++;
      rule.text = (table.egress ? "oifname \"" : "iifname \"") + table.iface + "\" " +
                  (m.str() == "all" ? "" : m.str() + " ") + "counter " + target;
      chain.rules.push_back(std::move(rule));
    }
  }

  // A planned failure, then the namespace: entering a gone one fails with kNotFound.
  std::optional<Error> enter(const char* method, const std::string& netnsPath) {
    if (auto e = state_->failures.onCall(method)) return e;
    if (state_->gone(netnsPath)) return FakeNetfilter::goneError(netnsPath);
    return std::nullopt;
  }

  std::shared_ptr<FakeNetfilter> state_;
};

}  // namespace chaosd::testing
