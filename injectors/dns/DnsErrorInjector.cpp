#include "injectors/dns/DnsErrorInjector.h"

#include <netinet/in.h>

#include <cctype>
#include <utility>

#include "chaosd/base/Log.h"
#include "experiments/model/Experiment.h"
#include "injectors/dns/DnsRecords.h"
#include "injectors/network/NfqueueDelay.h"
#include "injectors/network/NfqueueRules.h"
#include "injectors/network/NftRules.h"

namespace chaosd {
namespace {

std::string tableName(const std::string& faultId) { return nftablesFaultTable(faultId); }

// FNV-1a: the same fault id gives the same first choice of queue in every process.
uint32_t hashOf(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

Result<DnsErrorUndo> recordOf(const nlohmann::json& undo, const std::string& faultId) {
  auto record = DnsErrorUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(record->belongsTo(faultId));
  return record;
}

// A queue number free in the namespace, from the range the NFQUEUE delay uses.
Result<uint16_t> pickQueue(NfqueueKernel& kernel, const std::string& nsPath,
                           const std::string& faultId) {
  auto bound = kernel.boundQueues(nsPath);
  if (!bound) return std::move(bound).error();
  const uint32_t start = hashOf("dns:" + faultId) % kNfqueueCount;
  for (uint32_t i = 0; i < kNfqueueCount; ++i) {
    const auto q = static_cast<uint16_t>(kNfqueueFirst + (start + i) % kNfqueueCount);
    if (!bound->contains(q)) return q;
  }
  return Error(ErrorCode::kConflict, "every NFQUEUE queue chaosd uses is bound");
}

// One rule per protocol: the packets to the DNS port the interface sends.
std::vector<nfq::PacketMatch> dnsMatches(const DnsErrorArgs& a) {
  std::vector<nfq::PacketMatch> out;
  const units::PortRange port{a.port, a.port};
  if (a.protocol != "tcp") out.push_back({0, IPPROTO_UDP, std::nullopt, std::nullopt, port, {}});
  if (a.protocol != "udp") out.push_back({0, IPPROTO_TCP, std::nullopt, std::nullopt, port, {}});
  return out;
}

// Adds the table with nft's queue where the kernel has it, else the xtables target.
Result<nfq::QueueVerdict> addTable(NfqueueKernel& kernel, DnsContext& context,
                                   const std::string& nsPath, const nfq::QueueTable& table) {
  using nfq::QueueVerdict;
  if (context.knownVerdict() != QueueVerdict::kXtTarget) {
    auto added = kernel.addQueueTable(nsPath, table, QueueVerdict::kNftQueue);
    if (added) {
      context.learnVerdict(QueueVerdict::kNftQueue);
      return QueueVerdict::kNftQueue;
    }
    if (added.error().code() != ErrorCode::kUnsupported) return std::move(added).error();
  }
  auto added = kernel.addQueueTable(nsPath, table, QueueVerdict::kXtTarget);
  if (!added) return std::move(added).error();
  context.learnVerdict(QueueVerdict::kXtTarget);
  return QueueVerdict::kXtTarget;
}

bool namespaceGone(const Error& e) { return e.code() == ErrorCode::kNotFound; }

std::string describe(const DnsErrorUndo& u) {
  std::string names;
  for (const auto& n : u.args.names) names += (names.empty() ? "" : ",") + n;
  std::string types;
  for (const auto& t : u.args.types) types += (types.empty() ? " " : ",") + t;
  std::string what(dns::actionName(u.args.action));
  if (u.args.action == dns::Action::kDelay) {
    what += " " + std::to_string(u.args.delayNs / 1'000'000) + "ms";
  }
  return "dns " + what + " for " + names + types + " queries out of " + u.iface + " in " +
         u.netns().describe() + " (NFQUEUE " + std::to_string(u.queue) + ", nftables table inet " +
         u.table + ")";
}

}  // namespace

bool DnsContext::runs(const std::string& faultId) const {
  std::lock_guard lock(mu_);
  return running_.contains(faultId);
}

void DnsContext::keep(const std::string& faultId, std::unique_ptr<dns::Interception> i) {
  std::unique_ptr<dns::Interception> replaced;  // stopped outside the lock
  std::lock_guard lock(mu_);
  replaced = std::exchange(running_[faultId], std::move(i));
}

std::unique_ptr<dns::Interception> DnsContext::take(const std::string& faultId) {
  std::lock_guard lock(mu_);
  auto it = running_.find(faultId);
  if (it == running_.end()) return nullptr;
  auto out = std::move(it->second);
  running_.erase(it);
  return out;
}

std::optional<nfq::QueueVerdict> DnsContext::knownVerdict() const {
  std::lock_guard lock(mu_);
  return verdict_;
}

void DnsContext::learnVerdict(nfq::QueueVerdict verdict) {
  std::lock_guard lock(mu_);
  verdict_ = verdict;
}

DnsErrorInjector::DnsErrorInjector(std::shared_ptr<DnsContext> context)
    : DnsErrorInjector(std::move(context), std::make_shared<NetlinkNfqueueKernel>(),
                       std::make_shared<dns::NfqueueDnsKernel>()) {}

DnsErrorInjector::DnsErrorInjector(std::shared_ptr<DnsContext> context,
                                   std::shared_ptr<NfqueueKernel> tables,
                                   std::shared_ptr<dns::DnsKernel> dns)
    : context_(std::move(context)), tables_(std::move(tables)), dns_(std::move(dns)) {}

Result<PreparedFault> DnsErrorInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  auto args = DnsErrorArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  const NetnsRef& ns = target->interface.netns;
  auto queue = pickQueue(*tables_, ns.nsPath(), request.faultId);
  if (!queue) return std::move(queue).error();
  DnsErrorUndo undo{.faultId = request.faultId,
                    .table = tableName(request.faultId),
                    .netnsPath = ns.nsPath(),
                    .iface = target->interface.name,
                    .queue = *queue,
                    .rules = {},
                    .args = std::move(*args)};
  for (const auto& m : dnsMatches(undo.args)) undo.rules.push_back(m.str());
  PreparedFault out;
  out.undo = undo.toJson();
  out.description = describe(undo);
  out.resources = {"nft:" + undo.netnsPath + ":" + undo.table,
                   "nfqueue:" + undo.netnsPath + ":" + std::to_string(undo.queue)};
  return out;
}

Result<AppliedFault> DnsErrorInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (context_->runs(faultId)) {
    return Error(ErrorCode::kConflict, "fault " + faultId + " is already applied");
  }
  const DnsErrorArgs& a = record->args;
  dns::InterceptConfig config{
      record->netnsPath, record->queue, static_cast<uint32_t>(a.limit),     a.names,
      a.types,           a.action,      std::chrono::nanoseconds(a.delayNs)};
  // The interceptor first: once the table exists, every DNS packet goes to the queue.
  auto interception = dns_->startInterception(std::move(config));
  if (!interception) return std::move(interception).error();
  const nfq::QueueTable table{record->table, record->iface, true, record->queue, dnsMatches(a)};
  auto verdict = addTable(*tables_, *context_, record->netnsPath, table);
  if (!verdict) {
    (*interception)->stop();
    return std::move(verdict).error();
  }
  context_->keep(faultId, std::move(*interception));
  log::get("dns")->info("dns.error applied fault={} table={} queue={} action={}", faultId,
                        table.name, table.queue, dns::actionName(a.action));
  return AppliedFault{"nfqueue",
                      {{"table", "inet " + table.name},
                       {"queue", table.queue},
                       {"verdict", nfq::queueVerdictName(*verdict)},
                       {"rules", record->rules}}};
}

