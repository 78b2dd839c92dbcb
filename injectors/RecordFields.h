#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// Reads the fields of a json object (an undo record, a fault's normalised args) into typed
// values: where the fromJson() converters of the fault families look keys up (disk, syscall and
// the test family today; the others should move to it). An undo record is read by the guardian
// in another process and may come from a damaged journal, so every present field must have the
// type toJson() writes, else the record is refused as a value (kInvalid). Nothing here throws.
namespace chaosd {

class RecordFields {
 public:
  // `what` names the object in errors: "disk.fill undo record". Not an object: an error.
  RecordFields(const nlohmann::json& object, std::string what);

  bool has(std::string_view key) const;

  // Reads `key` into out. Absent: an error for required(); optional() leaves out as it is (its
  // default). Present with another type: an error. The first error is kept and later reads do
  // nothing, so a converter reads every field and checks done() once.
  template <typename T>
  RecordFields& required(std::string_view key, T& out) {
    return read(key, out, true);
  }
  template <typename T>
  RecordFields& optional(std::string_view key, T& out) {
    return read(key, out, false);
  }
  template <typename T>
  RecordFields& optional(std::string_view key, std::optional<T>& out) {
    if (has(key)) {
      T value{};
      if (read(key, value, true).ok()) out = std::move(value);
    }
    return *this;
  }

  // Fails the whole read with message (a check across the values read), unless it failed
  // already.
  RecordFields& fail(std::string message);

  bool ok() const { return !error_.has_value(); }
  // The first error, or success.
  Result<void> done() const;

 private:
  template <typename T>
  RecordFields& read(std::string_view key, T& out, bool required);
  const nlohmann::json* find(std::string_view key) const;
  void missing(std::string_view key);
  void wrongType(std::string_view key, const nlohmann::json& value);

  const nlohmann::json& object_;
  std::string what_;
  std::optional<Error> error_;
};

// Converts a json value to the type a record holds; false when it has another type. Integers
// accept any json number with an integral value in range (an older writer's 3.0 included),
// never a fraction or a negative count.
bool fieldValue(const nlohmann::json& v, std::string& out);
bool fieldValue(const nlohmann::json& v, bool& out);
bool fieldValue(const nlohmann::json& v, double& out);
bool fieldValue(const nlohmann::json& v, uint64_t& out);
bool fieldValue(const nlohmann::json& v, int64_t& out);
bool fieldValue(const nlohmann::json& v, int& out);
bool fieldValue(const nlohmann::json& v, std::chrono::nanoseconds& out);  // integer ns

template <typename T>
bool fieldValue(const nlohmann::json& v, std::vector<T>& out) {
  if (!v.is_array()) return false;
  std::vector<T> items;
  items.reserve(v.size());
  for (const auto& item : v) {
    T value{};
    if (!fieldValue(item, value)) return false;
    items.push_back(std::move(value));
  }
  out = std::move(items);
  return true;
}

template <typename T>
RecordFields& RecordFields::read(std::string_view key, T& out, bool required) {
  if (error_) return *this;
  const nlohmann::json* value = find(key);
  if (value == nullptr) {
    if (required) missing(key);
    return *this;
  }
  T typed{};
  if (!fieldValue(*value, typed)) {
    wrongType(key, *value);
    return *this;
  }
  out = std::move(typed);
  return *this;
}

// kInvalid unless the record names faultId ("" accepts any record): a record is acted on only
// by the fault it belongs to.
Result<void> checkRecordOwner(std::string_view what, const std::string& recorded,
                              std::string_view faultId);

}  // namespace chaosd
