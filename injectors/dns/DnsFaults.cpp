// The DNS fault type (dns.error) and its arguments.
#include <string>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/dns/DnsErrorInjector.h"
#include "injectors/dns/DnsMatch.h"

namespace chaosd {
namespace {

constexpr double kMinute = 60e9;  // durations are normalised to nanoseconds

// Names and types that do not compile, and delay without action delay (or the reverse), named
// by field before anything is applied.
std::optional<ArgProblem> dnsConsistency(const ArgContext& ctx) {
  const auto& a = ctx.args;
  if (a.contains("names")) {
    for (size_t i = 0; i < a["names"].size(); ++i) {
      if (dns::normalizeName(a["names"][i].get<std::string>()).empty()) {
        return ArgProblem{"names[" + std::to_string(i) + "]", "an empty name matches nothing"};
      }
    }
  }
  if (a.contains("types")) {
    for (size_t i = 0; i < a["types"].size(); ++i) {
      auto t = dns::queryTypeNumber(a["types"][i].get<std::string>());
      if (!t) return ArgProblem{"types[" + std::to_string(i) + "]", t.error().message()};
    }
  }
  const std::string action = a.value("action", std::string());
  if (action == "delay" && !a.contains("delay")) {
    return ArgProblem{"delay", "action delay needs a delay (250ms, 2s)"};
  }
  if (action != "delay" && a.contains("delay")) {
    return ArgProblem{"delay", "a delay applies to action delay only"};
  }
  return std::nullopt;
}

FaultType dnsErrorFault() {
  FaultType t;
  t.name = "dns.error";
  t.summary =
      "answer DNS queries for matching names with NXDOMAIN, SERVFAIL or REFUSED, drop them or "
      "delay them (NFQUEUE interception in the interface's namespace)";
  t.targetKinds = {TargetKind::kInterface, TargetKind::kContainer};
  t.schema.args = {
      arg::required(
          arg::listOf("names", arg::make("name", ArgType::kString, "a name or glob"),
                      "the query names acted on: globs, case-insensitive, trailing dot optional "
                      "(*.db.internal, api.example.com)")),
      arg::listOf("types", arg::make("type", ArgType::kString, "a query type"),
                  "only queries of these types (A, AAAA, SRV, ...); default every type"),
      arg::required(arg::oneOf("action", {"nxdomain", "servfail", "refused", "drop", "delay"},
                               "the answer: an error rcode from the resolver's address, drop "
                               "(the client times out), or delay")),
      arg::range(arg::make("delay", ArgType::kDuration, "how long action delay holds a query"), 1e6,
                 10 * kMinute),
      arg::withDefault(
          arg::range(arg::make("port", ArgType::kInt, "the resolvers' port"), 1, 65535), 53),
      arg::withDefault(arg::oneOf("protocol", {"both", "udp", "tcp"},
                                  "which DNS transport is intercepted (an error answer over "
                                  "TCP is a drop: docs/faults/dns.md)"),
                       "both"),
      arg::withDefault(
          arg::range(arg::make("limit", ArgType::kInt, "queries held at once (delay)"), 1, 1e6),
          1000)};
  t.schema.constraints.push_back(dnsConsistency);
  return t;
}

}  // namespace

void registerDnsFaults(FaultRegistry& registry) {
  // The interceptors of this registry's faults live in one context, from apply to revert.
  auto context = std::make_shared<DnsContext>();
  FaultType t = dnsErrorFault();
  t.factory = [context] { return std::make_unique<DnsErrorInjector>(context); };
  (void)registry.add(std::move(t));
}

}  // namespace chaosd
