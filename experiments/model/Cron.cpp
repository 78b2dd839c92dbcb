#include "experiments/model/Cron.h"

#include <array>
#include <charconv>
#include <sstream>
#include <vector>

namespace chaosd {
namespace {

struct FieldRule {
  const char* name;
  int min;
  int max;
  const char* const* names;  // index 0 = min value
  int nameCount;
};

constexpr const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const std::array<FieldRule, 5> kRules = {{{"minute", 0, 59, nullptr, 0},
                                          {"hour", 0, 23, nullptr, 0},
                                          {"day of month", 1, 31, nullptr, 0},
                                          {"month", 1, 12, kMonths, 12},
                                          {"day of week", 0, 7, kDays, 7}}};

Error bad(const FieldRule& rule, std::string_view item, const std::string& why) {
  return Error(ErrorCode::kInvalid,
               "cron " + std::string(rule.name) + " field '" + std::string(item) + "': " + why);
}

Result<int> value(const FieldRule& rule, std::string_view text) {
  for (int i = 0; i < rule.nameCount; ++i) {
    std::string lower(text);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == rule.names[i]) return rule.min + i;
  }
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) {
    return bad(rule, text, "not a number" + std::string(rule.nameCount ? " or name" : ""));
  }
  if (v < rule.min || v > rule.max) {
    return bad(rule, text,
               "out of range " + std::to_string(rule.min) + "-" + std::to_string(rule.max));
  }
  return v;
}

// Sets the values of one comma-separated field in `bits` (indexed by value).
Result<void> parseField(const FieldRule& rule, std::string_view field, std::vector<bool>& bits) {
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    std::string_view item =
        field.substr(start, comma == std::string_view::npos ? field.npos : comma - start);
    if (item.empty()) return bad(rule, field, "empty list item");
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view s = item.substr(slash + 1);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (ec != std::errc() || p != s.data() + s.size() || step <= 0) {
        return bad(rule, item, "the step must be a positive number");
      }
      item = item.substr(0, slash);
    }
    int lo = rule.min;
    int hi = rule.max;
    if (item != "*") {
      auto dash = item.find('-');
      auto first = value(rule, item.substr(0, dash));
      if (!first) return first.error();
      lo = hi = *first;
      if (dash != std::string_view::npos) {
        auto last = value(rule, item.substr(dash + 1));
        if (!last) return last.error();
        hi = *last;
        if (hi < lo) return bad(rule, item, "the range runs backwards");
      } else if (step != 1) {
        hi = rule.max;  // "5/15" means from 5 to the end, every 15
      }
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return success();
}

}  // namespace

Result<CronSpec> parseCron(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 5) {
    return Error(ErrorCode::kInvalid,
                 "a cron expression has 5 fields, this one has " + std::to_string(fields.size()));
  }
  CronSpec spec;
  spec.text = std::string(text);
  for (size_t i = 0; i < 5; ++i) {
    std::vector<bool> bits(static_cast<size_t>(kRules[i].max) + 1, false);
    auto r = parseField(kRules[i], fields[i], bits);
    if (!r) return std::move(r).error();
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (i) {
        case 0:
          spec.minutes.set(v);
          break;
        case 1:
          spec.hours.set(v);
          break;
        case 2:
          spec.daysOfMonth.set(v);
          break;
        case 3:
          spec.months.set(v);
          break;
        default:
          spec.daysOfWeek.set(v % 7);
          break;
      }
    }
  }
  spec.domRestricted = fields[2] != "*";
  spec.dowRestricted = fields[4] != "*";
  return spec;
}

}  // namespace chaosd
