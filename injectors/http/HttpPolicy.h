#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/base/SearchRegex.h"

// What http.fault does to one request: its rules as the experiment gives them (matched against
// the request's head), the decision for one request, and the counts per rule. Pure: no sockets,
// the random draw passed in, so the unit tier tests every branch. docs/faults/http.md.
namespace chaosd::http {

struct AbortAction {
  int status = 503;
  std::string body;
  std::map<std::string, std::string> headers;
  double percent = 1.0;  // of the rule's matching requests, 0..1
};
struct DelayAction {
  int64_t delayNs = 0;
  int64_t jitterNs = 0;  // uniform in [-jitter, +jitter], never below 0 in total
  double percent = 1.0;
};
struct ResetAction {
  double percent = 1.0;
};
struct TruncateAction {
  int64_t bytes = 0;  // body bytes (decoded) the client still gets
  double percent = 1.0;
};

// One rule: a match (every field given must hold) and what happens to matching requests. Each
// action draws its own percentage, as Envoy's fault filter does: a request may be delayed and
// then aborted. Order: delay, then reset, abort or truncate (the first one drawn), then, for a
// request that is forwarded (neither reset nor aborted), responseDelay.
struct Rule {
  std::string method;                          // "" any; case-sensitive as HTTP methods are
  std::string pathPrefix;                      // "" any; compared with the request target as sent
  std::string pathRegex;                       // "" any; a search (anchor with ^)
  std::map<std::string, std::string> headers;  // name (any case) -> exact value
  std::optional<DelayAction> delay;            // before the request is forwarded
  std::optional<DelayAction> responseDelay;    // the dependency's response head held this long
  std::optional<ResetAction> reset;
  std::optional<AbortAction> abort;
  std::optional<TruncateAction> truncate;
};

// The head of one request as the proxy parsed it.
struct RequestHead {
  std::string method;
  std::string target;  // the request target: "/api/v1?x=1"
  std::vector<std::pair<std::string, std::string>> headers;
};

// What to do with one request. ruleIndex < 0: no rule matched (forward untouched).
struct Decision {
  int ruleIndex = -1;
  std::chrono::nanoseconds delay{0};
  std::chrono::nanoseconds responseDelay{0};
  bool reset = false;
  const AbortAction* abort = nullptr;
  std::optional<int64_t> truncateAt;
};

// Counts of one rule. `seen`: requests the rule was tried on (those no earlier rule matched).
struct RuleStats {
  uint64_t seen = 0, matched = 0, delayed = 0, aborted = 0, reset = 0, truncated = 0,
           responseDelayed = 0;
  nlohmann::json toJson() const;
};

// A uniform draw in [0, 1).
using Draw = std::function<double()>;

// The rules compiled once. Thread-safe: decide() only reads the rules and bumps atomics.
class Policy {
 public:
  // kInvalid naming rules[i].pathRegex when a regex does not compile.
  static Result<std::shared_ptr<Policy>> create(std::vector<Rule> rules);

  // The first rule whose match holds decides; its actions are drawn with `draw`.
  Decision decide(const RequestHead& head, const Draw& draw);
  // Counts the truncation the connection actually made (the body was long enough).
  void countTruncated(int ruleIndex);
  std::vector<RuleStats> stats() const;
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  struct Counters {
    std::atomic<uint64_t> seen{0}, matched{0}, delayed{0}, aborted{0}, reset{0}, truncated{0},
        responseDelayed{0};
  };
  Policy(std::vector<Rule> rules, std::vector<std::optional<SearchRegex>> regexes);
  bool matches(size_t i, const RequestHead& head) const;

  std::vector<Rule> rules_;
  std::vector<std::optional<SearchRegex>> regexes_;
  std::unique_ptr<Counters[]> counters_;
};

// "Service Unavailable" for 503; "" for a code HTTP names nothing.
std::string_view reasonPhrase(int status);

// The whole response an abort sends: status line, content-length, its headers, the body
// (omitted for HEAD), and `connection: close` when the connection ends after it.
std::string abortResponse(const AbortAction& abort, bool head, bool close);

}  // namespace chaosd::http
