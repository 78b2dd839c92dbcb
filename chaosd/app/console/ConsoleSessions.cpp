#include "chaosd/app/console/ConsoleSessions.h"

#include <algorithm>

namespace chaosd::console {

Result<ConsoleSession> ConsoleSessions::create(const ConsoleToken& token) {
  auto id = randomHex(32);
  if (!id) return id.error();
  auto csrf = randomHex(32);
  if (!csrf) return csrf.error();
  const auto now = std::chrono::system_clock::now();
  ConsoleSession s{*id,        *csrf,        token.id,
                   token.role, token.issuer, std::min(token.expiresAt, now + kMaxLifetime)};
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [&](const auto& entry) { return entry.second.expiresAt <= now; });
  if (sessions_.size() >= kMaxSessions) {
    auto soonest = std::min_element(
        sessions_.begin(), sessions_.end(),
        [](const auto& a, const auto& b) { return a.second.expiresAt < b.second.expiresAt; });
    sessions_.erase(soonest);
  }
  sessions_[s.id] = s;
  return s;
}

std::optional<ConsoleSession> ConsoleSessions::find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expiresAt <= std::chrono::system_clock::now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void ConsoleSessions::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

size_t ConsoleSessions::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace chaosd::console
