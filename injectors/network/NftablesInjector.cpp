#include "injectors/network/NftablesInjector.h"

#include <nftables/libnftables.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"

namespace chaosd {
namespace {

// A libnftables context whose output and errors are captured, not printed. Thread-safe: one
// command at a time.
class Nft {
 public:
  Nft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    if (ctx_ != nullptr) {
      nft_ctx_buffer_output(ctx_);
      nft_ctx_buffer_error(ctx_);
    }
  }
  ~Nft() {
    if (ctx_ != nullptr) nft_ctx_free(ctx_);
  }
  Nft(const Nft&) = delete;
  Nft& operator=(const Nft&) = delete;

  // Runs the commands as one transaction; the error text nft would print on failure.
  Result<std::string> run(const std::string& commands) { return runWith(commands, 0); }
  // A listing in JSON with rule handles.
  Result<std::string> listJson(const std::string& what) {
    return runWith("list " + what, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  }

 private:
  Result<std::string> runWith(const std::string& commands, unsigned flags) {
    std::lock_guard lock(mu_);
    if (ctx_ == nullptr) return Error(ErrorCode::kInternal, "nft_ctx_new failed");
    nft_ctx_output_set_flags(ctx_, flags);
    const int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
    const std::string out = nft_ctx_get_output_buffer(ctx_);
    std::string err = nft_ctx_get_error_buffer(ctx_);
    if (rc != 0) {
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      return Error(ErrorCode::kKernel, "nftables: " + (err.empty() ? "failed" : err));
    }
    return out;
  }

  std::mutex mu_;
  nft_ctx* ctx_;
};

// One libnftables context per network namespace, kept while the run's table lives there.
// Closing a netfilter netlink socket after a transaction makes nf_tables flush its deferred
// destruction work, which waits for an RCU grace period (10-20 ms here): a context per change
// would pay that on every apply and revert. The context's socket belongs to the namespace the
// thread was in when it was made, and holds that namespace alive, so it is dropped when the
// run's table is deleted. Call both inside the namespace (after NetnsGuard::enter).
std::mutex gPoolMu;
std::map<std::pair<dev_t, ino_t>, std::shared_ptr<Nft>> gPool;

Result<std::pair<dev_t, ino_t>> currentNetns() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) {
    return Error::fromErrno("stat /proc/thread-self/ns/net", errno);
  }
  return std::pair{st.st_dev, st.st_ino};
}

Result<std::shared_ptr<Nft>> nftHere() {
  auto ns = currentNetns();
  if (!ns) return std::move(ns).error();
  std::lock_guard lock(gPoolMu);
  auto& slot = gPool[*ns];
  if (!slot) slot = std::make_shared<Nft>();
  return slot;
}

void dropNftHere() {
  auto ns = currentNetns();
  if (!ns) return;
  std::shared_ptr<Nft> last;  // closed outside the lock
  std::lock_guard lock(gPoolMu);
  auto it = gPool.find(*ns);
  if (it == gPool.end()) return;
  last = std::move(it->second);
  gPool.erase(it);
}

