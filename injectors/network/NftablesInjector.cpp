#include "injectors/network/NftablesInjector.h"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "experiments/model/Experiment.h"

namespace chaosd {
namespace {

const nlohmann::json kNamespaceGone = {{"note", "the network namespace is gone"}};

// The record, checked to belong to `faultId` ("" for any).
Result<NftRuleUndo> ruleRecordOf(const nlohmann::json& undo, const std::string& faultId) {
  auto record = NftRuleUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(record->belongsTo(faultId));
  return record;
}

// nft's answer (kKernel, not a failure to enter the namespace) that the table is not there.
bool tableMissing(const Error& e) {
  return e.code() == ErrorCode::kKernel &&
         e.message().find("No such file or directory") != std::string::npos;
}

// Entering the namespace failed because it no longer exists (nft's own errors are kKernel).
bool namespaceGone(const Error& e) { return e.code() == ErrorCode::kNotFound; }

// The namespace could not be entered at all (gone, no longer a namespace, not allowed): an
// audit then has nothing to find, as before the kernel surface was split out.
bool cannotEnter(const Error& e) {
  const ErrorCode c = e.code();
  return c == ErrorCode::kNotFound || c == ErrorCode::kInvalid || c == ErrorCode::kPermission;
}

// The rules carrying one fault's comment in our table: their handles, as "CHAIN handle N", and
// what their counters counted (network.reset's rules have one; none for the others).
struct FaultRules {
  std::vector<std::string> handles;
  std::optional<uint64_t> counted;  // packets, summed over the rules' counters
  std::vector<std::string> sets;    // the record's host sets still in the table
};

// One listing of a run's table, read once: every fault's rules by comment, and the sets.
struct TableListing {
  std::map<std::string, FaultRules> byComment;
  std::set<std::string> sets;

