#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chaosd/base/Result.h"

// The one place the qdisc records (QdiscArgs, QdiscUndo, QdiscLeaf) read JSON by key. Their
// fromJson converters use it; nothing else in injectors/network/Qdisc* reads JSON.
namespace chaosd::qdisc {

inline constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// Reads the members of one JSON object as typed values. It never throws: the first problem (the
// value not an object, a member missing, of the wrong type or out of range) is kept, and finish()
// returns it as kInvalid. After a problem the readers go on returning empty values, so a
// converter reads every field and checks once at the end.
class JsonReader {
 public:
  // `what` names the object in messages ("qdisc undo record", "qdisc undo record: leaf").
  JsonReader(const nlohmann::json& object, std::string what);

  // A member of any type: required (null and a problem when absent) or optional (nullptr).
  const nlohmann::json& member(const char* key);
  const nlohmann::json* optMember(const char* key) const;

  std::string string(const char* key);
  std::optional<std::string> optString(const char* key);
  // An integer in [lo, hi]; a float with an integral value counts (nlohmann's get<> takes it).
  int64_t integer(const char* key, int64_t lo, int64_t hi);
  std::optional<int64_t> optInteger(const char* key, int64_t lo, int64_t hi);
  std::optional<double> optNumber(const char* key);

  // The value of a nested conversion, or T{} with its error kept.
  template <typename T>
  T take(Result<T> result) {
    if (!result) {
      fail(std::move(result).error());
      return T{};
    }
    return std::move(*result);
  }

  void fail(const std::string& problem);
  void fail(Error error);
  bool failed() const { return error_.has_value(); }
  Result<void> finish() const;

 private:
  const nlohmann::json& object_;
  std::string what_;
  std::optional<Error> error_;
};

// A JSON number as an integer in [lo, hi], or nothing.
std::optional<int64_t> integerIn(const nlohmann::json& value, int64_t lo, int64_t hi);

}  // namespace chaosd::qdisc
