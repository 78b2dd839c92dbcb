// The network fault types and their arguments. The injectors that apply them (netem/tbf via
// libnl-route, nftables via libnftables) plug their factories in here.
#include <chrono>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/network/BackendSwitch.h"
#include "injectors/network/HostFilters.h"
#include "injectors/network/NfqueueDelay.h"
#include "injectors/network/NftablesInjector.h"
#include "injectors/network/QdiscInjector.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
constexpr double kNs = 1.0;  // durations are normalised to nanoseconds
constexpr double kMinute = 60e9 * kNs;

ArgSpec hostsArg(std::string help) {
  return arg::listOf("hosts", arg::make("host", ArgType::kHost, "a host name"), std::move(help));
}

ArgSpec endpoint(std::string name, std::string help) {
  return arg::object(
      std::move(name),
      {arg::listOf("cidr", arg::make("cidr", ArgType::kCidr, "an IPv4 or IPv6 CIDR"),
                   "addresses, IPv4 and IPv6 (10.0.0.2, 10.0.0.0/24, fd00::/64)"),
       hostsArg("host names, each resolved to all its IPv4 and IPv6 addresses when the fault "
                "is prepared (db.internal)"),
       arg::listOf("ports", arg::make("port", ArgType::kPortRange, "a port or a range"),
                   "ports or ranges (5432, 8000-8100)")},
      std::move(help));
}

ArgSpec refreshArg() {
  return arg::range(
      arg::make("refresh", ArgType::kDuration,
                "re-resolve the host names this often while the fault is held and update the "
                "filter to their addresses (nftables faults: partition, reset, delay and loss "
                "with backend nftables)"),
      1e8 * kNs, 60 * kMinute);
}

bool namesHosts(const nlohmann::json& args) {
  if (args.contains("hosts")) return true;
  for (const char* side : {"to", "from"}) {
    if (args.contains(side) && args[side].is_object() && args[side].contains("hosts")) return true;
  }
  return false;
}

// Where `refresh` works: the nftables faults update a set (or their table) in one transaction;
// the qdisc faults' u32 filters are not replaced while held.
enum class Refresh { kNftables, kNftablesBackend, kNever };

ArgConstraint refreshFits(std::string type, Refresh where) {
  return [type, where](const ArgContext& ctx) -> std::optional<ArgProblem> {
    const auto& a = ctx.args;
    if (!a.contains("refresh")) return std::nullopt;
    if (where == Refresh::kNever) {
      return ArgProblem{"refresh", type +
                                       " filters with tc u32 filters, which are not updated "
                                       "while the fault is held: refresh works on "
                                       "network.partition, network.reset, and network.delay/loss "
                                       "with backend: nftables"};
    }
    if (where == Refresh::kNftablesBackend &&
        a.value("backend", std::string("auto")) != "nftables") {
      return ArgProblem{"refresh",
                        "refresh needs backend: nftables (netem's u32 filters are not "
                        "updated while the fault is held)"};
    }
    if (!namesHosts(a)) {
      return ArgProblem{"refresh", "refresh re-resolves host names: give hosts too"};
    }
    return std::nullopt;
  };
}

std::vector<ArgSpec> filterArgs() {
  return {
      refreshArg(), endpoint("to", "match packets going to these addresses/ports (destination)"),
      endpoint("from", "match packets coming from these addresses/ports (source)"),
      arg::withDefault(
          arg::oneOf("protocol", {"all", "tcp", "udp", "icmp"}, "match only this protocol"), "all"),
      arg::withDefault(arg::oneOf("direction", {"egress", "ingress"},
                                  "egress: packets the interface sends; ingress: packets it "
                                  "receives (through an ifb device the fault owns)"),
                       "egress")};
}

