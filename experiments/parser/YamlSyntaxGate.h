#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

// A syntax gate in front of yaml-cpp. yaml-cpp 0.7 (Debian 12) loops forever, allocating as
// it goes, on some malformed YAML: `{:`, `[:`, a lone `,`, unclosed or stray flow brackets
// (jbeder/yaml-cpp#499, #1040; our fuzzer found more). A parser that hangs on a typo is a
// denial of service for the daemon and a stuck CI stage, so every text goes through libyaml
// first: the reference C implementation, fuzzed continuously by OSS-Fuzz, linear in the input,
// with no recursion. Only text libyaml accepts reaches yaml-cpp, which builds the tree the
// section parsers read.
namespace chaosd::parser {

struct YamlSyntaxProblem {
  bool tooDeep = false;  // nesting beyond maxDepth rather than a syntax error
  int line = 0;          // 1-based
  int column = 0;        // 1-based, in characters
  std::string message;
};

struct YamlShape {
  size_t documents = 0;
  int secondDocumentLine = 0;  // 1-based, where the second document starts (its `---`)
  int secondDocumentColumn = 0;
};

// Runs libyaml over the whole text. Returns the first syntax error, an alias to an anchor not
// defined before it (named), or a container nested deeper than maxDepth (refused at its
// opening bracket or indentation, before any tree is built). On success fills `shape` when
// given.
std::optional<YamlSyntaxProblem> yamlSyntaxProblem(std::string_view text, int maxDepth,
                                                   YamlShape* shape = nullptr);

}  // namespace chaosd::parser