std::string tableName(const std::string& runId) {
  std::string out = "chaosd_run_";
  for (char c : runId) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string ruleComment(const std::string& faultId) { return "chaosd:" + faultId; }

bool isV6(const std::string& cidr) { return cidr.find(':') != std::string::npos; }

// "{ 10.0.0.2/32, 10.1.0.0/16 }" of one family; "" when there is none of that family.
std::string addressSet(const nlohmann::json& cidrs, bool v6) {
  std::string out;
  for (const auto& c : cidrs) {
    const std::string s = c.get<std::string>();
    if (isV6(s) != v6) continue;
    out += (out.empty() ? "" : ", ") + s;
  }
  return out.empty() ? "" : "{ " + out + " }";
}

std::string portSet(const nlohmann::json& ports) {
  std::string out;
  for (const auto& p : ports) {
    const int first = p.value("first", 0);
    const int last = p.value("last", first);
    out += (out.empty() ? "" : ", ") + (first == last
                                            ? std::to_string(first)
                                            : std::to_string(first) + "-" + std::to_string(last));
  }
  return "{ " + out + " }";
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The matches of one rule for packets to (egress) or from (ingress) the peers: interface,
// family and addresses, protocol and ports. Empty vector: no rule for this family.
std::vector<std::string> matchLines(const nlohmann::json& peer, const std::string& protocol,
                                    bool egress, const std::string& iface) {
  const std::string ifMatch = (egress ? "oifname " : "iifname ") + quoted(iface);
  const std::string addrDir = egress ? "daddr" : "saddr";
  const std::string portDir = egress ? "dport" : "sport";
  const nlohmann::json cidrs = peer.value("cidr", nlohmann::json::array());
  const nlohmann::json ports = peer.value("ports", nlohmann::json::array());
  std::vector<std::string> addrMatches;
  if (cidrs.empty()) {
    addrMatches.push_back("");
  } else {
    if (auto v4 = addressSet(cidrs, false); !v4.empty())
      addrMatches.push_back("ip " + addrDir + " " + v4);
    if (auto v6 = addressSet(cidrs, true); !v6.empty()) {
      addrMatches.push_back("ip6 " + addrDir + " " + v6);
    }
  }
  std::string proto;
  if (protocol == "tcp" || protocol == "udp") {
    proto = "meta l4proto " + protocol;
  } else if (protocol == "icmp") {
    proto = "meta l4proto { icmp, ipv6-icmp }";
  } else if (!ports.empty()) {
    proto = "meta l4proto { tcp, udp }";
  }
  const std::string portMatch = ports.empty() ? "" : "th " + portDir + " " + portSet(ports);
  std::vector<std::string> out;
  for (const auto& a : addrMatches) {
    std::string line = ifMatch;
    for (const std::string* part :
         std::initializer_list<const std::string*>{&a, &proto, &portMatch}) {
      if (!part->empty()) line += " " + *part;
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace

Result<NftablesRules> nftablesRules(const std::string& faultType, const std::string& iface,
                                    const nlohmann::json& args) {
  NftablesRules result;
  std::vector<std::string>& out = result.out;
  std::vector<std::string>& in = result.in;
  if (faultType == "network.partition") {
    const std::string direction = args.value("direction", std::string("both"));
    const std::string protocol = args.value("protocol", std::string("all"));
    const bool reject = args.value("reject", false);
    nlohmann::json peer = nlohmann::json::object();
    if (args.contains("cidr")) peer["cidr"] = args["cidr"];
    if (args.contains("ports")) peer["ports"] = args["ports"];
    auto verdicts = [&](const std::string& match) {
      std::vector<std::string> rules;
      if (!reject) {
        rules.push_back(match + " drop");
        return rules;
      }
      // A TCP reset where TCP can be told apart, an ICMP unreachable for the rest.
      if (protocol == "all" || protocol == "tcp") {
        rules.push_back(match + (protocol == "tcp" ? "" : " meta l4proto tcp") +
                        " reject with tcp reset");
      }
      if (protocol != "tcp") rules.push_back(match + " reject");
      return rules;
    };
    if (direction == "to" || direction == "both") {
      for (const auto& m : matchLines(peer, protocol, true, iface)) {
        for (auto& r : verdicts(m)) out.push_back(r);
      }
    }
    if (direction == "from" || direction == "both") {
      for (const auto& m : matchLines(peer, protocol, false, iface)) {
        for (auto& r : verdicts(m)) in.push_back(r);
      }
    }
  } else if (faultType == "network.loss") {
    const double loss = args.value("loss", 0.0);
    // numgen random mod 1000000 < share: a uniform draw per packet, in the kernel.
    const auto threshold = static_cast<long long>(std::llround(loss * 1'000'000));
    const std::string drop = "numgen random mod 1000000 < " + std::to_string(threshold) + " drop";
    const bool egress = args.value("direction", std::string("egress")) == "egress";
    nlohmann::json peer = nlohmann::json::object();
    const char* side = egress ? "to" : "from";
    if (args.contains(side)) peer = args[side];
    for (const auto& m :
         matchLines(peer, args.value("protocol", std::string("all")), egress, iface)) {
      (egress ? out : in).push_back(m + " " + drop);
    }
  } else {
    return Error(ErrorCode::kInvalid, "the nftables backend does not do " + faultType);
  }
  return result;
}

std::string nftablesTableScript(const std::string& table) {
  return "table inet " + table +
         " {\n"
         "  chain out {\n    type filter hook output priority -300; policy accept;\n  }\n"
         "  chain in {\n    type filter hook input priority -300; policy accept;\n  }\n"
         "}\n";
}

std::string nftablesFaultScript(const std::string& table, const std::string& faultId,
                                const NftablesRules& rules) {
  std::string s;
  const std::string comment = " comment \"" + ruleComment(faultId) + "\"\n";
  for (const auto& r : rules.out) s += "add rule inet " + table + " out " + r + comment;
  for (const auto& r : rules.in) s += "add rule inet " + table + " in " + r + comment;
  return s;
}

Result<PreparedFault> NftablesInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  if (request.faultType == "network.loss") {
    for (const char* k : {"delay", "jitter", "duplicate", "corrupt", "reorder", "rate",
                          "correlation", "lossCorrelation", "gap"}) {
      if (request.args.contains(k)) {
        return Error(ErrorCode::kUnsupported,
                     std::string("'") + k + "' needs the netem backend (backend: netem)");
      }
    }
  }
  auto rules = nftablesRules(request.faultType, target->interface.name, request.args);
  if (!rules) return std::move(rules).error();
  std::string netnsPath;
  const NetnsRef& ns = target->interface.netns;
  if (!ns.name.empty()) {
    netnsPath = "/run/netns/" + ns.name;
  } else if (!ns.path.empty()) {
    netnsPath = ns.path;
  } else if (ns.pid) {
    netnsPath = "/proc/" + std::to_string(*ns.pid) + "/ns/net";
  }
  const std::string table = tableName(request.runId.empty() ? request.faultId : request.runId);
  PreparedFault out;
  out.undo = {{"faultId", request.faultId},
              {"table", table},
              {"family", "inet"},
              {"netns", netnsPath},
              {"iface", target->interface.name},
              {"comment", ruleComment(request.faultId)},
              {"script", nftablesFaultScript(table, request.faultId, *rules)}};
  out.description = std::string(request.faultType == "network.partition" ? "partition" : "loss") +
                    " on " + target->interface.name + " in " + ns.describe() +
                    " (nftables rules \"" + ruleComment(request.faultId) + "\" in table inet " +
                    table + ")";
  out.resources = {"nft:" + netnsPath + ":" + table + ":" + request.faultId};
  SharedNeed need;
  need.key = "nft:" + netnsPath + ":" + table;
  need.faultType = std::string(kNftablesTableFaultType);
  need.undo = {{"table", table},
               {"family", "inet"},
               {"netns", netnsPath},
               {"script", nftablesTableScript(table)}};
  need.description = "nftables table inet " + table + " in " + ns.describe();
  out.shared.push_back(std::move(need));
  return out;
}

namespace {

Result<NetnsGuard> enterNetnsOf(const nlohmann::json& undo) {
  NetnsRef ref;
  ref.path = undo.value("netns", std::string());
  return NetnsGuard::enter(ref);
}

Result<void> checkTable(const nlohmann::json& undo) {
  if (!undo.is_object() || !undo.contains("table") || !undo["table"].is_string()) {
    return Error(ErrorCode::kInvalid, "not an nftables undo record: " + undo.dump());
  }
  const std::string table = undo["table"].get<std::string>();
  if (table.rfind("chaosd_", 0) != 0) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + table + ": not ours");
  }
  return success();
}

Result<void> checkUndo(const nlohmann::json& undo, const std::string& faultId) {
  CHAOSD_TRY(checkTable(undo));
  if (!undo.contains("script") || !undo.contains("comment")) {
    return Error(ErrorCode::kInvalid, "not an nftables fault undo record: " + undo.dump());
  }
  if (!faultId.empty() && undo.value("faultId", std::string()) != faultId) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to another fault");
  }
  return success();
}

bool tableMissing(const Error& e) {
  return e.message().find("No such file or directory") != std::string::npos;
}

// The handles of the rules carrying `comment` in our table, as "CHAIN handle N"; an empty list
// when the table is gone. One netlink dump of the table (JSON output, with handles).
Result<std::vector<std::string>> rulesWithComment(Nft& nft, const std::string& table,
                                                  const std::string& comment) {
  auto listed = nft.listJson("table inet " + table);
  if (!listed) {
    if (tableMissing(listed.error())) return std::vector<std::string>{};
    return std::move(listed).error();
  }
  auto doc = nlohmann::json::parse(*listed, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables")) {
    return Error(ErrorCode::kInternal, "cannot read the listing of table inet " + table);
  }
  std::vector<std::string> out;
  for (const auto& item : doc["nftables"]) {
    if (!item.contains("rule")) continue;
    const auto& rule = item["rule"];
    if (rule.value("comment", std::string()) != comment) continue;
    out.push_back(rule.value("chain", std::string()) + " handle " +
                  std::to_string(rule.value("handle", int64_t{0})));
  }
  return out;
}

}  // namespace

Result<AppliedFault> NftablesInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::move(guard).error();
  auto nft = nftHere();
  if (!nft) return std::move(nft).error();
  auto ran = (*nft)->run(undo["script"].get<std::string>());
  if (!ran) return std::move(ran).error();
  return AppliedFault{
      "nftables",
      {{"table", "inet " + undo["table"].get<std::string>()}, {"rules", undo["comment"]}}};
}