  // The record's rules and host sets in this listing (none when it holds neither).
  FaultRules of(const NftRuleUndo& record) const {
    FaultRules out;
    if (auto it = byComment.find(record.comment); it != byComment.end()) out = it->second;
    if (!record.hostSet.empty()) {
      for (const char* family : {"_v4", "_v6"}) {
        if (sets.contains(record.hostSet + family)) out.sets.push_back(record.hostSet + family);
      }
    }
    return out;
  }
};

// The table as listed now (one netlink dump, JSON output, with handles); nullopt when the table
// is gone.
Result<std::optional<TableListing>> listTable(NftKernel& nft, const NftRuleUndo& record,
                                              NftSessionUse use) {
  const std::string& table = record.table;
  auto listed = nft.listJson(record.netnsPath, "table inet " + table, use);
  if (!listed) {
    if (tableMissing(listed.error())) return std::optional<TableListing>();
    return std::move(listed).error();
  }
  auto doc = nlohmann::json::parse(*listed, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
    return Error(ErrorCode::kInternal, "cannot read the listing of table inet " + table);
  }
  TableListing out;
  for (const auto& item : doc["nftables"]) {
    if (!item.is_object()) continue;
    if (item.contains("set") && item["set"].is_object()) {
      out.sets.insert(item["set"].value("name", std::string()));
    }
    if (!item.contains("rule") || !item["rule"].is_object()) continue;
    const auto& rule = item["rule"];
    const std::string comment = rule.value("comment", std::string());
    if (comment.empty()) continue;
    FaultRules& rules = out.byComment[comment];
    rules.handles.push_back(rule.value("chain", std::string()) + " handle " +
                            std::to_string(rule.value("handle", int64_t{0})));
    for (const auto& e : rule.value("expr", nlohmann::json::array())) {
      if (!e.is_object() || !e.contains("counter") || !e["counter"].is_object()) continue;
      rules.counted = rules.counted.value_or(0) + e["counter"].value("packets", uint64_t{0});
    }
  }
  return std::optional<TableListing>(std::move(out));
}

Result<FaultRules> rulesWithComment(NftKernel& nft, const NftRuleUndo& record, NftSessionUse use) {
  auto listing = listTable(nft, record, use);
  if (!listing) return std::move(listing).error();
  return listing->has_value() ? (*listing)->of(record) : FaultRules{};
}

// The delete commands of a fault's rules, then its sets (a set still referenced by a rule
// cannot be deleted).
std::string deleteScript(const NftRuleUndo& record, const FaultRules& rules) {
  std::string script;
  for (const auto& h : rules.handles) {
    script += "delete rule inet " + record.table + " " + h + "\n";
  }
  for (const auto& set : rules.sets) script += "delete set inet " + record.table + " " + set + "\n";
  return script;
}

std::shared_ptr<NftKernel> kernelOver(std::shared_ptr<NftSessionPool> sessions) {
  return std::make_shared<LibnftablesKernel>(std::move(sessions));
}

}  // namespace

NftablesInjector::NftablesInjector() : NftablesInjector(std::make_shared<NftSessionPool>()) {}

NftablesInjector::NftablesInjector(std::shared_ptr<NftSessionPool> sessions)
    : NftablesInjector(kernelOver(std::move(sessions))) {}

NftablesInjector::NftablesInjector(std::shared_ptr<NftKernel> kernel)
    : kernel_(std::move(kernel)), listings_(std::make_shared<RevertListings>()) {}

Result<PreparedFault> NftablesInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  const std::string& iface = target->interface.name;
  auto rules = nftablesRules(request.faultType, iface, request.args, request.faultId);
  if (!rules) return std::move(rules).error();
  const NetnsRef& ns = target->interface.netns;
  const std::string netnsPath = ns.nsPath();
  const std::string table =
      nftablesRunTable(request.runId.empty() ? request.faultId : request.runId);
  const std::string comment = nftablesRuleComment(request.faultId);
  PreparedFault out;
  out.undo = NftRuleUndo{.faultId = request.faultId,
                         .table = table,
                         .netnsPath = netnsPath,
                         .iface = iface,
                         .comment = comment,
                         .script = nftablesFaultScript(table, request.faultId, *rules),
                         .faultType = request.faultType,
                         .hostSet = rules->hostSet,
                         .hostAddresses = rules->hostAddresses}
                 .toJson();
  const std::string what = request.faultType == "network.partition" ? "partition"
                           : request.faultType == "network.reset"   ? "TCP resets"
                                                                    : "loss";
  out.description = what + " on " + iface + " in " + ns.describe() + " (nftables rules \"" +
                    comment + "\" in table inet " + table + ")";
  out.resources = {"nft:" + netnsPath + ":" + table + ":" + request.faultId};
  SharedNeed need;
  need.key = "nft:" + netnsPath + ":" + table;
  need.faultType = std::string(kNftablesTableFaultType);
  need.undo =
      NftTableUndo{.table = table, .netnsPath = netnsPath, .script = nftablesTableScript(table)}
          .toJson();
  need.description = "nftables table inet " + table + " in " + ns.describe();
  out.shared.push_back(std::move(need));
  return out;
}

Result<AppliedFault> NftablesInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto record = ruleRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  auto ran = kernel_->run(record->netnsPath, record->script);
  if (!ran) return std::move(ran).error();
  return AppliedFault{"nftables", {{"table", "inet " + record->table}, {"rules", record->comment}}};
}

