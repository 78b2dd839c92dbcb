#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/model/Experiment.h"
#include "experiments/model/FaultCatalog.h"

namespace chaosd {

// One problem found in an experiment file. str() is the form users see:
//   FILE:LINE:COLUMN: path.to.field: what is wrong (what was expected)
struct Diagnostic {
  std::string file;
  int line = 0;      // 1-based; 0 when the problem is the file as a whole
  int column = 0;    // 1-based
  std::string path;  // "method[0].args.delay"; "" for the document
  std::string message;
  std::string expected;  // may be empty
  std::string str() const;
};

struct ParseLimits {
  size_t maxBytes = 1024 * 1024;  // an experiment is a page of YAML, not a data set
  int maxDepth = 64;              // nesting of mappings and sequences
  size_t maxNodes = 100000;       // nodes visited, aliases counted each time (alias bombs)
};

struct ParseOptions {
  // Variables from --var / --var-file; they override `config:` values of the same name.
  std::map<std::string, std::string> vars;
  // Fault types known to this build; required (fault names and args are checked against it).
  const FaultCatalog* registry = nullptr;
  ParseLimits limits;
};

struct ParseResult {
  std::optional<Experiment> experiment;  // set only when diagnostics is empty
  std::vector<Diagnostic> diagnostics;   // every problem found, in file order
  bool ok() const { return diagnostics.empty(); }
};

// Parses and validates an experiment. Never throws, never crashes on hostile input; every
// problem in the file is reported, not just the first.
ParseResult parseExperimentText(std::string_view text, const std::string& fileName,
                                const ParseOptions& options);
// Reads the file (refusing one larger than limits.maxBytes before reading it) and parses it.
ParseResult parseExperimentFile(const std::string& path, const ParseOptions& options);

// Reads a --var-file: a YAML mapping of names to scalar values.
Result<std::map<std::string, std::string>> readVarFile(const std::string& path);

}  // namespace chaosd
