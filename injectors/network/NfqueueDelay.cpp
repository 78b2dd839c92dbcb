#include "injectors/network/NfqueueDelay.h"

#include <cctype>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueRules.h"
#include "injectors/network/NftRules.h"

namespace chaosd {
namespace {

std::string tableName(const std::string& faultId) { return nftablesFaultTable(faultId); }

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
Result<uint16_t> pickQueue(NfqueueKernel& kernel, const NetnsRef& ns, const std::string& faultId) {
  auto bound = kernel.boundQueues(ns.nsPath());
  if (!bound) return std::move(bound).error();
  const uint32_t start = hashOf(faultId) % kNfqueueCount;
  for (uint32_t i = 0; i < kNfqueueCount; ++i) {
    const auto q = static_cast<uint16_t>(kNfqueueFirst + (start + i) % kNfqueueCount);
    if (!bound->contains(q)) return q;
  }
  return Error(ErrorCode::kConflict,
               "every NFQUEUE queue chaosd uses is bound in " + ns.describe());
}

// Adds the table with the verdict expression this kernel takes: nft's queue where it works
// (tried first until the xtables target was needed once), else the xtables target.
Result<nfq::QueueVerdict> addTable(NfqueueKernel& kernel, NfqueueDelayContext& context,
                                   const std::string& netnsPath, const nfq::QueueTable& table) {
  using nfq::QueueVerdict;
  if (context.knownVerdict() != QueueVerdict::kXtTarget) {
    auto added = kernel.addQueueTable(netnsPath, table, QueueVerdict::kNftQueue);
    if (added) {
      context.learnVerdict(QueueVerdict::kNftQueue);
      return QueueVerdict::kNftQueue;
    }
    if (added.error().code() != ErrorCode::kUnsupported) return std::move(added).error();
  }
  auto added = kernel.addQueueTable(netnsPath, table, QueueVerdict::kXtTarget);
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
Result<std::pair<std::unique_ptr<nfq::QueueConsumer>, nfq::QueueVerdict>> startDelay(
    NfqueueKernel& kernel, NfqueueDelayContext& context, const NfqueueDelayUndo& undo,
    const nfq::QueueTable& table, nfq::JitterShape shape) {
  nfq::ConsumerConfig config{
      undo.netnsPath, table.queue, static_cast<uint32_t>(undo.limit),
      nfq::DelaySampler(std::chrono::nanoseconds(undo.delayNs),
                        std::chrono::nanoseconds(undo.jitterNs), shape, undo.seed)};
  auto consumer = kernel.startConsumer(std::move(config));
  if (!consumer) return std::move(consumer).error();
  auto verdict = addTable(kernel, context, undo.netnsPath, table);
  if (!verdict) {
    (*consumer)->stop();
    return std::move(verdict).error();
  }
  return std::pair{std::move(*consumer), *verdict};
}

// An error entering the namespace because it is gone (and its tables with it): revert notes it.
bool namespaceGone(const Error& e) { return e.code() == ErrorCode::kNotFound; }

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
    : NfqueueDelayInjector(std::move(context), std::make_shared<NetlinkNfqueueKernel>()) {}

NfqueueDelayInjector::NfqueueDelayInjector(std::shared_ptr<NfqueueDelayContext> context,
                                           std::shared_ptr<NfqueueKernel> kernel)
    : context_(std::move(context)), kernel_(std::move(kernel)) {}

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
  auto queue = pickQueue(*kernel_, ns, request.faultId);
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
  auto started = startDelay(*kernel_, *context_, *record, table, *shape);
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
  const std::string& ns = record->netnsPath;
  nlohmann::json observed = nlohmann::json::object();
  // The rules first: once they are gone nothing new is queued, and every packet already
  // queued is in the consumer's socket or held by it. The table (its hook) only after the
  // consumer accepted them all: the kernel drops every packet still queued in the namespace
  // when a hook goes away.
  bool gone = false;
  std::optional<uint64_t> matched;
  auto counted = kernel_->tablePackets(ns, table);
  if (counted) matched = *counted;  // a count that failed only misses from the report
  gone = !counted && namespaceGone(counted.error());
  if (!gone) {
    auto flushed = kernel_->flushTable(ns, table);
    gone = !flushed && namespaceGone(flushed.error());
    if (!flushed && !gone) return std::move(flushed).error();
  }
  std::unique_ptr<nfq::QueueConsumer> consumer = context_->take(faultId);
  std::optional<nfq::ConsumerStats> stats;
  if (consumer) stats = consumer->stop();
  if (!gone) {
    auto deleted = kernel_->deleteTable(ns, table);
    gone = !deleted && namespaceGone(deleted.error());
    if (!deleted && !gone) return std::move(deleted).error();
  }
  if (gone) observed["note"] = "the network namespace is gone";  // and its tables with it
  if (matched) observed["matched"] = *matched;
  if (!stats) return observed;
  addConsumerStats(observed, consumer->queue(), *stats, matched);
  log::get("network")->info("nfqueue delay reverted fault={} queued={} released={} atStop={}",
                            faultId, stats->queued, stats->released, stats->releasedAtStop);
  return observed;
}

Result<nlohmann::json> NfqueueDelayInjector::reprepare(const std::string& faultId,
                                                       const nlohmann::json& undo,
                                                       const nlohmann::json& args) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  auto parsed = NfqueueDelayArgs::fromJson(args);
  if (!parsed) return std::move(parsed).error();
  auto matches = nfq::packetMatches(parsed->filter);
  if (!matches) return std::move(matches).error();
  // Same table, queue, delay and seed: only the filter and its rules change.
  record->filter = parsed->filter;
  record->rules.clear();
  for (const auto& m : *matches) record->rules.push_back(m.str());
  return record->toJson();
}

Result<void> NfqueueDelayInjector::update(const std::string& faultId, const nlohmann::json& undo,
                                          const nlohmann::json& next) {
  auto before = recordOf(undo, faultId);
  if (!before) return std::move(before).error();
  auto after = recordOf(next, faultId);
  if (!after) return std::move(after).error();
  if (after->table != before->table || after->netnsPath != before->netnsPath ||
      after->queue != before->queue || after->egress != before->egress) {
    return Error(ErrorCode::kInvalid, "the records of fault " + faultId + " name other objects");
  }
  // The verdict the table was made with (learnt by this process's apply).
  const auto verdict = context_->knownVerdict();
  if (!context_->runs(faultId) || !verdict) {
    return Error(ErrorCode::kConflict, "fault " + faultId + " is not held by this process");
  }
  auto matches = nfq::packetMatches(after->filter);
  if (!matches) return std::move(matches).error();
  const nfq::QueueTable table{after->table, after->iface, after->egress, after->queue,
                              std::move(*matches)};
  return kernel_->replaceQueueRules(after->netnsPath, table, *verdict);
}

Result<std::vector<std::string>> NfqueueDelayInjector::audit(const nlohmann::json& undo) {
  auto record = recordOf(undo, "");
  if (!record) return std::move(record).error();
  std::vector<std::string> out;
  auto exists = kernel_->tableExists(record->netnsPath, record->table);
  if (!exists && !namespaceGone(exists.error())) return std::move(exists).error();
  if (exists && *exists) out.push_back("nftables table inet " + record->table + " still exists");
  if (context_->runs(record->faultId)) {
    out.push_back("the NFQUEUE consumer of queue " + std::to_string(record->queue) + " still runs");
  }
  return out;
}

}  // namespace chaosd