Result<nlohmann::json> DnsErrorInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  const std::string& table = record->table;
  const std::string& ns = record->netnsPath;
  nlohmann::json observed = nlohmann::json::object();
  // The rules first, so nothing new is queued; the interceptor then accepts what it holds;
  // the table (its hook) last: removing a hook drops every packet still queued in the namespace.
  auto flushed = tables_->flushTable(ns, table);
  bool gone = !flushed && namespaceGone(flushed.error());
  if (!flushed && !gone) return std::move(flushed).error();
  std::unique_ptr<dns::Interception> interception = context_->take(faultId);
  if (interception) {
    const dns::DnsStats stats = interception->stop();
    observed = stats.toJson();
    log::get("dns")->info("dns.error reverted fault={} queries={} matched={}", faultId,
                          stats.queries, stats.matched);
  }
  if (!gone) {
    auto deleted = tables_->deleteTable(ns, table);
    gone = !deleted && namespaceGone(deleted.error());
    if (!deleted && !gone) return std::move(deleted).error();
  }
  if (gone) observed["note"] = "the network namespace is gone";
  return observed;
}

Result<std::vector<std::string>> DnsErrorInjector::audit(const nlohmann::json& undo) {
  auto record = recordOf(undo, "");
  if (!record) return std::move(record).error();
  std::vector<std::string> out;
  auto exists = tables_->tableExists(record->netnsPath, record->table);
  if (!exists && !namespaceGone(exists.error())) return std::move(exists).error();
  if (exists && *exists) out.push_back("nftables table inet " + record->table + " still exists");
  if (context_->runs(record->faultId)) {
    out.push_back("the DNS interceptor of NFQUEUE queue " + std::to_string(record->queue) +
                  " still runs");
  }
  return out;
}

}  // namespace chaosd
