#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "experiments/parser/ExperimentParser.h"

namespace chaosd::parser {

// Collects every problem of one file. Positions come from yaml-cpp marks (0-based) and are
// stored 1-based.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

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
  std::string file_;
  std::vector<Diagnostic> list_;
};

SourcePos posOf(const YAML::Mark& mark);

}  // namespace chaosd::parser
