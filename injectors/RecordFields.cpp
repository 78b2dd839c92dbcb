#include "injectors/RecordFields.h"

#include <cmath>
#include <limits>

namespace chaosd {
namespace {

// An integral json number within [lo, hi], as a long double (exact for every int64 and
// uint64 bound that matters here); nullopt for anything else.
std::optional<long double> integral(const nlohmann::json& v, long double lo, long double hi) {
  long double x = 0;
  if (v.is_number_unsigned()) {
    x = static_cast<long double>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    x = static_cast<long double>(v.get<int64_t>());
  } else if (v.is_number_float()) {
    x = static_cast<long double>(v.get<double>());
    if (!std::isfinite(x) || std::trunc(x) != x) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (x < lo || x > hi) return std::nullopt;
  return x;
}

}  // namespace

RecordFields::RecordFields(const nlohmann::json& object, std::string what)
    : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) {
    error_ = Error(ErrorCode::kInvalid,
                   what_ + " is not a json object but " + std::string(object_.type_name()));
  }
}

const nlohmann::json* RecordFields::find(std::string_view key) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

bool RecordFields::has(std::string_view key) const { return find(key) != nullptr; }

void RecordFields::missing(std::string_view key) {
  error_ = Error(ErrorCode::kInvalid, what_ + " has no '" + std::string(key) + "'");
}

void RecordFields::wrongType(std::string_view key, const nlohmann::json& value) {
  error_ = Error(ErrorCode::kInvalid, what_ + ": '" + std::string(key) + "' has the wrong type (" +
                                          std::string(value.type_name()) + ")");
}

RecordFields& RecordFields::fail(std::string message) {
  if (!error_) error_ = Error(ErrorCode::kInvalid, what_ + ": " + message);
  return *this;
}

Result<void> RecordFields::done() const {
  if (error_) return *error_;
  return success();
}

bool fieldValue(const nlohmann::json& v, std::string& out) {
  if (!v.is_string()) return false;
  out = v.get<std::string>();
  return true;
}

bool fieldValue(const nlohmann::json& v, bool& out) {
  if (!v.is_boolean()) return false;
  out = v.get<bool>();
  return true;
}

bool fieldValue(const nlohmann::json& v, double& out) {
  if (!v.is_number()) return false;
  out = v.get<double>();
  return true;
}

bool fieldValue(const nlohmann::json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();  // exact, up to 2^64 - 1
    return true;
  }
  auto x = integral(v, 0, static_cast<long double>(std::numeric_limits<uint64_t>::max()));
  if (!x) return false;
  out = static_cast<uint64_t>(*x);
  return true;
}

bool fieldValue(const nlohmann::json& v, int64_t& out) {
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    out = v.get<int64_t>();  // exact, down to -2^63
    return true;
  }
  auto x = integral(v, static_cast<long double>(std::numeric_limits<int64_t>::min()),
                    static_cast<long double>(std::numeric_limits<int64_t>::max()));
  if (!x) return false;
  out = static_cast<int64_t>(*x);
  return true;
}

bool fieldValue(const nlohmann::json& v, int& out) {
  auto x = integral(v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  if (!x) return false;
  out = static_cast<int>(*x);
  return true;
}

bool fieldValue(const nlohmann::json& v, std::chrono::nanoseconds& out) {
  int64_t ns = 0;
  if (!fieldValue(v, ns)) return false;
  out = std::chrono::nanoseconds(ns);
  return true;
}

Result<void> checkRecordOwner(std::string_view what, const std::string& recorded,
                              std::string_view faultId) {
  if (faultId.empty() || recorded == faultId) return success();
  return Error(ErrorCode::kInvalid, std::string(what) + " belongs to fault " + recorded + ", not " +
                                        std::string(faultId));
}

}  // namespace chaosd
