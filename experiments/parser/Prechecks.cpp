#include <cstdio>

#include "chaosd/base/Quote.h"
#include "experiments/parser/Sections.h"
#include "experiments/parser/YamlSyntaxGate.h"

namespace chaosd::parser {
namespace {

// Length of the UTF-8 sequence at text[i], or 0 when it is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF included).
size_t utf8Length(std::string_view t, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(t[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  auto cont = [&](size_t k) { return k < t.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

std::string hexByte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

// The first tab in a line's indentation at or before `line`, as (line, column), 1-based.
std::optional<std::pair<int, int>> tabIndent(std::string_view text, int upToLine) {
  int line = 1;
  size_t i = 0;
  while (i < text.size() && line <= upToLine) {
    size_t col = 0;
    while (i + col < text.size() && (text[i + col] == ' ' || text[i + col] == '\t')) {
      if (text[i + col] == '\t') return std::make_pair(line, static_cast<int>(col) + 1);
      ++col;
    }
    size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) break;
    i = nl + 1;
    ++line;
  }
  return std::nullopt;
}

// YAML (libyaml and yaml-cpp alike) looks at most 1024 characters ahead for the ':' that
// makes a scalar a key; past that the ':' is "not allowed in this context", which names
// neither the key nor the limit.
constexpr size_t kMaxImplicitKey = 1024;

// When a syntax error at (line, column), 1-based, is the ':' after a key longer than that:
// the key's start column and its text.
std::optional<std::pair<int, std::string_view>> overlongKey(std::string_view text, int line,
                                                            int column) {
  size_t begin = 0;
  for (int l = 1; l < line; ++l) {
    begin = text.find('\n', begin);
    if (begin == std::string_view::npos) return std::nullopt;
    ++begin;
  }
  std::string_view row = text.substr(begin, text.find('\n', begin) - begin);
  // The column counts characters; walk to the byte of the ':'.
  size_t colon = 0;
  for (int c = 1; colon < row.size() && c < column; ++colon) {
    if ((static_cast<unsigned char>(row[colon]) & 0xC0) != 0x80) ++c;
  }
  while (colon < row.size() && (static_cast<unsigned char>(row[colon]) & 0xC0) == 0x80) ++colon;
  if (colon >= row.size() || row[colon] != ':') return std::nullopt;
  size_t start = row.find_last_of("{[,", colon);
  start = start == std::string_view::npos ? 0 : start + 1;
  while (start < colon &&
         (row[start] == ' ' || (row[start] == '-' && start + 1 < colon && row[start + 1] == ' '))) {
    ++start;
  }
  size_t end = colon;
  while (end > start && row[end - 1] == ' ') --end;
  size_t chars = 0;
  for (size_t i = start; i < end; ++i) {
    if ((static_cast<unsigned char>(row[i]) & 0xC0) != 0x80) ++chars;
  }
  if (chars <= kMaxImplicitKey) return std::nullopt;
  int startColumn = 1;
  for (size_t i = 0; i < start; ++i) {
    if ((static_cast<unsigned char>(row[i]) & 0xC0) != 0x80) ++startColumn;
  }
  return std::make_pair(startColumn, row.substr(start, end - start));
}

// Walks the tree, counting every node reached (an alias counts each time it is reached),
// so a document that would expand beyond the budget is refused before anyone expands it.
bool withinBudget(const YAML::Node& node, int depth, size_t& visited, const ParseLimits& limits,
                  Diagnostics& diag) {
  if (++visited > limits.maxNodes) {
    diag.error(node.Mark(), "",
               "the document expands to more than " + std::to_string(limits.maxNodes) +
                   " nodes (an alias bomb?)",
               "an experiment of ordinary size; aliases are counted each time they are used");
    return false;
  }
  if (depth > limits.maxDepth) {
    diag.error(node.Mark(), "",
               "nesting deeper than " + std::to_string(limits.maxDepth) + " levels",
               "at most " + std::to_string(limits.maxDepth) + " levels of mappings and lists");
    return false;
  }
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!withinBudget(kv.first, depth + 1, visited, limits, diag) ||
          !withinBudget(kv.second, depth + 1, visited, limits, diag)) {
        return false;
      }
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) {
      if (!withinBudget(item, depth + 1, visited, limits, diag)) return false;
    }
  }
  return true;
}

}  // namespace

bool checkText(std::string_view text, Diagnostics& diag, const ParseLimits& limits) {
  if (text.size() > limits.maxBytes) {
    diag.errorAt(0, 0, "",
                 "the file is " + std::to_string(text.size()) + " bytes, larger than the limit",
                 "an experiment of at most " + std::to_string(limits.maxBytes) + " bytes");
    return false;
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    diag.errorAt(1, 1, "", "the file is empty",
                 "an experiment: apiVersion, kind, metadata, steadyState, method");
    return false;
  }
  int line = 1;
  int col = 1;
  size_t i = (text.substr(0, 3) == "\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      col = 1;
      ++i;
      continue;
    }
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) {
      diag.errorAt(line, col, "", "control character " + hexByte(c) + " in the text",
                   "a YAML text file; this looks like binary data");
      return false;
    }
    size_t n = utf8Length(text, i);
    if (n == 0) {
      diag.errorAt(line, col, "", "invalid UTF-8 (byte " + hexByte(c) + ")",
                   "experiment files are UTF-8 text");
      return false;
    }
    i += n;
    ++col;
  }
  return true;
}