// The listings a group's reverts share (NftablesInjector.h). Each entry is one listing of a run's
// table, and a fault's rules are taken from it once: a revert removes its fault's entry, and a
// fault the listing does not name (applied after it, or gone) is looked up in a new listing.
class NftablesInjector::RevertListings {
 public:
  // The fault's rules from a listing made less than kMaxAge ago, taken out of it; nullopt when
  // none has them, or when they count packets (network.reset's resets sent are read fresh).
  std::optional<FaultRules> take(const NftRuleUndo& record) {
    std::lock_guard lock(mu_);
    auto it = tables_.find(key(record));
    if (it == tables_.end()) return std::nullopt;
    if (std::chrono::steady_clock::now() - it->second.at > kMaxAge) {
      tables_.erase(it);
      return std::nullopt;
    }
    TableListing& listing = it->second.listing;
    auto rules = listing.byComment.find(record.comment);
    if (rules == listing.byComment.end() || rules->second.counted) return std::nullopt;
    FaultRules out = listing.of(record);
    listing.byComment.erase(rules);
    for (const auto& set : out.sets) listing.sets.erase(set);
    if (listing.byComment.empty()) tables_.erase(it);
    return out;
  }
  // Keeps `listing` (just made) for the reverts after this one, less the record's own rules.
  void keep(const NftRuleUndo& record, TableListing listing) {
    listing.byComment.erase(record.comment);
    std::lock_guard lock(mu_);
    tables_.erase(key(record));
    if (listing.byComment.empty()) return;
    while (tables_.size() >= kMaxTables) {
      auto oldest = tables_.begin();
      for (auto t = tables_.begin(); t != tables_.end(); ++t) {
        if (t->second.at < oldest->second.at) oldest = t;
      }
      tables_.erase(oldest);
    }
    tables_[key(record)] = Entry{std::chrono::steady_clock::now(), std::move(listing)};
  }
  void drop(const NftRuleUndo& record) {
    std::lock_guard lock(mu_);
    tables_.erase(key(record));
  }

 private:
  // A group's reverts follow one another within milliseconds; an older listing is not trusted.
  static constexpr std::chrono::seconds kMaxAge{10};
  static constexpr size_t kMaxTables = 8;
  struct Entry {
    std::chrono::steady_clock::time_point at;
    TableListing listing;
  };
  static std::pair<std::string, std::string> key(const NftRuleUndo& r) {
    return {r.netnsPath, r.table};
  }
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> tables_;
};

Result<nlohmann::json> NftablesInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  auto record = ruleRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  // The fault's rules: from the listing an earlier revert of the group made, or a new one (kept
  // for the reverts after this one): a group of N faults lists its table once, not N times.
  std::optional<FaultRules> rules = listings_->take(*record);
  const bool fromEarlierListing = rules.has_value();
  auto listFresh = [&]() -> Result<FaultRules> {
    auto listing = listTable(*kernel_, *record, NftSessionUse::kPooled);
    if (!listing) return std::move(listing).error();
    if (!listing->has_value()) {  // the table is gone
      listings_->drop(*record);
      return FaultRules{};
    }
    FaultRules out = (*listing)->of(*record);
    listings_->keep(*record, std::move(**listing));
    return out;
  };
  if (!rules) {
    auto listed = listFresh();
    if (!listed) {
      // The namespace is gone, and its tables with it.
      if (namespaceGone(listed.error())) return kNamespaceGone;
      return std::move(listed).error();
    }
    rules = std::move(*listed);
  }
  if (rules->handles.empty() && rules->sets.empty()) return nlohmann::json::object();
  auto ran = kernel_->run(record->netnsPath, deleteScript(*record, *rules));
  if (!ran && fromEarlierListing && !namespaceGone(ran.error())) {
    // The table changed since that listing (a rule deleted by someone else: the transaction,
    // all or nothing, deleted none): list it again and delete what is there now.
    listings_->drop(*record);
    auto listed = listFresh();
    if (!listed && namespaceGone(listed.error())) return kNamespaceGone;
    if (!listed) return std::move(listed).error();
    rules = std::move(*listed);
    if (rules->handles.empty() && rules->sets.empty()) return nlohmann::json::object();
    ran = kernel_->run(record->netnsPath, deleteScript(*record, *rules));
  }
  if (!ran) listings_->drop(*record);
  if (!ran && namespaceGone(ran.error())) return kNamespaceGone;
  if (!ran && !tableMissing(ran.error())) return std::move(ran).error();
  nlohmann::json observed = nlohmann::json::object();
  // Only network.reset's rules count: what they rejected is the resets sent.
  if (rules->counted) observed["resetsSent"] = *rules->counted;
  return observed;
}

