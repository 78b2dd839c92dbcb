#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "chaosd/base/Units.h"

// The web console's login tokens (docs/console.md). `chaosctl console token` asks the daemon
// over its UNIX socket, as root or a member of the chaosd group; the daemon makes 32 random
// bytes, keeps only their sha256 with the role, the expiry and the issuer's credentials (in
// <state-dir>/console-tokens.json, mode 0600), and hands the token out once. A browser that
// logs in with it acts as the issuer: the same policy, the same credentials for commands.
namespace chaosd::console {

using units::Duration;

enum class ConsoleRole { kRead, kOperate };
std::string_view roleName(ConsoleRole role);
std::optional<ConsoleRole> roleFromName(std::string_view name);

struct ConsoleToken {
  std::string id;    // 12 hex digits, for listing and revoking; not the secret
  std::string hash;  // sha256 of the token, hex
  ConsoleRole role = ConsoleRole::kRead;
  nlohmann::json issuer;  // callerJson of who asked: {"uid","gid","groups","user","pid"}
  std::chrono::system_clock::time_point createdAt;
  std::chrono::system_clock::time_point expiresAt;

  nlohmann::json toJson() const;  // without the hash
};

struct IssuedToken {
  std::string token;  // "chaosd_" and 64 hex digits: shown once, never stored
  ConsoleToken record;
};

inline constexpr Duration kDefaultTokenTtl = std::chrono::hours(8);
inline constexpr Duration kMaxTokenTtl = std::chrono::hours(24 * 30);

class ConsoleTokens {
 public:
  // Loads the file (absent: no tokens). A file that does not parse is an error.
  static Result<std::unique_ptr<ConsoleTokens>> open(std::string path);

  // A new token for `issuer` (its credentials as callerJson makes them). ttl in (0, 30 days].
  Result<IssuedToken> issue(ConsoleRole role, const nlohmann::json& issuer, Duration ttl);
  // The unexpired token with this secret; nullopt for an unknown, revoked or expired one.
  std::optional<ConsoleToken> verify(const std::string& token) const;
  // The unexpired token with this id.
  std::optional<ConsoleToken> find(const std::string& id) const;
  std::vector<ConsoleToken> list() const;
  // Removes it; false when there is no such token.
  Result<bool> revoke(const std::string& id);

 private:
  explicit ConsoleTokens(std::string path) : path_(std::move(path)) {}
  Result<void> save() const;  // under mu_
  void prune();               // under mu_: drops expired tokens

  std::string path_;
  mutable std::mutex mu_;
  std::vector<ConsoleToken> tokens_;
};

// Random bytes from the kernel (getrandom) as hex: 2 * bytes digits.
Result<std::string> randomHex(size_t bytes);
// Whether two strings are equal, in time that does not depend on where they differ.
bool constantTimeEqual(const std::string& a, const std::string& b);

}  // namespace chaosd::console