std::vector<ArgSpec> netemArgs() {
  auto pct = [](std::string name, std::string help) {
    return arg::range(arg::make(std::move(name), ArgType::kPercent, std::move(help)), 0, 1);
  };
  return {
      arg::range(arg::make("delay", ArgType::kDuration, "added latency per packet"), 0,
                 10 * kMinute),
      arg::range(arg::make("jitter", ArgType::kDuration, "random variation of the delay (+/-)"), 0,
                 10 * kMinute),
      pct("correlation", "how much each delay depends on the previous one"),
      arg::oneOf("distribution", {"uniform", "normal", "pareto", "paretonormal"},
                 "shape of the jitter (default uniform)"),
      pct("loss", "share of packets dropped"),
      pct("lossCorrelation", "how much each loss depends on the previous one"),
      pct("duplicate", "share of packets sent twice"),
      pct("corrupt", "share of packets with a flipped bit"),
      pct("reorder", "share of packets sent at once, ahead of delayed ones (needs a delay)"),
      arg::range(arg::make("gap", ArgType::kInt, "reorder every Nth packet"), 1, 1e9),
      arg::range(arg::make("rate", ArgType::kRate, "netem's own rate limit"), 8, 1e13),
      arg::withDefault(
          arg::range(arg::make("limit", ArgType::kInt, "netem queue length, packets"), 1, 1e7),
          1000),
  };
}

std::optional<ArgProblem> netemConsistency(const ArgContext& ctx) {
  const auto& a = ctx.args;
  int64_t delay = a.value("delay", int64_t{0});
  int64_t jitter = a.value("jitter", int64_t{0});
  if (jitter > delay) return ArgProblem{"jitter", "jitter is larger than the delay"};
  if (a.contains("distribution") && jitter == 0) {
    return ArgProblem{"distribution", "a distribution shapes the jitter: set a jitter too"};
  }
  if (a.contains("reorder") && delay == 0) {
    return ArgProblem{"reorder", "reordering needs a delay (netem sends the other packets late)"};
  }
  if (a.contains("gap") && !a.contains("reorder")) {
    return ArgProblem{"gap", "gap applies to reordering: set reorder too"};
  }
  return std::nullopt;
}

// backend: nftables can only drop (loss) or hold packets in userspace (delay, jitter).
std::optional<ArgProblem> backendFits(const ArgContext& ctx) {
  const auto& a = ctx.args;
  if (a.value("backend", std::string("auto")) != "nftables") return std::nullopt;
  for (const char* k :
       {"duplicate", "corrupt", "reorder", "rate", "correlation", "lossCorrelation"}) {
    if (a.contains(k)) {
      return ArgProblem{
          k, std::string("the nftables backend cannot do '") + k + "' (use backend: netem)"};
    }
  }
  if (a.contains("loss") && a.contains("delay")) {
    return ArgProblem{"backend", "the nftables backend does delay or loss, not both in one fault"};
  }
  if (a.value("distribution", std::string()) == "paretonormal") {
    return ArgProblem{"distribution",
                      "the nftables backend draws uniform, normal or pareto jitter, not "
                      "paretonormal (use backend: netem)"};
  }
  return std::nullopt;
}

ArgSpec backendArg() {
  return arg::withDefault(
      arg::oneOf("backend", {"auto", "netem", "nftables"},
                 "netem qdisc, or nftables (loss: random drop; delay: NFQUEUE); auto picks netem "
                 "when the kernel has it"),
      "auto");
}

FaultType netemFault(std::string name, std::string summary, const std::string& primary,
                     bool withBackend) {
  FaultType t;
  t.name = std::move(name);
  t.summary = std::move(summary);
  t.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  t.schema.args = netemArgs();
  for (auto& a : t.schema.args) {
    if (a.name == primary) a.required = true;
  }
  for (auto& a : filterArgs()) t.schema.args.push_back(std::move(a));
  t.schema.constraints.push_back(netemConsistency);
  if (withBackend) {
    t.schema.args.push_back(backendArg());
    t.schema.constraints.push_back(backendFits);
  }
  t.schema.constraints.push_back(
      refreshFits(t.name, withBackend ? Refresh::kNftablesBackend : Refresh::kNever));
  return t;
}

