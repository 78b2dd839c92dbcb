#include "injectors/network/QdiscJsonReader.h"

#include <cmath>
#include <utility>

namespace chaosd::qdisc {

namespace {

const nlohmann::json& nullJson() {
  static const nlohmann::json kNull;
  return kNull;
}

std::string quoted(const char* key) { return std::string("\"") + key + "\""; }

}  // namespace

std::optional<int64_t> integerIn(const nlohmann::json& value, int64_t lo, int64_t hi) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (hi < 0 || u > static_cast<uint64_t>(hi)) return std::nullopt;
    const auto i = static_cast<int64_t>(u);
    if (i < lo) return std::nullopt;
    return i;
  }
  if (value.is_number_integer()) {
    const auto i = value.get<int64_t>();
    if (i < lo || i > hi) return std::nullopt;
    return i;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // 2^63 is the first double past int64's range.
    if (!std::isfinite(d) || d != std::floor(d) || d >= 9223372036854775808.0 ||
        d < -9223372036854775808.0) {
      return std::nullopt;
    }
    const auto i = static_cast<int64_t>(d);
    if (i < lo || i > hi) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

JsonReader::JsonReader(const nlohmann::json& object, std::string what)
    : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) fail("not a JSON object: " + object_.dump());
}

const nlohmann::json* JsonReader::optMember(const char* key) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

const nlohmann::json& JsonReader::member(const char* key) {
  if (const nlohmann::json* v = optMember(key)) return *v;
  fail(quoted(key) + " is missing");
  return nullJson();
}

std::string JsonReader::string(const char* key) {
  const nlohmann::json* v = optMember(key);
  if (v == nullptr) {
    fail(quoted(key) + " is missing");
  } else if (!v->is_string()) {
    fail(quoted(key) + " is not a string: " + v->dump());
  } else {
    return v->get<std::string>();
  }
  return {};
}

std::optional<std::string> JsonReader::optString(const char* key) {
  if (optMember(key) == nullptr) return std::nullopt;
  return string(key);
}

int64_t JsonReader::integer(const char* key, int64_t lo, int64_t hi) {
  const nlohmann::json* v = optMember(key);
  if (v == nullptr) {
    fail(quoted(key) + " is missing");
    return 0;
  }
  auto i = integerIn(*v, lo, hi);
  if (!i) {
    fail(quoted(key) + " is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
         ": " + v->dump());
    return 0;
  }
  return *i;
}

std::optional<int64_t> JsonReader::optInteger(const char* key, int64_t lo, int64_t hi) {
  if (optMember(key) == nullptr) return std::nullopt;
  return integer(key, lo, hi);
}

std::optional<double> JsonReader::optNumber(const char* key) {
  const nlohmann::json* v = optMember(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    fail(quoted(key) + " is not a number: " + v->dump());
    return 0.0;
  }
  return v->get<double>();
}

void JsonReader::fail(const std::string& problem) {
  if (!error_) error_ = Error(ErrorCode::kInvalid, what_ + ": " + problem);
}

void JsonReader::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

Result<void> JsonReader::finish() const {
  if (error_) return *error_;
  return success();
}

}  // namespace chaosd::qdisc
