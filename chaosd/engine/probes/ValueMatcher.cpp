#include "chaosd/engine/probes/ValueMatcher.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace chaosd {

std::optional<double> parseNumber(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string formatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  return buf;
}

Result<ValueMatcher> ValueMatcher::create(const ValueMatch& match, std::string_view what) {
  std::optional<SearchRegex> regex;
  if (match.kind == ValueMatch::Kind::kRegex) {
    auto compiled = SearchRegex::compile(match.regex, std::string(what) + " regex");
    if (!compiled) return std::move(compiled).error();
    regex = std::move(*compiled);
  }
  if ((match.kind == ValueMatch::Kind::kEquals || match.kind == ValueMatch::Kind::kOneOf) &&
      match.values.empty()) {
    return Error(ErrorCode::kInvalid, std::string(what) + ": no value to compare with");
  }
  return ValueMatcher(match, std::move(regex));
}

namespace {

bool equalValues(std::string_view observed, const std::string& expected) {
  auto a = parseNumber(observed);
  auto b = parseNumber(expected);
  if (a && b) return *a == *b;
  return observed == expected;
}

}  // namespace

bool ValueMatcher::matches(std::string_view observed) const {
  switch (match_.kind) {
    case ValueMatch::Kind::kEquals:
      return equalValues(observed, match_.values.front());
    case ValueMatch::Kind::kOneOf:
      for (const auto& v : match_.values) {
        if (equalValues(observed, v)) return true;
      }
      return false;
    case ValueMatch::Kind::kRange: {
      auto n = parseNumber(observed);
      return n && *n >= match_.low && *n <= match_.high;
    }
    case ValueMatch::Kind::kRegex:
      return regex_->search(observed);
  }
  return false;
}

bool ValueMatcher::matches(double observed) const {
  if (match_.kind == ValueMatch::Kind::kRange) {
    return observed >= match_.low && observed <= match_.high;
  }
  // Integers print exactly ("200", not "200.000000"), so string and regex forms stay natural.
  if (std::isfinite(observed) && observed == std::trunc(observed) && std::fabs(observed) < 1e15) {
    return matches(std::to_string(static_cast<long long>(observed)));
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", observed);
  return matches(std::string_view(std::isnan(observed) ? "NaN" : buf));
}

}  // namespace chaosd
