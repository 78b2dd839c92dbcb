#include "injectors/http/HttpPolicy.h"

#include <strings.h>

#include <algorithm>

namespace chaosd::http {
namespace {

bool sameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Paths longer than this never match a regex rule: the regex engine's cost grows with the text,
// and the text is the client's.
constexpr size_t kMaxRegexTarget = 8192;

}  // namespace

nlohmann::json RuleStats::toJson() const {
  return {{"seen", seen},
          {"matched", matched},
          {"delayed", delayed},
          {"aborted", aborted},
          {"reset", reset},
          {"truncated", truncated},
          {"responseDelayed", responseDelayed}};
}

Policy::Policy(std::vector<Rule> rules, std::vector<std::optional<SearchRegex>> regexes)
    : rules_(std::move(rules)),
      regexes_(std::move(regexes)),
      counters_(std::make_unique<Counters[]>(rules_.size())) {}

Result<std::shared_ptr<Policy>> Policy::create(std::vector<Rule> rules) {
  std::vector<std::optional<SearchRegex>> regexes;
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].pathRegex.empty()) {
      regexes.emplace_back();
      continue;
    }
    auto re =
        SearchRegex::compile(rules[i].pathRegex, "rules[" + std::to_string(i) + "].pathRegex");
    if (!re) return std::move(re).error();
    regexes.emplace_back(std::move(*re));
  }
  return std::shared_ptr<Policy>(new Policy(std::move(rules), std::move(regexes)));
}

bool Policy::matches(size_t i, const RequestHead& head) const {
  const Rule& r = rules_[i];
  if (!r.method.empty() && r.method != head.method) return false;
  if (!r.pathPrefix.empty() && !head.target.starts_with(r.pathPrefix)) return false;
  if (regexes_[i]) {
    if (head.target.size() > kMaxRegexTarget || !regexes_[i]->search(head.target)) return false;
  }
  for (const auto& want : r.headers) {
    const bool found = std::any_of(head.headers.begin(), head.headers.end(), [&](const auto& h) {
      return sameName(h.first, want.first) && h.second == want.second;
    });
    if (!found) return false;
  }
  return true;
}

Decision Policy::decide(const RequestHead& head, const Draw& draw) {
  Decision d;
  for (size_t i = 0; i < rules_.size(); ++i) {
    Counters& c = counters_[i];
    c.seen.fetch_add(1, std::memory_order_relaxed);
    if (!matches(i, head)) continue;
    c.matched.fetch_add(1, std::memory_order_relaxed);
    const Rule& r = rules_[i];
    d.ruleIndex = static_cast<int>(i);
    auto drawDelay = [&](const DelayAction& a) {
      int64_t ns = a.delayNs;
      if (a.jitterNs > 0) {
        ns += static_cast<int64_t>((draw() * 2 - 1) * static_cast<double>(a.jitterNs));
      }
      return std::chrono::nanoseconds(std::max<int64_t>(ns, 0));
    };
    if (r.delay && draw() < r.delay->percent) {
      d.delay = drawDelay(*r.delay);
      c.delayed.fetch_add(1, std::memory_order_relaxed);
    }
    if (r.reset && draw() < r.reset->percent) {
      d.reset = true;
      c.reset.fetch_add(1, std::memory_order_relaxed);
    } else if (r.abort && draw() < r.abort->percent) {
      d.abort = &*r.abort;
      c.aborted.fetch_add(1, std::memory_order_relaxed);
    } else if (r.truncate && draw() < r.truncate->percent) {
      d.truncateAt = r.truncate->bytes;
    }
    if (!d.reset && d.abort == nullptr && r.responseDelay && draw() < r.responseDelay->percent) {
      d.responseDelay = drawDelay(*r.responseDelay);
      c.responseDelayed.fetch_add(1, std::memory_order_relaxed);
    }
    return d;
  }
  return d;
}

void Policy::countTruncated(int ruleIndex) {
  if (ruleIndex < 0 || static_cast<size_t>(ruleIndex) >= rules_.size()) return;
  counters_[static_cast<size_t>(ruleIndex)].truncated.fetch_add(1, std::memory_order_relaxed);
}

std::vector<RuleStats> Policy::stats() const {
  std::vector<RuleStats> out(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Counters& c = counters_[i];
    out[i] = {c.seen.load(),  c.matched.load(),   c.delayed.load(),        c.aborted.load(),
              c.reset.load(), c.truncated.load(), c.responseDelayed.load()};
  }
  return out;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

std::string abortResponse(const AbortAction& abort, bool head, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(abort.status) + " ";
  out += reasonPhrase(abort.status);
  out += "\r\ncontent-length: " + std::to_string(abort.body.size()) + "\r\n";
  bool typed = false;
  for (const auto& [name, value] : abort.headers) {
    if (sameName(name, "content-length")) continue;  // ours is the body's true length
    typed = typed || sameName(name, "content-type");
    out += name + ": " + value + "\r\n";
  }
  if (!typed && !abort.body.empty()) out += "content-type: text/plain\r\n";
  if (close) out += "connection: close\r\n";
  out += "x-chaosd-fault: abort\r\n\r\n";
  if (!head) out += abort.body;
  return out;
}

}  // namespace chaosd::http
