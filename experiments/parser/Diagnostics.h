#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

#include "experiments/parser/ExperimentParser.h"

namespace chaosd::parser {

// Collects every problem of one file. Positions come from yaml-cpp marks (0-based) and are
// stored 1-based.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  // The text being parsed: yaml-cpp counts columns in bytes, users (and editors) in
  // characters; with the text, columns after non-ASCII characters are converted.
  void setText(std::string_view text);

  void error(const YAML::Mark& mark, std::string path, std::string message,
             std::string expected = "");
  void errorAt(int line, int column, std::string path, std::string message,
               std::string expected = "");
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  // In file order; exact duplicates (one bad node reached twice through an alias) removed.
  std::vector<Diagnostic> take();
  const std::string& file() const { return file_; }

 private:
  int charColumn(int line, int byteColumn) const;  // 1-based in and out

  std::string file_;
  std::vector<Diagnostic> list_;
  std::string_view text_;
  std::vector<size_t> lineStarts_;
};

SourcePos posOf(const YAML::Mark& mark);

}  // namespace chaosd::parser
