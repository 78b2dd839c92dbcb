#include "injectors/network/NfqueueDelay.h"

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NfqueueConsumer.h"
#include "injectors/network/NfqueueRules.h"

namespace chaosd {
namespace {

// The consumers of the faults this process applied, by fault id: they live from apply to
// revert, like SyscallSupervisor's rules.
std::mutex& registryMutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::unique_ptr<nfq::NfqueueConsumer>>& consumers() {
  static std::map<std::string, std::unique_ptr<nfq::NfqueueConsumer>> r;
  return r;
}

// Which verdict expression works on this kernel, learnt by the first apply: 0 unknown.
std::atomic<int> knownVerdict{0};

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

Result<void> checkUndo(const nlohmann::json& undo, const std::string& faultId) {
  if (!undo.is_object() || !undo.contains("table") || !undo.contains("queue") ||
      !undo.contains("filter")) {
    return Error(ErrorCode::kInvalid, "not an NFQUEUE delay undo record: " + undo.dump());
  }
  if (!faultId.empty() && undo.value("faultId", std::string()) != faultId) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to another fault");
  }
  const std::string table = undo["table"].get<std::string>();
  if (table.rfind("chaosd_", 0) != 0) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + table + ": not ours");
  }
  return success();
}

NetnsRef netnsOf(const nlohmann::json& undo) {
  NetnsRef ref;
  ref.path = undo.value("netns", std::string());
  return ref;
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

Result<nfq::QueueVerdict> addTable(const nfq::QueueTable& table) {
  using nfq::QueueVerdict;
  const int known = knownVerdict.load();
  if (known != 2) {
    auto added = nfq::addQueueTable(table, QueueVerdict::kNftQueue);
    if (added) {
      knownVerdict = 1;
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
  knownVerdict = 2;
  return QueueVerdict::kXtTarget;
}

}  // namespace

Result<PreparedFault> NfqueueDelayInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  const nlohmann::json& args = request.args;
  for (const char* k : {"loss", "duplicate", "corrupt", "reorder", "rate", "correlation",
                        "lossCorrelation", "gap"}) {
    if (args.contains(k)) {
      return Error(ErrorCode::kUnsupported,
                   std::string("'") + k + "' needs the netem backend (NFQUEUE only delays)");
    }
  }
  const int64_t delay = args.value("delay", int64_t{0});
  const int64_t jitter = args.value("jitter", int64_t{0});
  if (delay <= 0 && jitter <= 0) return Error(ErrorCode::kInvalid, "a delay fault needs a delay");
  const std::string distribution = args.value("distribution", std::string("uniform"));
  CHAOSD_TRY(nfq::parseJitterShape(distribution));
  nlohmann::json filter = nlohmann::json::object();
  for (const char* k : {"to", "from", "protocol"}) {
    if (args.contains(k)) filter[k] = args[k];
  }
  auto matches = nfq::packetMatches(filter);
  if (!matches) return std::move(matches).error();

  const NetnsRef& ns = target->interface.netns;
  std::string netnsPath;
  if (!ns.name.empty()) {
    netnsPath = "/run/netns/" + ns.name;
  } else if (!ns.path.empty()) {
    netnsPath = ns.path;
  } else if (ns.pid) {
    netnsPath = "/proc/" + std::to_string(*ns.pid) + "/ns/net";
  }
  auto queue = pickQueue(ns, request.faultId);
  if (!queue) return std::move(queue).error();

  const std::string table = tableName(request.faultId);
  const bool egress = args.value("direction", std::string("egress")) == "egress";
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& m : *matches) rules.push_back(m.str());
  PreparedFault out;
  out.undo = {{"faultId", request.faultId},
              {"table", table},
              {"family", "inet"},
              {"netns", netnsPath},
              {"iface", target->interface.name},
              {"direction", egress ? "egress" : "ingress"},
              {"filter", filter},
              {"rules", rules},
              {"queue", *queue},
              {"delayNs", delay},
              {"jitterNs", jitter},
              {"distribution", distribution},
              {"limit", args.value("limit", int64_t{1000})},
              {"seed", freshSeed()}};
  out.description = "delay " + msText(delay) + (jitter > 0 ? " +/- " + msText(jitter) : "") +
                    " on " + target->interface.name + " (" + (egress ? "egress" : "ingress") +
                    ") in " + ns.describe() + " (NFQUEUE " + std::to_string(*queue) +
                    ", nftables table inet " + table + ")";
  out.resources = {"nft:" + netnsPath + ":" + table,
                   "nfqueue:" + netnsPath + ":" + std::to_string(*queue)};
  return out;
}

