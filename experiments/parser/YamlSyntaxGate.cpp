#include "experiments/parser/YamlSyntaxGate.h"

#include <yaml.h>

#include <functional>
#include <set>
#include <string>
#include <tuple>

#include "chaosd/base/Quote.h"

namespace chaosd::parser {
namespace {

// libyaml's parser with its cleanup tied to scope.
class LibyamlParser {
 public:
  explicit LibyamlParser(std::string_view text) {
    ok_ = yaml_parser_initialize(&parser_) != 0;
    if (ok_) {
      yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                   text.size());
    }
  }
  ~LibyamlParser() {
    if (ok_) yaml_parser_delete(&parser_);
  }
  LibyamlParser(const LibyamlParser&) = delete;
  LibyamlParser& operator=(const LibyamlParser&) = delete;

  bool ok() const { return ok_; }
  yaml_parser_t* get() { return &parser_; }

 private:
  yaml_parser_t parser_{};
  bool ok_ = false;
};

// 1-based line and character column of a byte offset (libyaml's reader errors carry only the
// offset).
std::pair<int, int> positionOf(std::string_view text, size_t offset) {
  int line = 1;
  int column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return {line, column};
}

std::string markText(const yaml_mark_t& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

YamlSyntaxProblem problemOf(std::string_view text, const yaml_parser_t& p) {
  YamlSyntaxProblem out;
  const std::string problem = p.problem != nullptr ? p.problem : "malformed YAML";
  if (p.error == YAML_READER_ERROR) {
    std::tie(out.line, out.column) = positionOf(text, p.problem_offset);
    out.message = problem;
    return out;
  }
  if (p.error == YAML_MEMORY_ERROR) {
    out.line = 1;
    out.column = 1;
    out.message = "out of memory while reading the YAML";
    return out;
  }
  out.line = static_cast<int>(p.problem_mark.line) + 1;
  out.column = static_cast<int>(p.problem_mark.column) + 1;
  out.message = problem;
  if (p.context != nullptr) {
    // e.g. "did not find expected ',' or ']', while parsing a flow sequence opened at
    // line 3, column 10".
    std::string context = p.context;
    out.message += ", " + context;
    if (p.context_mark.line != p.problem_mark.line ||
        p.context_mark.column != p.problem_mark.column) {
      out.message += " opened at " + markText(p.context_mark);
    }
  }
  return out;
}

// The anchor an event defines, or the one an alias names; nullptr for none.
const char* anchorOf(const yaml_event_t& e) {
  const yaml_char_t* a = nullptr;
  switch (e.type) {
    case YAML_ALIAS_EVENT:
      a = e.data.alias.anchor;
      break;
    case YAML_SCALAR_EVENT:
      a = e.data.scalar.anchor;
      break;
    case YAML_SEQUENCE_START_EVENT:
      a = e.data.sequence_start.anchor;
      break;
    case YAML_MAPPING_START_EVENT:
      a = e.data.mapping_start.anchor;
      break;
    default:
      break;
  }
  return reinterpret_cast<const char*>(a);
}

}  // namespace

std::optional<YamlSyntaxProblem> yamlSyntaxProblem(std::string_view text, int maxDepth,
                                                   YamlShape* shape) {
  LibyamlParser parser(text);
  if (!parser.ok()) return YamlSyntaxProblem{false, 1, 1, "out of memory while reading the YAML"};
  YamlShape seen;
  int depth = 0;
  std::set<std::string, std::less<>> anchors;
  for (;;) {
    yaml_event_t event;
    if (yaml_parser_parse(parser.get(), &event) == 0) return problemOf(text, *parser.get());
    const yaml_event_type_t type = event.type;
    const yaml_mark_t start = event.start_mark;
    // yaml-cpp names neither an undefined alias nor where it is; libyaml's events hold both.
    std::optional<std::string> undefinedAlias;
    if (const char* anchor = anchorOf(event)) {
      if (type == YAML_ALIAS_EVENT) {
        if (!anchors.contains(anchor)) undefinedAlias = anchor;
      } else {
        anchors.emplace(anchor);
      }
    }
    yaml_event_delete(&event);
    if (undefinedAlias) {
      return YamlSyntaxProblem{false, static_cast<int>(start.line) + 1,
                               static_cast<int>(start.column) + 1,
                               "the alias " + quoteText("*" + *undefinedAlias) +
                                   " refers to no anchor defined before it (define it with &" +
                                   boundText(*undefinedAlias, kQuotedChars) + ")"};
    }
    switch (type) {
      case YAML_DOCUMENT_START_EVENT:
        if (++seen.documents == 2) {
          seen.secondDocumentLine = static_cast<int>(start.line) + 1;
          seen.secondDocumentColumn = static_cast<int>(start.column) + 1;
        }
        break;
      case YAML_MAPPING_START_EVENT:
      case YAML_SEQUENCE_START_EVENT:
        if (++depth > maxDepth) {
          return YamlSyntaxProblem{true, static_cast<int>(start.line) + 1,
                                   static_cast<int>(start.column) + 1, ""};
        }
        break;
      case YAML_MAPPING_END_EVENT:
      case YAML_SEQUENCE_END_EVENT:
        --depth;
        break;
      case YAML_STREAM_END_EVENT:
        if (shape != nullptr) *shape = seen;
        return std::nullopt;
      default:
        break;
    }
  }
}

}  // namespace chaosd::parser