Result<nlohmann::json> NftablesInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  auto guard = enterNetnsOf(undo);
  if (!guard) {
    // The namespace is gone, and its tables with it.
    if (guard.error().code() == ErrorCode::kNotFound) {
      return nlohmann::json{{"note", "the network namespace is gone"}};
    }
    return std::move(guard).error();
  }
  const std::string table = undo["table"].get<std::string>();
  auto nft = nftHere();
  if (!nft) return std::move(nft).error();
  auto handles = rulesWithComment(**nft, table, undo["comment"].get<std::string>());
  if (!handles) return std::move(handles).error();
  if (handles->empty()) return nlohmann::json::object();
  std::string script;
  for (const auto& h : *handles) script += "delete rule inet " + table + " " + h + "\n";
  auto ran = (*nft)->run(script);
  if (!ran && !tableMissing(ran.error())) return std::move(ran).error();
  return nlohmann::json::object();
}

Result<std::vector<std::string>> NftablesInjector::audit(const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, ""));
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::vector<std::string>{};
  const std::string table = undo["table"].get<std::string>();
  Nft nft;  // not the pooled one: the audit comes after the run's table is gone
  auto handles = rulesWithComment(nft, table, undo["comment"].get<std::string>());
  if (!handles) return std::move(handles).error();
  std::vector<std::string> out;
  for (const auto& h : *handles) {
    out.push_back("nftables rule " + h + " of table inet " + table + " still exists");
  }
  return out;
}