FaultType bandwidthFault() {
  FaultType t;
  t.name = "network.bandwidth";
  t.summary = "limit throughput with a token bucket (tbf)";
  t.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  t.schema.args = {
      arg::required(arg::range(arg::make("rate", ArgType::kRate, "the rate limit"), 8, 1e13)),
      arg::range(arg::make("burst", ArgType::kSize, "bucket size (default: rate/250, >= 16KiB)"),
                 1500, 1ULL << 30),
      arg::range(arg::make("limit", ArgType::kSize, "bytes that may wait in the queue"), 1500,
                 1ULL << 30),
      arg::range(arg::make("latency", ArgType::kDuration,
                           "longest a packet may wait (instead of limit; default 50ms)"),
                 1e6, 10 * kMinute)};
  for (auto& a : filterArgs()) t.schema.args.push_back(std::move(a));
  t.schema.constraints.push_back(refreshFits(t.name, Refresh::kNever));
  t.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    if (ctx.args.contains("limit") && ctx.args.contains("latency")) {
      return ArgProblem{"latency", "give limit or latency, not both"};
    }
    return std::nullopt;
  });
  return t;
}

// The peers of a partition or a reset: addresses, host names, ports.
std::vector<ArgSpec> peerArgs(const std::string& what) {
  return {arg::listOf("cidr", arg::make("cidr", ArgType::kCidr, "an IPv4 or IPv6 CIDR"),
                      "the peers " + what + " (10.0.0.2, 10.0.0.0/24, fd00::/64)"),
          hostsArg("the peers " + what +
                   " by name, each resolved to all its IPv4 and IPv6 addresses when the fault "
                   "is prepared"),
          arg::listOf("ports", arg::make("port", ArgType::kPortRange, "a port or a range"),
                      "only these peer ports"),
          refreshArg()};
}

// A partition or a reset names its peers, and port 22 only when the guardrails allow it.
ArgConstraint peersNamed(const std::string& what, const std::string& verb) {
  return [what, verb](const ArgContext& ctx) -> std::optional<ArgProblem> {
    if (!ctx.args.contains("cidr") && !ctx.args.contains("hosts") && !ctx.args.contains("ports")) {
      return ArgProblem{"", what +
                                " needs cidr, hosts or ports (for everything, give cidr "
                                "0.0.0.0/0 and ::/0)"};
    }
    if (!ctx.allowSsh && ctx.args.contains("ports")) {
      const auto& ports = ctx.args["ports"];
      for (size_t i = 0; i < ports.size(); ++i) {
        const auto& r = ports[i];
        if (r.value("first", 0) <= 22 && r.value("last", 0) >= 22) {
          return ArgProblem{"ports[" + std::to_string(i) + "]",
                            "port 22 (SSH) is protected: set guardrails.allowSsh: true "
                            "to " +
                                verb + " it"};
        }
      }
    }
    return std::nullopt;
  };
}

FaultType partitionFault() {
  FaultType t;
  t.name = "network.partition";
  t.summary = "drop (or reject) traffic to and/or from addresses and ports (nftables)";
  t.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  t.schema.args = peerArgs("cut off");
  t.schema.args.push_back(arg::withDefault(
      arg::oneOf("protocol", {"all", "tcp", "udp", "icmp"}, "only this protocol"), "all"));
  t.schema.args.push_back(
      arg::withDefault(arg::oneOf("direction", {"to", "from", "both"},
                                  "to: our packets to the peers; from: theirs to us"),
                       "both"));
  t.schema.args.push_back(
      arg::withDefault(arg::make("reject", ArgType::kBool,
                                 "answer with a TCP reset / ICMP unreachable instead of a silent "
                                 "drop"),
                       false));
  t.schema.constraints.push_back(peersNamed("a partition", "partition"));
  t.schema.constraints.push_back(refreshFits(t.name, Refresh::kNftables));
  return t;
}

