#include "experiments/parser/Diagnostics.h"

#include <algorithm>
#include <tuple>

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

void Diagnostics::error(const YAML::Mark& mark, std::string path, std::string message,
                        std::string expected) {
  SourcePos pos = posOf(mark);
  errorAt(pos.line, pos.column, std::move(path), std::move(message), std::move(expected));
}

void Diagnostics::errorAt(int line, int column, std::string path, std::string message,
                          std::string expected) {
  list_.push_back(Diagnostic{file_, line, column, std::move(path), std::move(message),
                             std::move(expected)});
}

std::vector<Diagnostic> Diagnostics::take() {
  auto key = [](const Diagnostic& d) {
    return std::tie(d.line, d.column, d.path, d.message, d.expected);
  };
  std::stable_sort(list_.begin(), list_.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  list_.erase(std::unique(list_.begin(), list_.end(),
                          [&](const Diagnostic& a, const Diagnostic& b) { return key(a) == key(b); }),
              list_.end());
  return std::move(list_);
}

}  // namespace parser
}  // namespace chaosd