Result<std::vector<std::string>> NftablesInjector::audit(const nlohmann::json& undo) {
  auto record = ruleRecordOf(undo, "");
  if (!record) return std::move(record).error();
  // Not the pooled session: the audit comes after the run's table is gone.
  auto rules = rulesWithComment(*kernel_, *record, NftSessionUse::kOneOff);
  if (!rules && cannotEnter(rules.error())) return std::vector<std::string>{};
  if (!rules) return std::move(rules).error();
  std::vector<std::string> out;
  for (const auto& h : rules->handles) {
    out.push_back("nftables rule " + h + " of table inet " + record->table + " still exists");
  }
  for (const auto& set : rules->sets) {
    out.push_back("nftables set " + set + " of table inet " + record->table + " still exists");
  }
  return out;
}

Result<nlohmann::json> NftablesInjector::reprepare(const std::string& faultId,
                                                   const nlohmann::json& undo,
                                                   const nlohmann::json& args) {
  auto record = ruleRecordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (record->hostSet.empty()) {
    return Error(ErrorCode::kUnsupported,
                 "the fault holds no host set (prepared without refresh, or by an older chaosd)");
  }
  auto rules = nftablesRules(record->faultType, record->iface, args, faultId);
  if (!rules) return std::move(rules).error();
  if (rules->hostSet != record->hostSet) {
    // Same sets or none: a revert from either record must find every object of the fault.
    return Error(ErrorCode::kInvalid, "the new filter has no host set of fault " + faultId);
  }
  NftRuleUndo next = std::move(*record);
  next.script = nftablesFaultScript(next.table, faultId, *rules);
  next.hostAddresses = rules->hostAddresses;
  return next.toJson();
}

Result<void> NftablesInjector::update(const std::string& faultId, const nlohmann::json& undo,
                                      const nlohmann::json& next) {
  auto before = ruleRecordOf(undo, faultId);
  if (!before) return std::move(before).error();
  auto after = ruleRecordOf(next, faultId);
  if (!after) return std::move(after).error();
  if (after->hostSet.empty() || after->hostSet != before->hostSet ||
      after->table != before->table || after->netnsPath != before->netnsPath) {
    return Error(ErrorCode::kInvalid, "the records of fault " + faultId + " name other objects");
  }
  // One transaction: both sets flushed and filled; a packet sees the old set or the new one.
  auto ran = kernel_->run(
      after->netnsPath, nftablesHostSetUpdate(after->table, after->hostSet, after->hostAddresses));
  if (!ran) return std::move(ran).error();
  return success();
}

NftablesTableInjector::NftablesTableInjector()
    : NftablesTableInjector(std::make_shared<NftSessionPool>()) {}

NftablesTableInjector::NftablesTableInjector(std::shared_ptr<NftSessionPool> sessions)
    : NftablesTableInjector(kernelOver(std::move(sessions))) {}

NftablesTableInjector::NftablesTableInjector(std::shared_ptr<NftKernel> kernel)
    : kernel_(std::move(kernel)) {}

Result<AppliedFault> NftablesTableInjector::apply(const std::string&, const nlohmann::json& undo) {
  auto record = NftTableUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto ran = kernel_->run(record->netnsPath, record->script);
  if (!ran) return std::move(ran).error();
  return AppliedFault{"nftables", {{"table", "inet " + record->table}}};
}

Result<nlohmann::json> NftablesTableInjector::revert(const std::string&,
                                                     const nlohmann::json& undo) {
  auto record = NftTableUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto ran = kernel_->run(record->netnsPath, "delete table inet " + record->table);
  if (!ran && namespaceGone(ran.error())) return kNamespaceGone;
  if (!ran && !tableMissing(ran.error())) return std::move(ran).error();
  // The run is done with this namespace: close its socket (and let the namespace go).
  kernel_->forget(record->netnsPath);
  return nlohmann::json::object();
}

Result<std::vector<std::string>> NftablesTableInjector::audit(const nlohmann::json& undo) {
  auto record = NftTableUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  auto listed =
      kernel_->listJson(record->netnsPath, "table inet " + record->table, NftSessionUse::kOneOff);
  if (!listed && cannotEnter(listed.error())) return std::vector<std::string>{};
  if (listed) {
    return std::vector<std::string>{"nftables table inet " + record->table + " still exists"};
  }
  if (tableMissing(listed.error())) return std::vector<std::string>{};
  return std::move(listed).error();
}

}  // namespace chaosd
