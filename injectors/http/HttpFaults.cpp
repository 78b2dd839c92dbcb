// The HTTP fault type (http.fault) and its arguments.
#include <string>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/http/HttpFaultInjector.h"
#include "injectors/http/HttpRecords.h"
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

// Everything fromJson checks beyond the schema (port 22, a rule without an action, regexes),
// named by field before anything is applied.
std::optional<ArgProblem> httpConsistency(const ArgContext& ctx) {
  auto args = HttpFaultArgs::fromJson(ctx.args);
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
  t.targetKinds = {TargetKind::kInterface, TargetKind::kProcess, TargetKind::kExec};
  t.schema.args = {
      arg::required(arg::listOf(
          "ports", arg::range(arg::make("port", ArgType::kInt, "a TCP port"), 1, 65535),
          "the dependency's TCP ports: new connections to them are redirected (never 22)")),
      arg::listOf("to", arg::make("cidr", ArgType::kCidr, "a destination"),
                  "only connections to these addresses (default any)"),
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
  t.factory = [context, nft, proxies] {
    return std::make_unique<HttpFaultInjector>(context, nft, proxies);
  };
  (void)registry.add(std::move(t));
}

}  // namespace chaosd
