#include "injectors/network/NftablesInjector.h"

#include <nftables/libnftables.h>

#include <cmath>
#include <memory>

#include "chaosd/system/Netns.h"
#include "experiments/model/Experiment.h"

namespace chaosd {
namespace {

// A libnftables context whose output and errors are captured, not printed.
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
  Result<std::string> run(const std::string& commands) {
    if (ctx_ == nullptr) return Error(ErrorCode::kInternal, "nft_ctx_new failed");
    const int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
    const std::string out = nft_ctx_get_output_buffer(ctx_);
    std::string err = nft_ctx_get_error_buffer(ctx_);
    if (rc != 0) {
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      return Error(ErrorCode::kKernel, "nftables: " + (err.empty() ? "failed" : err));
    }
    return out;
  }

 private:
  nft_ctx* ctx_;
};

std::string tableName(const std::string& faultId) {
  std::string out = "chaosd_";
  for (char c : faultId) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

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

Result<std::string> nftablesScript(const std::string& faultType, const std::string& table,
                                   const std::string& iface, const nlohmann::json& args) {
  std::vector<std::string> out;  // rules of the output chain
  std::vector<std::string> in;   // rules of the input chain
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
  std::string s = "table inet " + table + " {\n";
  s += "  chain out {\n    type filter hook output priority -300; policy accept;\n";
  for (const auto& r : out) s += "    " + r + "\n";
  s += "  }\n  chain in {\n    type filter hook input priority -300; policy accept;\n";
  for (const auto& r : in) s += "    " + r + "\n";
  s += "  }\n}\n";
  return s;
}

Result<PreparedFault> NftablesInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  if (request.faultType == "network.loss") {
    // Until the netem injector lands, loss is nftables' random drop, whatever `auto` says.
    const std::string backend = request.args.value("backend", std::string("auto"));
    if (backend == "netem") {
      return Error(ErrorCode::kUnsupported,
                   "the netem backend is not implemented in this build (use backend: nftables)");
    }
    for (const char* k : {"delay", "jitter", "duplicate", "corrupt", "reorder", "rate",
                          "correlation", "lossCorrelation", "gap"}) {
      if (request.args.contains(k)) {
        return Error(
            ErrorCode::kUnsupported,
            std::string("'") + k + "' needs the netem backend, not implemented in this build");
      }
    }
  }
  const std::string table = tableName(request.faultId);
  auto script = nftablesScript(request.faultType, table, target->interface.name, request.args);
  if (!script) return std::move(script).error();
  std::string netnsPath;
  const NetnsRef& ns = target->interface.netns;
  if (!ns.name.empty()) {
    netnsPath = "/run/netns/" + ns.name;
  } else if (!ns.path.empty()) {
    netnsPath = ns.path;
  } else if (ns.pid) {
    netnsPath = "/proc/" + std::to_string(*ns.pid) + "/ns/net";
  }
  PreparedFault out;
  out.undo = {{"faultId", request.faultId},
              {"table", table},
              {"family", "inet"},
              {"netns", netnsPath},
              {"iface", target->interface.name},
              {"script", *script}};
  out.description = std::string(request.faultType == "network.partition" ? "partition" : "loss") +
                    " on " + target->interface.name + " in " + ns.describe() +
                    " (nftables table inet " + table + ")";
  out.resources = {"nft:" + netnsPath + ":" + table};
  return out;
}

namespace {

Result<NetnsGuard> enterNetnsOf(const nlohmann::json& undo) {
  NetnsRef ref;
  ref.path = undo.value("netns", std::string());
  return NetnsGuard::enter(ref);
}

Result<void> checkUndo(const nlohmann::json& undo, const std::string& faultId) {
  if (!undo.is_object() || !undo.contains("table") || !undo.contains("script")) {
    return Error(ErrorCode::kInvalid, "not an nftables undo record: " + undo.dump());
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

bool tableMissing(const Error& e) {
  return e.message().find("No such file or directory") != std::string::npos;
}

}  // namespace

Result<AppliedFault> NftablesInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::move(guard).error();
  Nft nft;
  auto ran = nft.run(undo["script"].get<std::string>());
  if (!ran) return std::move(ran).error();
  return AppliedFault{"nftables", {{"table", "inet " + undo["table"].get<std::string>()}}};
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
  Nft nft;
  auto ran = nft.run("delete table inet " + undo["table"].get<std::string>());
  if (!ran && !tableMissing(ran.error())) return std::move(ran).error();
  return nlohmann::json::object();
}

Result<std::vector<std::string>> NftablesInjector::audit(const nlohmann::json& undo) {
  CHAOSD_TRY(checkUndo(undo, ""));
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
