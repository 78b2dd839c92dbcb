#include "experiments/parser/ArgValidator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "chaosd/base/HostNames.h"
#include "chaosd/base/Units.h"

namespace chaosd::parser {
namespace {

std::vector<std::string> fieldNames(const std::vector<ArgSpec>& specs) {
  std::vector<std::string> out;
  out.reserve(specs.size());
  for (const auto& s : specs) out.push_back(s.name);
  return out;
}

bool inRange(ReadContext& ctx, const Field& f, const ArgSpec& spec, double v) {
  if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max)) {
    std::string lo = spec.min ? formatArgValue(spec, *spec.min) : "";
    std::string hi = spec.max ? formatArgValue(spec, *spec.max) : "";
    std::string expected = spec.min && spec.max ? "between " + lo + " and " + hi
                           : spec.min           ? "at least " + lo
                                                : "at most " + hi;
    ctx.diag.error(f.node.Mark(), f.path, formatArgValue(spec, v) + " is out of range", expected);
    return false;
  }
  return true;
}

std::optional<nlohmann::json> validateValue(ReadContext& ctx, const Field& f, const ArgSpec& spec);

std::optional<nlohmann::json> validateObject(ReadContext& ctx, const Field& f,
                                             const std::vector<ArgSpec>& fields) {
  MapReader map(ctx, f, fieldNames(fields));
  if (!map.valid()) return std::nullopt;
  nlohmann::json out = nlohmann::json::object();
  bool ok = true;
  for (const auto& spec : fields) {
    if (!map.has(spec.name)) {
      if (spec.required) {
        map.require(spec.name, std::string(argTypeName(spec.type)) + ": " + spec.help);
        ok = false;
      } else if (spec.defaultValue) {
        out[spec.name] = *spec.defaultValue;
      }
      continue;
    }
    auto field = map.get(spec.name);
    if (!field) {
      ok = false;
      continue;
    }
    auto v = validateValue(ctx, *field, spec);
    if (!v) {
      ok = false;
      continue;
    }
    out[spec.name] = std::move(*v);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<nlohmann::json> validateValue(ReadContext& ctx, const Field& f, const ArgSpec& spec) {
  switch (spec.type) {
    case ArgType::kBool: {
      auto v = asBool(ctx, f);
      if (!v) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kInt: {
      auto lo = static_cast<int64_t>(spec.min.value_or(-9.2e18));
      auto hi = static_cast<int64_t>(spec.max.value_or(9.2e18));
      auto v = asInt(ctx, f, lo, hi);
      if (!v) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kNumber: {
      auto v = asNumber(ctx, f);
      if (!v || !inRange(ctx, f, spec, *v)) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kString: {
      auto v = asNonEmptyString(ctx, f);
      if (!v) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kDuration: {
      auto v = asDuration(ctx, f, /*allowZero=*/true);
      if (!v || !inRange(ctx, f, spec, static_cast<double>(v->count()))) return std::nullopt;
      return nlohmann::json(v->count());
    }
    case ArgType::kSize: {
      auto v = asSize(ctx, f);
      if (!v || !inRange(ctx, f, spec, static_cast<double>(*v))) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kRate: {
      auto v = asRate(ctx, f);
      if (!v || !inRange(ctx, f, spec, static_cast<double>(*v))) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kPercent: {
      auto v = asPercent(ctx, f);
      if (!v || !inRange(ctx, f, spec, *v)) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kSignal: {
      auto v = asSignal(ctx, f);
      if (!v) return std::nullopt;
      return nlohmann::json(*v);
    }
    case ArgType::kCidr: {
      auto s = asString(ctx, f);
      if (!s) return std::nullopt;
      auto c = units::parseCidr(*s);
      if (!c) {
        ctx.diag.error(f.node.Mark(), f.path, c.error().message());
        return std::nullopt;
      }
      return nlohmann::json(c->str());
    }
    case ArgType::kHost: {
      auto s = asString(ctx, f);
      if (!s) return std::nullopt;
      auto h = checkHostName(*s);
      if (!h) {
        ctx.diag.error(f.node.Mark(), f.path, h.error().message());
        return std::nullopt;
      }
      return nlohmann::json(*h);
    }
    case ArgType::kPortRange: {
      auto s = asString(ctx, f);
      if (!s) return std::nullopt;
      auto r = units::parsePortRange(*s);
      if (!r) {
        ctx.diag.error(f.node.Mark(), f.path, r.error().message());
        return std::nullopt;
      }
      return nlohmann::json{{"first", r->first}, {"last", r->last}};
    }
    case ArgType::kEnum: {
      auto s = asString(ctx, f);
      if (!s) return std::nullopt;
      if (std::find(spec.choices.begin(), spec.choices.end(), *s) == spec.choices.end()) {
        auto near = closest(*s, spec.choices);
        ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a valid " + spec.name,
                       near ? "did you mean " + quoteText(*near) + "?"
                            : "one of: " + listOptions(spec.choices));
        return std::nullopt;
      }
      return nlohmann::json(*s);
    }
    case ArgType::kList: {
      std::vector<Field> items;
      if (f.node.IsSequence()) {
        auto seq = asSequence(ctx, f);
        if (!seq) return std::nullopt;
        items = std::move(*seq);
      } else {
        items.push_back(f);  // a single value is a list of one
      }
      if (spec.maxItems && items.size() > *spec.maxItems) {
        ctx.diag.error(f.node.Mark(), f.path, std::to_string(items.size()) + " items are too many",
                       "at most " + std::to_string(*spec.maxItems));
        return std::nullopt;
      }
      if (items.empty()) {
        ctx.diag.error(f.node.Mark(), f.path, "the list is empty", "at least one item");
        return std::nullopt;
      }
      nlohmann::json out = nlohmann::json::array();
      bool ok = true;
      for (const auto& item : items) {
        auto v = validateValue(ctx, item, *spec.element);
        if (v) {
          out.push_back(std::move(*v));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
    case ArgType::kObject:
      return validateObject(ctx, f, spec.fields);
    case ArgType::kStringMap: {
      auto m = asStringMap(ctx, f);
      if (!m) return std::nullopt;
      return nlohmann::json(*m);
    }
  }
  return std::nullopt;
}

// Finds the node a constraint blames ("to.cidr", "ports[2]") so the error points at it.
YAML::Mark markOf(const std::optional<Field>& args, const std::string& dotted,
                  const YAML::Mark& fallback) {
  if (!args || dotted.empty()) return args ? args->node.Mark() : fallback;
  YAML::Node node = args->node;
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = std::min(dotted.find('.', start), dotted.size());
    std::string part = dotted.substr(start, dot - start);
    std::optional<size_t> index;  // "name[3]": item 3 of the list `name`
    if (size_t open = part.find('['); open != std::string::npos && part.back() == ']') {
      index = static_cast<size_t>(std::strtoull(part.c_str() + open + 1, nullptr, 10));
      part.resize(open);
    }
    if (!node.IsMap()) break;
    YAML::Node next = std::as_const(node)[part];  // const: no key is added
    if (!next.IsDefined()) break;
    // reset(), not operator=: yaml-cpp's assignment writes through to the tree.
    node.reset(next);
    if (index && node.IsSequence() && *index < node.size()) node.reset(std::as_const(node)[*index]);
    start = dot + 1;
  }
  return node.Mark();
}

}  // namespace

std::optional<nlohmann::json> validateArgs(ReadContext& ctx, const std::optional<Field>& args,
                                           const std::string& argsPath, const YAML::Mark& stepMark,
                                           const ArgSchema& schema,
                                           std::optional<std::chrono::nanoseconds> duration,
                                           const Guardrails& guardrails, bool onHost) {
  std::optional<nlohmann::json> out;
  if (args) {
    out = validateObject(ctx, *args, schema.args);
  } else {
    // No args given: only fine when nothing is required.
    out = nlohmann::json::object();
    for (const auto& spec : schema.args) {
      if (spec.required) {
        ctx.diag.error(stepMark, joinPath(argsPath, spec.name),
                       "missing required argument " + quoteText(spec.name),
                       std::string(argTypeName(spec.type)) + ": " + spec.help);
        out.reset();
      } else if (spec.defaultValue && out) {
        (*out)[spec.name] = *spec.defaultValue;
      }
    }
  }
  if (!out) return std::nullopt;
  bool ok = true;
  for (const auto& constraint : schema.constraints) {
    if (auto problem =
            constraint(ArgContext{*out, duration, guardrails.allowSsh, guardrails.allowFullCpu,
                                  onHost, guardrails.allowHostClock})) {
      ctx.diag.error(markOf(args, problem->field, stepMark),
                     problem->field.empty() ? argsPath : joinPath(argsPath, problem->field),
                     problem->message);
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace chaosd::parser
