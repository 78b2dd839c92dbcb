#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chaosd/app/console/ConsoleTokens.h"

// Browser sessions of the web console: made at login from a valid token, named by a random
// id in an HttpOnly SameSite=Strict cookie, each with its own CSRF token that every state
// change must carry in a header. Kept in memory: a daemon restart logs everyone out (the
// tokens stay valid, so logging in again works).
namespace chaosd::console {

struct ConsoleSession {
  std::string id;    // the cookie's value: 64 hex digits
  std::string csrf;  // the X-CSRF-Token value: 64 hex digits
  std::string tokenId;
  ConsoleRole role = ConsoleRole::kRead;
  nlohmann::json issuer;
  std::chrono::system_clock::time_point expiresAt;
};

class ConsoleSessions {
 public:
  static constexpr size_t kMaxSessions = 1000;
  static constexpr std::chrono::hours kMaxLifetime{12};

  // A session for this token: it ends with the token, or after 12 hours. When there are
  // kMaxSessions already, the one closest to its end makes room.
  Result<ConsoleSession> create(const ConsoleToken& token);
  // The unexpired session with this id.
  std::optional<ConsoleSession> find(const std::string& id);
  void remove(const std::string& id);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, ConsoleSession> sessions_;
};

}  // namespace chaosd::console