Result<AppliedFault> NfqueueDelayInjector::apply(const std::string& faultId,
                                                 const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  {
    std::lock_guard lock(registryMutex());
    if (consumers().contains(faultId)) {
      return Error(ErrorCode::kConflict, "fault " + faultId + " is already applied");
    }
  }
  auto matches = nfq::packetMatches(undo["filter"]);
  if (!matches) return std::move(matches).error();
  auto shape = nfq::parseJitterShape(undo.value("distribution", std::string("uniform")));
  if (!shape) return std::move(shape).error();
  nfq::QueueTable table;
  table.name = undo["table"].get<std::string>();
  table.iface = undo.value("iface", std::string());
  table.egress = undo.value("direction", std::string("egress")) == "egress";
  table.queue = undo["queue"].get<uint16_t>();
  table.matches = std::move(*matches);

  // The consumer first: once the table exists, every matching packet goes to the queue.
  nfq::NfqueueConsumer::Config config{
      undo.value("netns", std::string()), table.queue,
      static_cast<uint32_t>(undo.value("limit", int64_t{1000})),
      nfq::DelaySampler(std::chrono::nanoseconds(undo.value("delayNs", int64_t{0})),
                        std::chrono::nanoseconds(undo.value("jitterNs", int64_t{0})), *shape,
                        undo.value("seed", uint64_t{0}))};
  auto consumer = nfq::NfqueueConsumer::start(std::move(config));
  if (!consumer) return std::move(consumer).error();

  nfq::QueueVerdict verdict{};
  auto added = runInNetns(netnsOf(undo), [&]() -> Result<void> {
    auto v = addTable(table);
    if (!v) return std::move(v).error();
    verdict = *v;
    return success();
  });
  if (!added) {
    (*consumer)->stop();
    return std::move(added).error();
  }
  {
    std::lock_guard lock(registryMutex());
    consumers()[faultId] = std::move(*consumer);
  }
  log::get("network")->info("nfqueue delay applied fault={} table={} queue={} verdict={}", faultId,
                            table.name, table.queue, nfq::queueVerdictName(verdict));
  return AppliedFault{"nfqueue",
                      {{"table", "inet " + table.name},
                       {"queue", table.queue},
                       {"verdict", nfq::queueVerdictName(verdict)},
                       {"rules", table.matches.size()},
                       {"limit", undo.value("limit", int64_t{1000})}}};
}

Result<nlohmann::json> NfqueueDelayInjector::revert(const std::string& faultId,
                                                    const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  const std::string table = undo["table"].get<std::string>();
  nlohmann::json observed = nlohmann::json::object();
  std::optional<uint64_t> matched;
  // The rules first: once they are gone nothing new is queued, and every packet already
  // queued is in the consumer's socket or held by it. The table (its hook) only after the
  // consumer accepted them all: the kernel drops every packet still queued in the namespace
  // when a hook goes away.
  auto inNetns = [&](const std::function<Result<void>()>& fn) -> Result<bool> {
    auto ran = runInNetns(netnsOf(undo), fn);
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
  std::unique_ptr<nfq::NfqueueConsumer> consumer;
  {
    std::lock_guard lock(registryMutex());
    auto it = consumers().find(faultId);
    if (it != consumers().end()) {
      consumer = std::move(it->second);
      consumers().erase(it);
    }
  }
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
  const nfq::ConsumerStats& s = *stats;
  observed["queue"] = consumer->queue();
  observed["queued"] = s.queued;
  observed["released"] = s.released;
  observed["releasedAtStop"] = s.releasedAtStop;
  observed["overflow"] = s.overflow;
  observed["maxHeld"] = s.maxHeld;
  observed["batchVerdicts"] = s.batchVerdicts;
  observed["verdictErrors"] = s.verdictErrors;
  observed["maxLateMs"] = static_cast<double>(s.maxLateNs) / 1e6;
  // Matched by the rules but never handed to us: the kernel accepted them undelayed because
  // its queue (maxlen) or our socket was full.
  if (matched) observed["failOpen"] = *matched > s.queued ? *matched - s.queued : 0;
  log::get("network")->info("nfqueue delay reverted fault={} queued={} released={} atStop={}",
                            faultId, s.queued, s.released, s.releasedAtStop);
  return observed;
}

Result<std::vector<std::string>> NfqueueDelayInjector::audit(const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, ""));
  std::vector<std::string> out;
  const std::string table = undo["table"].get<std::string>();
  bool exists = false;
  auto ran = runInNetns(netnsOf(undo), [&]() -> Result<void> {
    auto e = nfq::tableExists(table);
    if (!e) return std::move(e).error();
    exists = *e;
    return success();
  });
  if (!ran && ran.error().code() != ErrorCode::kNotFound) return std::move(ran).error();
  if (exists) out.push_back("nftables table inet " + table + " still exists");
  std::lock_guard lock(registryMutex());
  if (consumers().contains(undo.value("faultId", std::string()))) {
    out.push_back("the NFQUEUE consumer of queue " + std::to_string(undo["queue"].get<int>()) +
                  " still runs");
  }
  return out;
}

}  // namespace chaosd