std::optional<YAML::Node> loadYaml(std::string_view text, Diagnostics& diag,
                                   const ParseLimits& limits) {
  YamlShape shape;
  if (auto problem = yamlSyntaxProblem(text, limits.maxDepth, &shape)) {
    if (problem->tooDeep) {
      diag.errorAt(problem->line, problem->column, "",
                   "nesting deeper than " + std::to_string(limits.maxDepth) + " levels",
                   "at most " + std::to_string(limits.maxDepth) + " levels of mappings and lists");
      return std::nullopt;
    }
    if (auto tab = tabIndent(text, problem->line)) {
      diag.errorAt(tab->first, tab->second, "", "a tab is used for indentation",
                   "YAML indents with spaces only");
      return std::nullopt;
    }
    if (auto key = overlongKey(text, problem->line, problem->column)) {
      diag.errorAt(problem->line, key->first, "",
                   "the key " + quoteText(key->second) + " is longer than YAML's limit of " +
                       std::to_string(kMaxImplicitKey) + " characters for a key",
                   "a key of at most " + std::to_string(kMaxImplicitKey) + " characters");
      return std::nullopt;
    }
    diag.errorAt(problem->line, problem->column, "", "YAML syntax error: " + problem->message);
    return std::nullopt;
  }
  if (shape.documents > 1) {
    diag.errorAt(shape.secondDocumentLine, shape.secondDocumentColumn, "",
                 "a second YAML document starts here",
                 "one experiment per file; this file holds " + std::to_string(shape.documents) +
                     " documents");
    return std::nullopt;
  }
  YAML::Node root;
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
    if (docs.size() > 1) {
      diag.errorAt(1, 1, "", "the file holds " + std::to_string(docs.size()) + " YAML documents",
                   "one experiment per file");
      return std::nullopt;
    }
    if (!docs.empty()) root = docs.front();
  } catch (const YAML::ParserException& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    if (auto tab = tabIndent(text, line > 0 ? line : INT32_MAX)) {
      diag.errorAt(tab->first, tab->second, "", "a tab is used for indentation",
                   "YAML indents with spaces only");
      return std::nullopt;
    }
    diag.error(e.mark, "", "YAML syntax error: " + e.msg);
    return std::nullopt;
  } catch (const std::exception& e) {
    diag.errorAt(0, 0, "", std::string("cannot read the YAML: ") + e.what());
    return std::nullopt;
  }
  if (!root.IsDefined() || root.IsNull()) {
    diag.errorAt(1, 1, "", "the file holds no experiment",
                 "an experiment: apiVersion, kind, metadata, steadyState, method");
    return std::nullopt;
  }
  size_t visited = 0;
  if (!withinBudget(root, 0, visited, limits, diag)) return std::nullopt;
  return root;
}

}  // namespace chaosd::parser
