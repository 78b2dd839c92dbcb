#include "experiments/parser/Diagnostics.h"

#include <algorithm>
#include <string_view>
#include <tuple>

#include "chaosd/base/Quote.h"

namespace chaosd {

std::string Diagnostic::str() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  if (!expected.empty()) out += " (" + expected + ")";
  return out;
}

namespace parser {

SourcePos posOf(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

void Diagnostics::setText(std::string_view text) {
  text_ = text;
  lineStarts_ = {0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') lineStarts_.push_back(i + 1);
  }
}

int Diagnostics::charColumn(int line, int byteColumn) const {
  if (line < 1 || static_cast<size_t>(line) > lineStarts_.size() || byteColumn < 1)
    return byteColumn;
  size_t start = lineStarts_[static_cast<size_t>(line) - 1];
  size_t end = std::min(text_.size(), start + static_cast<size_t>(byteColumn) - 1);
  int chars = 1;
  for (size_t i = start; i < end; ++i) {
    if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++chars;  // not a continuation
  }
  return chars;
}

void Diagnostics::error(const YAML::Mark& mark, std::string path, std::string message,
                        std::string expected) {
  SourcePos pos = posOf(mark);
  if (!text_.empty()) pos.column = charColumn(pos.line, pos.column);
  errorAt(pos.line, pos.column, std::move(path), std::move(message), std::move(expected));
}

void Diagnostics::errorAt(int line, int column, std::string path, std::string message,
                          std::string expected) {
  // Values are quoted with a bound where a message is made (quoteText); this is the net under
  // any that is not, and under paths, which hold the user's keys: one huge key or value must
  // not make a huge line.
  constexpr size_t kMaxPath = 200;
  constexpr size_t kMaxText = 1000;
  list_.push_back(Diagnostic{file_, line, column, boundText(path, kMaxPath),
                             boundText(message, kMaxText), boundText(expected, kMaxText)});
}

std::vector<Diagnostic> Diagnostics::take() {
  auto key = [](const Diagnostic& d) {
    return std::tie(d.line, d.column, d.path, d.message, d.expected);
  };
  std::stable_sort(list_.begin(), list_.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  list_.erase(
      std::unique(list_.begin(), list_.end(),
                  [&](const Diagnostic& a, const Diagnostic& b) { return key(a) == key(b); }),
      list_.end());
  return std::move(list_);
}

}  // namespace parser
}  // namespace chaosd
