#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"
#include "chaosd/base/SearchRegex.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// A ValueMatch ready to judge observed values, its regex compiled once.
//   kEquals: numerically equal when both sides parse as numbers ("200" == "200.0"), else the
//            strings are equal.
//   kOneOf:  kEquals against any of the values.
//   kRange:  low <= number <= high; a value that is not a number does not match.
//   kRegex:  the ECMAScript pattern occurs in the value (a search).
class ValueMatcher {
 public:
  // kInvalid when the regex does not compile; `what` names the field ("status").
  static Result<ValueMatcher> create(const ValueMatch& match, std::string_view what);

  bool matches(std::string_view observed) const;
  bool matches(double observed) const;

  // "== 200", "in {200, 204}", "in 200..299", "~ /ok/"
  std::string describe() const { return match_.describe(); }

 private:
  ValueMatcher(ValueMatch match, std::optional<SearchRegex> regex)
      : match_(std::move(match)), regex_(std::move(regex)) {}

  ValueMatch match_;
  std::optional<SearchRegex> regex_;
};

// The whole text as a number: "200", "-1.5", "1e3", "NaN", "+Inf" (as Prometheus writes them).
// Surrounding whitespace is not allowed.
std::optional<double> parseNumber(std::string_view text);

// A number the way a person reads it in a detail: "200", "0.5", "1e-06", "NaN".
std::string formatNumber(double value);

}  // namespace chaosd
