// `load:` the open-loop generator's request, arrival rate (or steps) and tolerance.
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chaosd/base/Quote.h"
#include "chaosd/base/Units.h"
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

std::string rateText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// `capacity: {from, step, max, every, cooldown}`: the ramp stops where the load's tolerance
// breaks, so the load must have one that can break.
void parseCapacity(ReadContext& ctx, const Field& f, LoadSpec& load) {
  MapReader m(ctx, f, {"from", "step", "max", "every", "cooldown"});
  if (!m.valid()) return;
  LoadCapacitySpec c;
  c.pos = posOf(f.node.Mark());
  if (auto from = m.require("from", "the first rate, in requests per second")) {
    c.from = asArrivalRate(ctx, *from).value_or(0);
  }
  if (auto mx = m.require("max", "the highest rate to try, in requests per second")) {
    c.max = asArrivalRate(ctx, *mx).value_or(0);
    if (c.from > 0 && c.max > 0 && c.max < c.from) {
      ctx.diag.error(mx->node.Mark(), mx->path, "max is below from",
                     "a rate of at least " + rateText(c.from) + " (from)");
    }
  }
  c.step = c.from;
  if (auto st = m.get("step")) c.step = asArrivalRate(ctx, *st).value_or(0);
  if (auto every = m.duration("every")) {
    if (*every < std::chrono::milliseconds(500) || *every > std::chrono::minutes(10)) {
      ctx.diag.error(m.get("every")->node.Mark(), joinPath(f.path, "every"),
                     "a step of " + units::formatDuration(*every), "from 500ms to 10m");
    }
    c.every = *every;
  }
  c.cooldown = c.every;
  if (auto cool = m.duration("cooldown")) {
    if (*cool > std::chrono::minutes(10)) {
      ctx.diag.error(m.get("cooldown")->node.Mark(), joinPath(f.path, "cooldown"),
                     "a cooldown of " + units::formatDuration(*cool), "at most 10m");
    }
    c.cooldown = *cool;
  }
  if (c.from > 0 && c.step > 0 && c.max >= c.from &&
      (c.max - c.from) / c.step + 1 > static_cast<double>(LoadCapacitySpec::kMaxSteps) + 1e-9) {
    ctx.diag.error(f.node.Mark(), f.path,
                   "a ramp of more than " + std::to_string(LoadCapacitySpec::kMaxSteps) +
                       " steps from " + rateText(c.from) + " to " + rateText(c.max) + " by " +
                       rateText(c.step),
                   "a larger step, or a smaller range");
  }
  if (!load.tolerance.successRate && load.tolerance.latency.empty() &&
      load.tolerance.stream.empty()) {
    ctx.diag.error(f.node.Mark(), f.path, "a capacity ramp without a load tolerance to break",
                   "load.tolerance with latency (like {p99: \"<= 500ms\"}), successRate or "
                   "firstEvent: the ramp stops at the first step that does not hold it");
  }
  load.capacity = c;
}

}  // namespace

void parseLoad(ReadContext& ctx, const Field& f, Experiment& exp) {
  MapReader m(ctx, f,
              {"name", "http", "rate", "steps", "timeout", "maxInFlight", "tolerance", "capacity"});
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
  if (auto c = m.get("capacity")) parseCapacity(ctx, *c, load);
  exp.load = std::move(load);
}

}  // namespace chaosd::parser
