#include "experiments/parser/YamlReader.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "chaosd/base/Units.h"

namespace chaosd::parser {
namespace {

std::string_view kindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "an undefined value";
  }
}

// The scalar's text with variables substituted, or a report that it is not a scalar.
std::optional<std::string> scalar(ReadContext& ctx, const Field& f, std::string_view expected) {
  if (!f.node.IsScalar()) {
    ctx.diag.error(f.node.Mark(), f.path,
                   "expected " + std::string(expected) + ", found " + std::string(kindOf(f.node)));
    return std::nullopt;
  }
  return substitute(ctx, f, f.node.Scalar());
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                            std::tolower(static_cast<unsigned char>(b[j - 1]))
                        ? 0
                        : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <typename T>
std::optional<T> unitValue(ReadContext& ctx, const Field& f, std::string_view expected,
                           Result<T> (*parse)(std::string_view)) {
  auto text = scalar(ctx, f, expected);
  if (!text) return std::nullopt;
  auto r = parse(*text);
  if (!r) {
    ctx.diag.error(f.node.Mark(), f.path, r.error().message());
    return std::nullopt;
  }
  return *r;
}

}  // namespace

std::string joinPath(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

std::string indexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::optional<std::string> substitute(ReadContext& ctx, const Field& field,
                                      const std::string& raw) {
  if (raw.find('$') == std::string::npos) return raw;
  std::string out;
  out.reserve(raw.size());
  bool ok = true;
  for (size_t i = 0; i < raw.size();) {
    if (raw.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (raw.compare(i, 2, "${") != 0) {
      out += raw[i++];
      continue;
    }
    size_t end = raw.find('}', i + 2);
    if (end == std::string::npos) {
      ctx.diag.error(field.node.Mark(), field.path, "unterminated variable reference",
                     "${name}, or $${ for a literal ${");
      return std::nullopt;
    }
    std::string name = raw.substr(i + 2, end - i - 2);
    auto it = ctx.vars.find(name);
    if (it == ctx.vars.end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : ctx.vars) known.push_back(k);
      auto near = closest(name, known);
      ctx.diag.error(field.node.Mark(), field.path, "undefined variable " + quoteText(name),
                     near ? "did you mean " + quoteText(*near) + "?"
                          : "define it under config: or pass --var " + name + "=VALUE");
      ok = false;
    } else {
      out += it->second;
    }
    i = end + 1;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> asString(ReadContext& ctx, const Field& f) {
  return scalar(ctx, f, "a string");
}

std::optional<std::string> asNonEmptyString(ReadContext& ctx, const Field& f) {
  auto s = scalar(ctx, f, "a string");
  if (s && s->empty()) {
    ctx.diag.error(f.node.Mark(), f.path, "must not be empty", "a non-empty string");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> asBool(ReadContext& ctx, const Field& f) {
  auto s = scalar(ctx, f, "true or false");
  if (!s) return std::nullopt;
  std::string lower = *s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "true") return true;
  if (lower == "false") return false;
  ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a boolean", "true or false");
  return std::nullopt;
}

std::optional<int64_t> asInt(ReadContext& ctx, const Field& f, int64_t min, int64_t max) {
  std::string range = std::to_string(min) + ".." + std::to_string(max);
  auto s = scalar(ctx, f, "an integer");
  if (!s) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size() || s->empty()) {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not an integer",
                   "an integer in " + range);
    return std::nullopt;
  }
  if (v < min || v > max) {
    ctx.diag.error(f.node.Mark(), f.path, std::to_string(v) + " is out of range",
                   "an integer in " + range);
    return std::nullopt;
  }
  return v;
}

std::optional<double> asNumber(ReadContext& ctx, const Field& f) {
  auto s = scalar(ctx, f, "a number");
  if (!s) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size() || s->empty() || !std::isfinite(v)) {
    ctx.diag.error(f.node.Mark(), f.path, quoteText(*s) + " is not a number", "a number like 0.5");
    return std::nullopt;
  }
  return v;
}

std::optional<std::chrono::nanoseconds> asDuration(ReadContext& ctx, const Field& f,
                                                   bool allowZero) {
  auto d =
      unitValue<units::Duration>(ctx, f, "a duration like 250ms, 10s, 5m", &units::parseDuration);
  if (d && !allowZero && d->count() == 0) {
    ctx.diag.error(f.node.Mark(), f.path, "must be longer than zero", "a duration like 10s");
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> asSize(ReadContext& ctx, const Field& f) {
  return unitValue<uint64_t>(ctx, f, "a size like 512MiB or 2GB", &units::parseSize);
}

std::optional<uint64_t> asRate(ReadContext& ctx, const Field& f) {
  return unitValue<uint64_t>(ctx, f, "a rate like 10mbit", &units::parseRate);
}

std::optional<double> asPercent(ReadContext& ctx, const Field& f) {
  return unitValue<double>(ctx, f, "a percentage like 25% or a fraction like 0.25",
                           &units::parsePercent);
}

std::optional<int> asSignal(ReadContext& ctx, const Field& f) {
  return unitValue<int>(ctx, f, "a signal like KILL, TERM or 9", &units::parseSignal);
}

std::optional<std::vector<Field>> asSequence(ReadContext& ctx, const Field& f) {
  if (!f.node.IsSequence()) {
    ctx.diag.error(f.node.Mark(), f.path, "expected a list, found " + std::string(kindOf(f.node)));
    return std::nullopt;
  }
  std::vector<Field> out;
  size_t i = 0;
  for (const auto& item : f.node) out.push_back(Field{item, indexPath(f.path, i++)});
  return out;
}

std::optional<std::vector<std::pair<std::string, Field>>> asStringItems(ReadContext& ctx,
                                                                        const Field& f,
                                                                        bool allowScalar) {
  std::vector<Field> items;
  if (allowScalar && f.node.IsScalar()) {
    items.push_back(f);
  } else if (auto seq = asSequence(ctx, f)) {
    items = std::move(*seq);
  } else {
    return std::nullopt;
  }
  std::vector<std::pair<std::string, Field>> out;
  bool ok = true;
  for (auto& item : items) {
    auto s = asString(ctx, item);
    if (s) {
      out.emplace_back(std::move(*s), std::move(item));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> asStringList(ReadContext& ctx, const Field& f,
                                                     bool allowScalar) {
  auto items = asStringItems(ctx, f, allowScalar);
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(items->size());
  for (auto& [s, field] : *items) out.push_back(std::move(s));
  return out;
}

std::optional<std::map<std::string, std::string>> asStringMap(ReadContext& ctx, const Field& f,
                                                              const StringMapRules& rules) {
  if (!f.node.IsMap()) {
    ctx.diag.error(f.node.Mark(), f.path,
                   "expected a mapping of names to strings, found " + std::string(kindOf(f.node)));
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  bool ok = true;
  for (const auto& kv : f.node) {
    if (!kv.first.IsScalar()) {
      ctx.diag.error(kv.first.Mark(), f.path, "a key must be a plain name");
      ok = false;
      continue;
    }
    std::string key = kv.first.Scalar();
    Field value{kv.second, joinPath(f.path, key)};
    if (out.contains(key)) {
      ctx.diag.error(kv.first.Mark(), value.path, "duplicate key " + quoteText(key),
                     "each key once");
      ok = false;
      continue;
    }
    if (rules.key) {
      if (auto problem = rules.key(key)) {
        ctx.diag.error(kv.first.Mark(), value.path, quoteText(key) + " " + problem->first,
                       problem->second);
        ok = false;
        continue;
      }
    }
    auto s = asString(ctx, value);
    if (!s) {
      ok = false;
      continue;
    }
    if (rules.value) {
      if (auto problem = rules.value(*s)) {
        ctx.diag.error(value.node.Mark(), value.path, quoteText(*s) + " " + problem->first,
                       problem->second);
        ok = false;
        continue;
      }
    }
    out.emplace(key, *s);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& options) {
  std::optional<std::string> best;
  size_t bestDistance = SIZE_MAX;
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  for (const auto& o : options) {
    // The distance is at least the difference in length: a megabyte of text is not compared
    // with a name character by character.
    size_t gap = word.size() > o.size() ? word.size() - o.size() : o.size() - word.size();
    if (gap > limit) continue;
    size_t d = editDistance(word, o);
    if (d < bestDistance) {
      bestDistance = d;
      best = o;
    }
  }
  if (!best || bestDistance > limit || bestDistance >= word.size()) return std::nullopt;
  return best;
}

std::string listOptions(const std::vector<std::string>& options) {
  // Bounded: the options can be the names of thousands of steps.
  constexpr size_t kMaxListed = 40;
  std::string out;
  for (size_t i = 0; i < options.size() && i < kMaxListed; ++i) {
    if (i > 0) out += ", ";
    out += options[i];
  }
  if (options.size() > kMaxListed) {
    out += " and " + std::to_string(options.size() - kMaxListed) + " more";
  }
  return out;
}

MapReader::MapReader(ReadContext& ctx, Field field, std::vector<std::string> allowedKeys)
    : ctx_(ctx), field_(std::move(field)), allowed_(std::move(allowedKeys)) {
  if (!field_.node.IsMap()) {
    ctx_.diag.error(field_.node.Mark(), field_.path,
                    "expected a mapping, found " + std::string(kindOf(field_.node)),
                    "keys: " + listOptions(allowed_));
    return;
  }
  valid_ = true;
  for (const auto& kv : field_.node) {
    if (!kv.first.IsScalar()) {
      ctx_.diag.error(kv.first.Mark(), field_.path, "a key must be a plain name",
                      "keys: " + listOptions(allowed_));
      continue;
    }
    const std::string& key = kv.first.Scalar();
    std::string path = joinPath(field_.path, key);
    if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) {
      auto near = closest(key, allowed_);
      ctx_.diag.error(kv.first.Mark(), path, "unknown key " + quoteText(key),
                      near               ? "did you mean " + quoteText(*near) + "?"
                      : allowed_.empty() ? std::string("no keys are allowed here")
                                         : "one of: " + listOptions(allowed_));
      continue;
    }
    if (values_.contains(key)) {
      auto first = posOf(keyMarks_[key]);
      ctx_.diag.error(kv.first.Mark(), path, "duplicate key " + quoteText(key),
                      "each key once; first given at line " + std::to_string(first.line));
      continue;
    }
    values_.emplace(key, kv.second);
    keyMarks_.emplace(key, kv.first.Mark());
  }
}

bool MapReader::has(std::string_view key) const { return values_.contains(key); }

std::optional<Field> MapReader::get(std::string_view key) {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  Field f{it->second, joinPath(field_.path, key)};
  if (f.node.IsNull()) {
    ctx_.diag.error(keyMarks_[std::string(key)], f.path, "has no value");
    return std::nullopt;
  }
  return f;
}

std::optional<Field> MapReader::require(std::string_view key, std::string_view expected) {
  if (!valid_) return std::nullopt;
  if (!has(key)) {
    ctx_.diag.error(field_.node.Mark(), joinPath(field_.path, key),
                    "missing required field " + quoteText(std::string(key)), std::string(expected));
    return std::nullopt;
  }
  return get(key);
}

std::optional<std::string> MapReader::exactlyOne(const std::vector<std::string>& keys,
                                                 std::string_view what) {
  if (!valid_) return std::nullopt;
  std::vector<std::string> present;
  for (const auto& k : keys) {
    if (has(k)) present.push_back(k);
  }
  if (present.size() == 1) return present.front();
  if (present.empty()) {
    ctx_.diag.error(field_.node.Mark(), field_.path, "missing " + std::string(what),
                    "one of: " + listOptions(keys));
  } else {
    ctx_.diag.error(keyMarks_[present[1]], field_.path,
                    quoteText(present[0]) + " and " + quoteText(present[1]) + " cannot be combined",
                    "exactly one of: " + listOptions(keys));
  }
  return std::nullopt;
}

std::optional<std::string> MapReader::string(std::string_view key, bool required) {
  auto f = required ? require(key, "a string") : get(key);
  if (!f) return std::nullopt;
  return asNonEmptyString(ctx_, *f);
}

std::optional<bool> MapReader::boolean(std::string_view key) {
  auto f = get(key);
  if (!f) return std::nullopt;
  return asBool(ctx_, *f);
}

std::optional<std::chrono::nanoseconds> MapReader::duration(std::string_view key, bool required) {
  auto f = required ? require(key, "a duration like 10s") : get(key);
  if (!f) return std::nullopt;
  return asDuration(ctx_, *f);
}

}  // namespace chaosd::parser
