#include "chaosd/base/Quote.h"

namespace chaosd {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  unsigned lead = byte(i);
  size_t n = lead >= 0xC2 && lead <= 0xDF   ? 2
             : lead >= 0xE0 && lead <= 0xEF ? 3
             : lead >= 0xF0 && lead <= 0xF4 ? 4
                                            : 0;
  if (n == 0) return 0;
  // Overlong forms, surrogates and code points above U+10FFFF are not text.
  unsigned second = byte(i + 1);
  if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
      (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F))
    return 0;
  for (size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

bool isUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8Length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

// Characters as a reader counts them: UTF-8 sequences count once, a stray byte once.
size_t charCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    size_t len = utf8Length(s, i);
    i += len == 0 ? 1 : len;
  }
  return n;
}

std::string lengthNote(std::string_view s) {
  return " (" + std::to_string(charCount(s)) + " characters)";
}

}  // namespace

std::string quoteText(std::string_view s, size_t maxChars) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "'";
  size_t shown = 0;
  for (size_t i = 0; i < s.size(); ++shown) {
    if (shown >= maxChars) return out + "...'" + lengthNote(s);
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t n = c >= 0x80 ? utf8Length(s, i) : 0;
    bool c1Control = c == 0xC2 && n == 2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if (n > 0 && !c1Control) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xF]};
    ++i;
  }
  return out + "'";
}

std::string boundText(std::string_view s, size_t maxChars) {
  if (s.size() <= maxChars) return std::string(s);  // bytes >= characters
  size_t i = 0;
  for (size_t shown = 0; i < s.size() && shown < maxChars; ++shown) {
    size_t len = utf8Length(s, i);
    i += len == 0 ? 1 : len;
  }
  if (i >= s.size()) return std::string(s);
  return std::string(s.substr(0, i)) + "..." + lengthNote(s);
}

}  // namespace chaosd