FaultType resetFault() {
  FaultType t;
  t.name = "network.reset";
  t.summary = "reset TCP connections to and/or from peers, new and established (nftables)";
  t.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  t.schema.args = peerArgs("whose connections are reset");
  t.schema.args.push_back(arg::withDefault(
      arg::oneOf("direction", {"to", "from", "both"},
                 "to: our segments to the peers are answered with a reset (our side sees "
                 "it); from: theirs to us (their side sees it); both"),
      "both"));
  t.schema.constraints.push_back(peersNamed("a reset", "reset"));
  t.schema.constraints.push_back(refreshFits(t.name, Refresh::kNftables));
  return t;
}

}  // namespace

void registerNetworkFaults(FaultRegistry& registry) {
  // Every network fault filters by peers, and a peer may be a host name.
  auto add = [&](FaultType t) {
    t.resolveArgs = hostFilterResolver();
    t.refreshArgs = hostFilterRefresher();
    (void)registry.add(std::move(t));
  };
  // delay and loss: netem where the kernel has it, else nftables (NFQUEUE for delay, a
  // random drop for loss); the fault's `backend` arg can insist on one.
  // The qdisc injectors of this registry share one context (tree lock, users' roots).
  // The kernel's traffic control through libnl (TcKernel.h), which the backend switch also asks
  // whether netem is here.
  auto qdiscContext = std::make_shared<QdiscContext>();
  std::shared_ptr<TcKernel> tc = netlinkTcKernel();
  const InjectorFactory netem = [qdiscContext, tc] {
    return std::make_unique<QdiscInjector>(qdiscContext, tc);
  };
  auto netemHere = [tc] { return tc->hasNetem(); };
  // What the nftables and NFQUEUE injectors of this registry share: libnftables sessions per
  // namespace, and the NFQUEUE consumers from apply to revert.
  auto nftSessions = std::make_shared<NftSessionPool>();
  auto nfqueue = std::make_shared<NfqueueDelayContext>();
  FaultType delay =
      netemFault("network.delay", "add latency (and jitter) to packets", "delay", true);
  delay.factory = [netem, netemHere, nfqueue] {
    return std::make_unique<BackendSwitch>(std::vector<BackendSwitch::Backend>{
        {"netem", netem, netemHere},
        {"nftables", [nfqueue] { return std::make_unique<NfqueueDelayInjector>(nfqueue); }, {}}});
  };
  add(std::move(delay));
  FaultType loss = netemFault("network.loss", "drop a share of packets", "loss", true);
  loss.factory = [netem, netemHere, nftSessions] {
    return std::make_unique<BackendSwitch>(std::vector<BackendSwitch::Backend>{
        {"netem", netem, netemHere},
        {"nftables",
         [nftSessions] { return std::make_unique<NftablesInjector>(nftSessions); },
         {}}});
  };
  add(std::move(loss));
  // The netem-only types and tbf: QdiscInjector (libnl-route, a classful tree of ours).
  auto qdisc = [&](FaultType t) {
    t.factory = netem;
    add(std::move(t));
  };
  qdisc(netemFault("network.duplicate", "send a share of packets twice", "duplicate", false));
  qdisc(netemFault("network.corrupt", "flip a bit in a share of packets", "corrupt", false));
  qdisc(netemFault("network.reorder", "send a share of packets out of order", "reorder", false));
  qdisc(netemFault("network.rate", "limit the rate with netem", "rate", false));
  qdisc(bandwidthFault());
  FaultType partition = partitionFault();
  partition.factory = [nftSessions] { return std::make_unique<NftablesInjector>(nftSessions); };
  add(std::move(partition));
  FaultType reset = resetFault();
  reset.factory = [nftSessions] { return std::make_unique<NftablesInjector>(nftSessions); };
  add(std::move(reset));
  FaultType table;
  table.name = std::string(kNftablesTableFaultType);
  table.summary = "the run's nftables table, which partition and loss rules hang from";
  table.internal = true;
  table.factory = [nftSessions] { return std::make_unique<NftablesTableInjector>(nftSessions); };
  (void)registry.add(std::move(table));
}

}  // namespace chaosd
