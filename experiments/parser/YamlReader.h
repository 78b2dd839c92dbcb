#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Quote.h"
#include "experiments/parser/Diagnostics.h"

// Typed, diagnosed access to a yaml-cpp tree. Every accessor reports its own problem (with the
// field's path, line and column) and returns nullopt, so a section parser reads straight
// through and the file's every error is collected.
namespace chaosd::parser {

struct ReadContext {
  Diagnostics& diag;
  const std::map<std::string, std::string>& vars;  // `config:` merged with --var
  // Targets whose kind could not be read: references to them are not checked further, so
  // one mistake gives one error.
  std::set<std::string> brokenTargets;
};

struct Field {
  YAML::Node node;
  std::string path;
};

std::string joinPath(const std::string& parent, std::string_view key);
std::string indexPath(const std::string& parent, size_t index);

// "${name}" -> its value; "$${" -> a literal "${". Unknown names are reported.
std::optional<std::string> substitute(ReadContext& ctx, const Field& field, const std::string& raw);

// Scalar conversions. `what` completes "expected ..." in the error.
std::optional<std::string> asString(ReadContext& ctx, const Field& f);
std::optional<std::string> asNonEmptyString(ReadContext& ctx, const Field& f);
std::optional<bool> asBool(ReadContext& ctx, const Field& f);
std::optional<int64_t> asInt(ReadContext& ctx, const Field& f, int64_t min, int64_t max);
std::optional<double> asNumber(ReadContext& ctx, const Field& f);
std::optional<std::chrono::nanoseconds> asDuration(ReadContext& ctx, const Field& f,
                                                   bool allowZero = false);
std::optional<uint64_t> asSize(ReadContext& ctx, const Field& f);
std::optional<uint64_t> asRate(ReadContext& ctx, const Field& f);
std::optional<double> asPercent(ReadContext& ctx, const Field& f);
std::optional<int> asSignal(ReadContext& ctx, const Field& f);
std::optional<std::vector<std::string>> asStringList(ReadContext& ctx, const Field& f,
                                                     bool allowScalar = false);
// As asStringList, each string with its item's field, so that an error points at the item.
std::optional<std::vector<std::pair<std::string, Field>>> asStringItems(ReadContext& ctx,
                                                                        const Field& f,
                                                                        bool allowScalar = false);
// Rules for the keys and values of a string map, for maps whose entries something else
// parses later (HTTP headers, environment variables). Each returns what is wrong, as the end
// of a sentence that starts with the quoted text, and what was expected; or nothing.
struct StringMapRules {
  using Check =
      std::function<std::optional<std::pair<std::string, std::string>>(const std::string&)>;
  Check key;
  Check value;
};
std::optional<std::map<std::string, std::string>> asStringMap(ReadContext& ctx, const Field& f,
                                                              const StringMapRules& rules = {});
// Checks the node is a sequence; returns its items with paths.
std::optional<std::vector<Field>> asSequence(ReadContext& ctx, const Field& f);

// Closest candidate by edit distance, when it is close enough to be a likely typo.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& options);
std::string listOptions(const std::vector<std::string>& options);

// A mapping with a fixed set of keys. Unknown keys (with a suggestion), duplicate keys and a
// non-mapping node are reported when it is constructed.
class MapReader {
 public:
  MapReader(ReadContext& ctx, Field field, std::vector<std::string> allowedKeys);

  bool valid() const { return valid_; }
  const Field& self() const { return field_; }
  ReadContext& ctx() { return ctx_; }

  bool has(std::string_view key) const;
  // The value of key, when present with a non-null value (a null value is reported).
  std::optional<Field> get(std::string_view key);
  // As get(), and reports "missing required field" when absent.
  std::optional<Field> require(std::string_view key, std::string_view expected);
  // Which of keys is present; reports none or more than one. Returns the present key.
  std::optional<std::string> exactlyOne(const std::vector<std::string>& keys,
                                        std::string_view what);

  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::chrono::nanoseconds> duration(std::string_view key, bool required = false);

 private:
  ReadContext& ctx_;
  Field field_;
  std::vector<std::string> allowed_;
  std::map<std::string, YAML::Node, std::less<>> values_;
  std::map<std::string, YAML::Mark, std::less<>> keyMarks_;
  bool valid_ = false;
};

}  // namespace chaosd::parser
