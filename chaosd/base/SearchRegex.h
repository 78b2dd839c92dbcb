#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

namespace chaosd {

// An ECMAScript regular expression, compiled once, that answers "does it occur anywhere in
// this text?" (a search, not a full match). Multiline: ^ and $ also match at the start and
// end of every line, so `^ok$` finds the line "ok" in a command's output "ok\n" as grep would.
//
// Why not a plain std::regex: libstdc++'s default (backtracking) executor recurses once per
// character a repetition consumes; `a.*ok` over a 50 KB line overflowed an 8 MiB stack in our
// test, and a probe reads bodies and stdout that someone else controls. Built with the
// libstdc++ flag __polynomial, the same pattern runs on its Thompson-NFA executor, whose
// stack depth does not grow with the text (1 MB in 40 ms on a 1 MiB stack). The price: a
// back-reference (\1) is refused at compile time. A yes/no search gives the same answer on
// either executor. Failing unanchored searches can still be quadratic in the text length,
// which is why probes bound what they read.
class SearchRegex {
 public:
  // kInvalid naming `what` ("body regex") and the pattern when it does not compile.
  static Result<SearchRegex> compile(const std::string& pattern, std::string_view what);

  // True when the pattern occurs in text. False (never a throw) if the engine gives up.
  bool search(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }
  // "/pattern/"
  std::string describe() const { return "/" + pattern_ + "/"; }

 private:
  SearchRegex(std::string pattern, std::shared_ptr<const std::regex> regex)
      : pattern_(std::move(pattern)), regex_(std::move(regex)) {}

  std::string pattern_;
  std::shared_ptr<const std::regex> regex_;  // shared: immutable, and copies stay cheap
};

}  // namespace chaosd
