// `load:` the open-loop generator's request, arrival rate (or steps) and tolerance.
#include <charconv>
#include <cmath>

#include "chaosd/base/Quote.h"
#include "experiments/parser/Sections.h"

namespace chaosd::parser {
namespace {

constexpr double kMaxRate = 1e6;

// Requests per second: "50", "12.5", or with "/s": "50/s".
std::optional<double> asArrivalRate(ReadContext& ctx, const Field& f) {
  auto text = asString(ctx, f);
  if (!text) return std::nullopt;
  std::string s = *text;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "/s") == 0) s.resize(s.size() - 2);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(v) || v <= 0 ||
      v > kMaxRate) {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(*text) + " is not an arrival rate",
                   "requests per second above 0 and at most 1000000, like 50 or 50/s");
    return std::nullopt;
  }
  return v;
}

}  // namespace

void parseLoad(ReadContext& ctx, const Field& f, Experiment& exp) {
  MapReader m(ctx, f, {"name", "http", "rate", "steps", "timeout", "maxInFlight", "tolerance"});
  if (!m.valid()) return;
  LoadSpec load;
  load.pos = posOf(f.node.Mark());
  if (auto nameField = m.get("name")) {
    if (auto name = asNonEmptyString(ctx, *nameField);
        name && checkName(ctx, *nameField, *name, "load")) {
      load.name = *name;
    }
  }
  if (auto http = m.require("http", "http: {url, method, headers, body}")) {
    MapReader h(ctx, *http, {"url", "method", "headers", "body", "tlsVerify"});
    if (h.valid()) parseHttpRequest(ctx, h, load.http);
  }
  const bool hasRate = m.has("rate");
  const bool hasSteps = m.has("steps");
  if (hasRate == hasSteps) {
    ctx.diag.error(f.node.Mark(), f.path,
                   hasRate ? "rate and steps are both given" : "no arrival rate",
                   "rate: requests per second, or steps: [{rate, duration}, ...]");
  }
  if (auto r = m.get("rate")) load.rate = asArrivalRate(ctx, *r).value_or(0);
  if (auto steps = m.get("steps")) {
    if (auto items = asSequence(ctx, *steps)) {
      if (items->empty()) {
        ctx.diag.error(steps->node.Mark(), steps->path, "no steps",
                       "at least one {rate, duration}");
      }
      for (const auto& item : *items) {
        MapReader s(ctx, item, {"rate", "duration"});
        if (!s.valid()) continue;
        LoadStep step;
        if (auto r = s.require("rate", "requests per second")) {
          step.rate = asArrivalRate(ctx, *r).value_or(0);
        }
        if (auto d = s.duration("duration", true)) step.duration = *d;
        load.steps.push_back(step);
      }
    }
  }
  if (auto t = m.duration("timeout")) {
    if (*t > std::chrono::minutes(10)) {
      ctx.diag.error(m.get("timeout")->node.Mark(), joinPath(f.path, "timeout"),
                     "a request timeout above 10m", "at most 10m");
    }
    load.timeout = *t;
  }
  if (auto mif = m.get("maxInFlight")) {
    if (auto v = asInt(ctx, *mif, 1, 100000)) load.maxInFlight = static_cast<uint32_t>(*v);
  }
  if (auto tol = m.get("tolerance")) parseLoadTolerance(ctx, *tol, load.tolerance);
  exp.load = std::move(load);
}

}  // namespace chaosd::parser
