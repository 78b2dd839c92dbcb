#include "chaosd/base/Users.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <vector>

namespace chaosd {
namespace {

// getpw*_r need a caller-sized buffer; entries from NSS backends can exceed the
// advertised maximum, so grow on ERANGE instead of trusting sysconf alone.
template <typename Lookup>
Result<passwd> lookupPasswd(std::string_view what, std::vector<char>& buffer, Lookup lookup) {
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  buffer.resize(hint > 0 ? static_cast<size_t>(hint) : 4096);
  for (;;) {
    passwd entry{};
    passwd* found = nullptr;
    int rc = lookup(&entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1U << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    // POSIX lets "not found" be reported as 0 or as one of these codes.
    if (rc == 0 && found == nullptr) rc = ENOENT;
    if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) {
      return Error(ErrorCode::kNotFound, "no such user: " + std::string(what));
    }
    if (rc != 0) return Error::fromErrno("looking up user " + std::string(what), rc);
    return entry;
  }
}

}  // namespace

Result<uid_t> uidByName(std::string_view name) {
  std::string key(name);
  std::vector<char> buffer;
  auto entry = lookupPasswd(name, buffer, [&](passwd* pw, char* buf, size_t len, passwd** out) {
    return ::getpwnam_r(key.c_str(), pw, buf, len, out);
  });
  if (!entry) return std::move(entry).error();
  return entry->pw_uid;
}

Result<std::string> nameByUid(uid_t uid) {
  std::vector<char> buffer;
  auto entry = lookupPasswd("uid " + std::to_string(uid), buffer,
                            [&](passwd* pw, char* buf, size_t len, passwd** out) {
                              return ::getpwuid_r(uid, pw, buf, len, out);
                            });
  if (!entry) return std::move(entry).error();
  return std::string(entry->pw_name);
}

std::optional<uid_t> parseUid(std::string_view text) {
  uid_t uid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), uid);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return uid;
}

Result<uid_t> resolveUser(std::string_view nameOrUid) {
  if (nameOrUid.empty()) return Error(ErrorCode::kInvalid, "empty user");
  if (auto uid = parseUid(nameOrUid)) return *uid;
  return uidByName(nameOrUid);
}

}  // namespace chaosd
