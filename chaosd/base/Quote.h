#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chaosd {

// How many characters of a user's value an error message shows.
inline constexpr size_t kQuotedChars = 80;

// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool isUtf8(std::string_view text);

// The user's text in single quotes, safe to print on one line of a terminal, a log or a JSON
// field: control characters and bytes that are not UTF-8 are escaped, and text longer than
// maxChars characters is cut there and its length said, so a 1 MB value gives a short line:
//   'aaaa...aaaa...' (1000000 characters)
std::string quoteText(std::string_view text, size_t maxChars = kQuotedChars);

// The same bound without quotes or escapes, for text that is not one value (a field path, a
// whole message): at most maxChars characters, then "... (N characters)".
std::string boundText(std::string_view text, size_t maxChars);

}  // namespace chaosd
