// The HTTP fault type (http.fault) and its arguments.
#include <string>

#include "chaosd/base/HostNames.h"
#include "chaosd/base/Units.h"
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/http/HttpFaultInjector.h"
#include "injectors/http/HttpRecords.h"
#include "injectors/network/HostFilters.h"
#include "injectors/network/NftSession.h"

namespace chaosd {
namespace {

constexpr double kMinute = 60e9;  // durations are normalised to nanoseconds

ArgSpec percent() {
  return arg::withDefault(
      arg::make("percent", ArgType::kPercent, "of the rule's matching requests (default 100%)"),
      1.0);
}

ArgSpec ruleSpec() {
  using arg::make;
  return arg::object(
      "rule",
      {make("method", ArgType::kString, "only requests with this method (GET, POST, ...)"),
       make("path", ArgType::kString, "only request targets starting with this (/api/)"),
       make("pathRegex", ArgType::kString, "only request targets this regex is found in"),
       make("headers", ArgType::kStringMap,
            "only requests with each of these headers (name in any case, exact value)"),
       arg::object(
           "delay",
           {arg::required(arg::range(
                make("delay", ArgType::kDuration, "held before it is forwarded"), 0, 10 * kMinute)),
            arg::withDefault(
                arg::range(make("jitter", ArgType::kDuration, "plus or minus, uniform"), 0,
                           10 * kMinute),
                0),
            percent()},
           "delay the request before forwarding it"),
       arg::object("responseDelay",
                   {arg::required(arg::range(make("delay", ArgType::kDuration,
                                                  "the dependency's response head held this long"),
                                             0, 10 * kMinute)),
                    arg::withDefault(
                        arg::range(make("jitter", ArgType::kDuration, "plus or minus, uniform"), 0,
                                   10 * kMinute),
                        0),
                    percent()},
                   "hold the dependency's response before returning it (forwarded requests only)"),
       arg::object("abort",
                   {arg::required(arg::range(
                        make("status", ArgType::kInt, "the status answered (503)"), 100, 599)),
                    make("body", ArgType::kString, "the response body (default empty)"),
                    make("headers", ArgType::kStringMap, "headers of the response"), percent()},
                   "answer with a status instead of the dependency"),
       arg::object("reset", {percent()}, "reset the client's connection"),
       arg::object(
           "truncate",
           {arg::withDefault(
                make("bytes", ArgType::kSize, "body bytes the client still gets (default 0)"), 0),
            percent()},
           "cut the response body, then close the connection")},
      "a match (every field given must hold) and its actions");
}

// `to` split into its CIDRs (canonical) and its host names.
struct Destinations {
  nlohmann::json cidrs = nlohmann::json::array();
  std::vector<std::pair<size_t, std::string>> names;  // index in `to`, name
};
Destinations splitTo(const nlohmann::json& args) {
  Destinations d;
  if (!args.is_object() || !args.contains("to") || !args["to"].is_array()) return d;
  for (size_t i = 0; i < args["to"].size(); ++i) {
    const auto& e = args["to"][i];
    const std::string text = e.is_string() ? e.get<std::string>() : e.dump();
    if (auto c = units::parseCidr(text)) {
      d.cidrs.push_back(c->str());
    } else {
      d.names.emplace_back(i, text);
    }
  }
  return d;
}

// The host names in `to` resolved (HostFilters.h): their addresses join `to`, or with
// `refresh` go apart into `hostAddresses` (the table's sets). lastHosts: a refresh.
Result<RefreshedArgs> resolveTo(const nlohmann::json& args, const nlohmann::json* lastHosts,
                                const HostResolver& resolve) {
  RefreshedArgs out;
  out.resolved = {args, nullptr};
  Destinations d = splitTo(args);
  if (d.names.empty()) return out;
  nlohmann::json inner = {{"cidr", d.cidrs}, {"hosts", nlohmann::json::array()}};
  for (const auto& [i, name] : d.names) inner["hosts"].push_back(name);
  if (args.contains("refresh")) inner["refresh"] = args["refresh"];
  ResolvedArgs r;
  if (lastHosts != nullptr) {
    auto refreshed = refreshHostFilters(inner, *lastHosts, resolve);
    if (!refreshed) return std::move(refreshed).error();
    out.kept = std::move(refreshed->kept);
    r = std::move(refreshed->resolved);
  } else {
    auto resolved = resolveHostFilters(inner, resolve);
    if (!resolved) {
      return Error(resolved.error().code(), "to: " + resolved.error().message());
    }
    r = std::move(*resolved);
  }
  out.resolved.args["to"] = r.args.value("cidr", nlohmann::json::array());
  if (r.args.contains("hostAddresses"))
    out.resolved.args["hostAddresses"] = r.args["hostAddresses"];
  out.resolved.observed = std::move(r.observed);
  return out;
}

// Everything fromJson checks beyond the schema (port 22, a rule without an action, regexes),
// named by field before anything is applied.
std::optional<ArgProblem> httpConsistency(const ArgContext& ctx) {
  // Host names are resolved later (resolveTo): here only their syntax.
  const Destinations d = splitTo(ctx.args);
  for (const auto& [i, name] : d.names) {
    if (name.find_first_of("/:") != std::string::npos) {  // meant as a CIDR: say what is wrong
      return ArgProblem{"to[" + std::to_string(i) + "]", units::parseCidr(name).error().message()};
    }
    if (auto ok = checkHostName(name); !ok) {
      return ArgProblem{"to[" + std::to_string(i) + "]",
                        "neither a CIDR nor a host name: " + ok.error().message()};
    }
  }
  if (ctx.args.contains("refresh") && d.names.empty()) {
    return ArgProblem{"refresh", "refresh re-resolves host names: give a host name in to"};
  }
  nlohmann::json checked = ctx.args;
  if (checked.contains("to")) checked["to"] = d.cidrs;
  auto args = HttpFaultArgs::fromJson(checked);
  if (!args) {
    const std::string& m = args.error().message();
    const auto colon = m.find(':');
    return ArgProblem{colon == std::string::npos ? "" : m.substr(0, colon),
                      colon == std::string::npos ? m : m.substr(colon + 2)};
  }
  auto policy = http::Policy::create(args->rules);
  if (!policy) {
    const std::string& m = policy.error().message();
    return ArgProblem{"rules", m};
  }
  return std::nullopt;
}

FaultType httpFault() {
  FaultType t;
  t.name = "http.fault";
  t.summary =
      "abort, delay, reset or truncate HTTP/1.1 requests to a dependency (a proxy of the fault's "
      "own and an nftables redirect in the target's network namespace; TLS and other bytes pass)";
  t.targetKinds = {TargetKind::kInterface, TargetKind::kProcess, TargetKind::kExec,
                   TargetKind::kContainer};
  t.schema.args = {
      arg::required(arg::listOf(
          "ports", arg::range(arg::make("port", ArgType::kInt, "a TCP port"), 1, 65535),
          "the dependency's TCP ports: new connections to them are redirected (never 22)")),
      arg::listOf("to",
                  arg::make("destination", ArgType::kString,
                            "a CIDR (10.0.0.2, 10.0.0.0/24, fd00::/64) or a host name, resolved "
                            "to all its addresses when the fault is prepared"),
                  "only connections to these addresses (default any)"),
      arg::range(arg::make("refresh", ArgType::kDuration,
                           "re-resolve the host names in `to` this often while the fault is "
                           "held and redirect to their new addresses"),
                 1e8, 60 * kMinute),
      arg::required(arg::listOf("rules", ruleSpec(), "the first rule a request matches acts")),
      arg::withDefault(
          arg::range(arg::make("maxConnections", ArgType::kInt,
                               "client connections the proxy holds at once; more are reset"),
                     1, 100000),
          1024),
      arg::withDefault(
          arg::make("resetExisting", ArgType::kBool,
                    "destroy the connections to the dependency open before the fault (so pooled "
                    "clients reconnect through the proxy)"),
          false),
      arg::withDefault(arg::range(arg::make("headerTimeout", ArgType::kDuration,
                                            "a request head not complete in this is reset"),
                                  1e6, 10 * kMinute),
                       10e9)};
  t.schema.constraints.push_back(httpConsistency);
  return t;
}

}  // namespace

void registerHttpFaults(FaultRegistry& registry) {
  // The proxies of this registry's faults live in one context, from apply to revert, and the
  // nftables sessions in one pool.
  auto context = std::make_shared<HttpContext>();
  auto nft = std::make_shared<LibnftablesKernel>(std::make_shared<NftSessionPool>());
  auto proxies = std::make_shared<http::ThreadedHttpKernel>();
  FaultType t = httpFault();
  t.resolveArgs = [](const nlohmann::json& args) -> Result<ResolvedArgs> {
    auto r = resolveTo(args, nullptr, resolveHostName);
    if (!r) return std::move(r).error();
    return std::move(r->resolved);
  };
  t.refreshArgs = [](const nlohmann::json& args, const nlohmann::json& lastHosts) {
    return resolveTo(args, &lastHosts, resolveHostName);
  };
  t.factory = [context, nft, proxies] {
    return std::make_unique<HttpFaultInjector>(context, nft, proxies);
  };
  (void)registry.add(std::move(t));
}

}  // namespace chaosd
