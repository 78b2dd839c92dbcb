#include "chaosd/base/SearchRegex.h"

namespace chaosd {

namespace {

constexpr std::regex::flag_type kFlags = std::regex::ECMAScript | std::regex::multiline
#if defined(__GLIBCXX__)
                                         | std::regex_constants::__polynomial
#endif
    ;

}  // namespace

Result<SearchRegex> SearchRegex::compile(const std::string& pattern, std::string_view what) {
  try {
    return SearchRegex(pattern, std::make_shared<const std::regex>(pattern, kFlags));
  } catch (const std::regex_error& e) {
    std::string message = std::string(what) + " /" + pattern + "/ ";
    if (e.code() == std::regex_constants::error_complexity) {
      message += "uses a back-reference, which probes do not support";
    } else {
      message += std::string("is not a valid regex: ") + e.what();
    }
    return Error(ErrorCode::kInvalid, message);
  }
}

bool SearchRegex::search(std::string_view text) const {
  try {
    return std::regex_search(text.begin(), text.end(), *regex_);
  } catch (const std::regex_error&) {
    return false;
  }
}

}  // namespace chaosd
