#include "chaosd/app/console/ConsoleTokens.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>

#include "chaosd/base/Sha256.h"

namespace chaosd::console {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

int64_t epochSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Clock::time_point fromEpoch(int64_t s) { return Clock::time_point(std::chrono::seconds(s)); }

}  // namespace

std::string_view roleName(ConsoleRole role) {
  return role == ConsoleRole::kOperate ? "operate" : "read";
}

std::optional<ConsoleRole> roleFromName(std::string_view name) {
  if (name == "read") return ConsoleRole::kRead;
  if (name == "operate") return ConsoleRole::kOperate;
  return std::nullopt;
}

json ConsoleToken::toJson() const {
  return {{"id", id},
          {"role", std::string(roleName(role))},
          {"issuer", issuer},
          {"createdAt", epochSeconds(createdAt)},
          {"expiresAt", epochSeconds(expiresAt)}};
}

Result<std::string> randomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("getrandom", errno);
    }
    got += static_cast<size_t>(n);
  }
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool constantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

Result<std::unique_ptr<ConsoleTokens>> ConsoleTokens::open(std::string path) {
  std::unique_ptr<ConsoleTokens> store(new ConsoleTokens(std::move(path)));
  std::ifstream in(store->path_);
  if (!in) return store;
  json doc = json::parse(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(),
                         nullptr, false);
  if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) {
    return Error(ErrorCode::kInvalid, store->path_ + " is not a console token file");
  }
  for (const auto& t : doc["tokens"]) {
    auto role = roleFromName(t.value("role", ""));
    if (!t.is_object() || !role || !t.value("hash", "").size()) {
      return Error(ErrorCode::kInvalid, store->path_ + ": a token entry is damaged");
    }
    store->tokens_.push_back(
        {t.value("id", ""), t.value("hash", ""), *role, t.value("issuer", json::object()),
         fromEpoch(t.value("createdAt", int64_t{0})), fromEpoch(t.value("expiresAt", int64_t{0}))});
  }
  return store;
}

Result<void> ConsoleTokens::save() const {
  json doc = {{"tokens", json::array()}};
  for (const auto& t : tokens_) {
    json j = t.toJson();
    j["hash"] = t.hash;
    doc["tokens"].push_back(j);
  }
  const std::string text = doc.dump(2) + "\n";
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::fromErrno("open " + tmp, errno);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ok && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    if (ok) e = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno("write " + path_, e);
  }
  return success();
}

void ConsoleTokens::prune() {
  const auto now = Clock::now();
  std::erase_if(tokens_, [&](const ConsoleToken& t) { return t.expiresAt <= now; });
}

Result<IssuedToken> ConsoleTokens::issue(ConsoleRole role, const json& issuer, Duration ttl) {
  if (ttl <= Duration::zero() || ttl > kMaxTokenTtl) {
    return Error(ErrorCode::kInvalid, "a token lives more than 0s and at most 30 days, not " +
                                          units::formatDuration(ttl));
  }
  auto secret = randomHex(32);
  if (!secret) return secret.error();
  auto id = randomHex(6);
  if (!id) return id.error();
  IssuedToken out;
  out.token = "chaosd_" + *secret;
  const auto now = Clock::now();
  out.record = {*id,  sha256Hex(out.token),
                role, issuer,
                now,  now + std::chrono::duration_cast<Clock::duration>(ttl)};
  std::lock_guard lock(mu_);
  prune();
  tokens_.push_back(out.record);
  if (auto r = save(); !r) {
    tokens_.pop_back();
    return r.error();
  }
  return out;
}

std::optional<ConsoleToken> ConsoleTokens::verify(const std::string& token) const {
  const std::string hash = sha256Hex(token);
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  std::optional<ConsoleToken> found;
  for (const auto& t : tokens_) {
    // Every entry is compared, so the time taken does not say which one matched.
    if (constantTimeEqual(t.hash, hash) && t.expiresAt > now) found = t;
  }
  return found;
}

std::optional<ConsoleToken> ConsoleTokens::find(const std::string& id) const {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  for (const auto& t : tokens_) {
    if (t.id == id && t.expiresAt > now) return t;
  }
  return std::nullopt;
}

std::vector<ConsoleToken> ConsoleTokens::list() const {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  std::vector<ConsoleToken> out;
  for (const auto& t : tokens_) {
    if (t.expiresAt > now) out.push_back(t);
  }
  return out;
}

Result<bool> ConsoleTokens::revoke(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(tokens_.begin(), tokens_.end(),
                         [&](const ConsoleToken& t) { return t.id == id; });
  if (it == tokens_.end()) return false;
  ConsoleToken removed = *it;
  tokens_.erase(it);
  if (auto r = save(); !r) {
    tokens_.push_back(removed);
    return r.error();
  }
  return true;
}

}  // namespace chaosd::console
