#include "injectors/network/NfqueueDelay.h"

#include <cctype>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueConsumer.h"
#include "injectors/network/NfqueueRules.h"

namespace chaosd {
namespace {

std::string tableName(const std::string& faultId) {
  std::string out = "chaosd_";
  for (char c : faultId) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

uint64_t freshSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// FNV-1a: the same fault id gives the same first choice of queue in every process.
uint32_t hashOf(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string msText(int64_t ns) {
  const int64_t us = ns / 1000;
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + "ms";
}

// The record, checked to belong to `faultId` ("" for any).
Result<NfqueueDelayUndo> recordOf(const nlohmann::json& undo, const std::string& faultId) {
  auto record = NfqueueDelayUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(record->belongsTo(faultId));
  return record;
}

// A queue number free in the namespace, starting from the fault id's own.
Result<uint16_t> pickQueue(const NetnsRef& ns, const std::string& faultId) {
  std::set<uint16_t> bound;
  auto ran = runInNetns(ns, [&]() -> Result<void> {
    auto b = nfq::boundQueues();
    if (!b) return std::move(b).error();
    bound = std::move(*b);
    return success();
  });
  if (!ran) return std::move(ran).error();
  const uint32_t start = hashOf(faultId) % kNfqueueCount;
  for (uint32_t i = 0; i < kNfqueueCount; ++i) {
    const auto q = static_cast<uint16_t>(kNfqueueFirst + (start + i) % kNfqueueCount);
    if (!bound.contains(q)) return q;
  }
  return Error(ErrorCode::kConflict,
               "every NFQUEUE queue chaosd uses is bound in " + ns.describe());
}

// Adds the table with the verdict expression this kernel takes: nft's queue where it works
// (tried first until the xtables target was needed once), else the xtables target.
Result<nfq::QueueVerdict> addTable(NfqueueDelayContext& context, const nfq::QueueTable& table) {
  using nfq::QueueVerdict;
  if (context.knownVerdict() != QueueVerdict::kXtTarget) {
    auto added = nfq::addQueueTable(table, QueueVerdict::kNftQueue);
    if (added) {
      context.learnVerdict(QueueVerdict::kNftQueue);
      return QueueVerdict::kNftQueue;
    }
    if (added.error().code() != ErrorCode::kUnsupported) return std::move(added).error();
  }
  auto added = nfq::addQueueTable(table, QueueVerdict::kXtTarget);
  if (!added) {
    if (added.error().code() == ErrorCode::kUnsupported) {
      return Error(ErrorCode::kUnsupported,
                   "this kernel has neither nft's queue expression (CONFIG_NFT_QUEUE) nor the "
                   "xtables NFQUEUE target through nft_compat");
    }
    return std::move(added).error();
  }
  context.learnVerdict(QueueVerdict::kXtTarget);
  return QueueVerdict::kXtTarget;
}

// Starts the consumer of the fault's queue (first: once the table exists, every matching packet
// goes to the queue), then adds the table in the namespace. The consumer, running; the verdict.
Result<std::pair<std::unique_ptr<nfq::NfqueueConsumer>, nfq::QueueVerdict>> startDelay(
    NfqueueDelayContext& context, const NfqueueDelayUndo& undo, const nfq::QueueTable& table,
    nfq::JitterShape shape) {
  nfq::NfqueueConsumer::Config config{
      undo.netnsPath, table.queue, static_cast<uint32_t>(undo.limit),
      nfq::DelaySampler(std::chrono::nanoseconds(undo.delayNs),
                        std::chrono::nanoseconds(undo.jitterNs), shape, undo.seed)};
  auto consumer = nfq::NfqueueConsumer::start(std::move(config));
  if (!consumer) return std::move(consumer).error();
  nfq::QueueVerdict verdict{};
  auto added = runInNetns(undo.netns(), [&]() -> Result<void> {
    auto v = addTable(context, table);
    if (!v) return std::move(v).error();
    verdict = *v;
    return success();
  });
  if (!added) {
    (*consumer)->stop();
    return std::move(added).error();
  }
  return std::pair{std::move(*consumer), verdict};
}

// What revert observed of the consumer: its counts, and the packets the rules matched but the
// kernel accepted undelayed because its queue (maxlen) or our socket was full.
void addConsumerStats(nlohmann::json& observed, uint16_t queue, const nfq::ConsumerStats& s,
                      std::optional<uint64_t> matched) {
  observed["queue"] = queue;
  observed["queued"] = s.queued;
  observed["released"] = s.released;
  observed["releasedAtStop"] = s.releasedAtStop;
  observed["overflow"] = s.overflow;
  observed["maxHeld"] = s.maxHeld;
  observed["batchVerdicts"] = s.batchVerdicts;
  observed["verdictErrors"] = s.verdictErrors;
  observed["maxLateMs"] = static_cast<double>(s.maxLateNs) / 1e6;
  if (matched) observed["failOpen"] = *matched > s.queued ? *matched - s.queued : 0;
}

}  // namespace

NfqueueDelayInjector::NfqueueDelayInjector()
    : NfqueueDelayInjector(std::make_shared<NfqueueDelayContext>()) {}

NfqueueDelayInjector::NfqueueDelayInjector(std::shared_ptr<NfqueueDelayContext> context)
    : context_(std::move(context)) {}

Result<PreparedFault> NfqueueDelayInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  auto args = NfqueueDelayArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  auto matches = nfq::packetMatches(args->filter);
  if (!matches) return std::move(matches).error();
  const NetnsRef& ns = target->interface.netns;
  auto queue = pickQueue(ns, request.faultId);
  if (!queue) return std::move(queue).error();

  NfqueueDelayUndo undo{.faultId = request.faultId,
                        .table = tableName(request.faultId),
                        .netnsPath = ns.nsPath(),
                        .iface = target->interface.name,
                        .egress = args->egress,
                        .filter = args->filter,
                        .rules = {},
                        .queue = *queue,
                        .delayNs = args->delayNs,
                        .jitterNs = args->jitterNs,
                        .distribution = args->distribution,
                        .limit = args->limit,
                        .seed = freshSeed()};
  for (const auto& m : *matches) undo.rules.push_back(m.str());
  PreparedFault out;
  out.undo = undo.toJson();
  out.description =
      "delay " + msText(undo.delayNs) + (undo.jitterNs > 0 ? " +/- " + msText(undo.jitterNs) : "") +
      " on " + undo.iface + " (" + (undo.egress ? "egress" : "ingress") + ") in " + ns.describe() +
      " (NFQUEUE " + std::to_string(undo.queue) + ", nftables table inet " + undo.table + ")";
  out.resources = {"nft:" + undo.netnsPath + ":" + undo.table,
                   "nfqueue:" + undo.netnsPath + ":" + std::to_string(undo.queue)};
  return out;
}

Result<AppliedFault> NfqueueDelayInjector::apply(const std::string& faultId,
                                                 const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (context_->runs(faultId)) {
    return Error(ErrorCode::kConflict, "fault " + faultId + " is already applied");
  }
  auto matches = nfq::packetMatches(record->filter);
  if (!matches) return std::move(matches).error();
  auto shape = nfq::parseJitterShape(record->distribution);
  if (!shape) return std::move(shape).error();
  const nfq::QueueTable table{record->table, record->iface, record->egress, record->queue,
                              std::move(*matches)};
  auto started = startDelay(*context_, *record, table, *shape);
  if (!started) return std::move(started).error();
  auto& [consumer, verdict] = *started;
  context_->keep(faultId, std::move(consumer));
  log::get("network")->info("nfqueue delay applied fault={} table={} queue={} verdict={}", faultId,
                            table.name, table.queue, nfq::queueVerdictName(verdict));
  return AppliedFault{"nfqueue",
                      {{"table", "inet " + table.name},
                       {"queue", table.queue},
                       {"verdict", nfq::queueVerdictName(verdict)},
                       {"rules", table.matches.size()},
                       {"limit", record->limit}}};
}

Result<nlohmann::json> NfqueueDelayInjector::revert(const std::string& faultId,
                                                    const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  const std::string& table = record->table;
  nlohmann::json observed = nlohmann::json::object();
  std::optional<uint64_t> matched;
  // The rules first: once they are gone nothing new is queued, and every packet already
  // queued is in the consumer's socket or held by it. The table (its hook) only after the
  // consumer accepted them all: the kernel drops every packet still queued in the namespace
  // when a hook goes away.
  auto inNetns = [&](const std::function<Result<void>()>& fn) -> Result<bool> {
    auto ran = runInNetns(record->netns(), fn);
    if (!ran && ran.error().code() == ErrorCode::kNotFound) {
      observed["note"] = "the network namespace is gone";  // and its tables with it
      return false;
    }
    if (!ran) return std::move(ran).error();
    return true;
  };
  auto flushed = inNetns([&]() -> Result<void> {
    auto counted = nfq::tablePackets(table);
    if (counted) matched = *counted;
    auto f = nfq::flushTable(table);
    if (!f) return std::move(f).error();
    return success();
  });
  if (!flushed) return std::move(flushed).error();
  std::unique_ptr<nfq::NfqueueConsumer> consumer = context_->take(faultId);
  std::optional<nfq::ConsumerStats> stats;
  if (consumer) stats = consumer->stop();
  if (*flushed) {
    auto deleted = inNetns([&]() -> Result<void> {
      auto d = nfq::deleteTable(table);
      if (!d) return std::move(d).error();
      return success();
    });
    if (!deleted) return std::move(deleted).error();
  }
  if (matched) observed["matched"] = *matched;
  if (!stats) return observed;
  addConsumerStats(observed, consumer->queue(), *stats, matched);
  log::get("network")->info("nfqueue delay reverted fault={} queued={} released={} atStop={}",
                            faultId, stats->queued, stats->released, stats->releasedAtStop);
  return observed;
}

Result<std::vector<std::string>> NfqueueDelayInjector::audit(const nlohmann::json& undo) {
  auto record = recordOf(undo, "");
  if (!record) return std::move(record).error();
  std::vector<std::string> out;
  bool exists = false;
  auto ran = runInNetns(record->netns(), [&]() -> Result<void> {
    auto e = nfq::tableExists(record->table);
    if (!e) return std::move(e).error();
    exists = *e;
    return success();
  });
  if (!ran && ran.error().code() != ErrorCode::kNotFound) return std::move(ran).error();
  if (exists) out.push_back("nftables table inet " + record->table + " still exists");
  if (context_->runs(record->faultId)) {
    out.push_back("the NFQUEUE consumer of queue " + std::to_string(record->queue) + " still runs");
  }
  return out;
}

}  // namespace chaosd