Result<AppliedFault> NftablesTableInjector::apply(const std::string&, const nlohmann::json& undo) {
  CHAOSD_TRY(checkTable(undo));
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::move(guard).error();
  auto nft = nftHere();
  if (!nft) return std::move(nft).error();
  auto ran = (*nft)->run(undo.value("script", std::string()));
  if (!ran) return std::move(ran).error();
  return AppliedFault{"nftables", {{"table", "inet " + undo["table"].get<std::string>()}}};
}

Result<nlohmann::json> NftablesTableInjector::revert(const std::string&,
                                                     const nlohmann::json& undo) {
  CHAOSD_TRY(checkTable(undo));
  auto guard = enterNetnsOf(undo);
  if (!guard) {
    if (guard.error().code() == ErrorCode::kNotFound) {
      return nlohmann::json{{"note", "the network namespace is gone"}};
    }
    return std::move(guard).error();
  }
  {
    auto nft = nftHere();
    if (!nft) return std::move(nft).error();
    auto ran = (*nft)->run("delete table inet " + undo["table"].get<std::string>());
    if (!ran && !tableMissing(ran.error())) return std::move(ran).error();
  }
  dropNftHere();  // the run is done with this namespace: close its socket (and let it go)
  return nlohmann::json::object();
}

Result<std::vector<std::string>> NftablesTableInjector::audit(const nlohmann::json& undo) {
  CHAOSD_TRY(checkTable(undo));
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::vector<std::string>{};
  Nft nft;
  const std::string table = undo["table"].get<std::string>();
  auto listed = nft.run("list table inet " + table);
  if (listed) return std::vector<std::string>{"nftables table inet " + table + " still exists"};
  if (tableMissing(listed.error())) return std::vector<std::string>{};
  return std::move(listed).error();
}

}  // namespace chaosd
