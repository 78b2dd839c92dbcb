#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// Users from the system's passwd database (files, LDAP, whatever NSS is configured with).
namespace chaosd {

// The uid of a user name. kNotFound when no such user exists.
Result<uid_t> uidByName(std::string_view name);

// The name of a uid. kNotFound when the uid has no passwd entry (common in containers).
Result<std::string> nameByUid(uid_t uid);

// A decimal uid, or nothing when the text is not one (then it is a user name).
std::optional<uid_t> parseUid(std::string_view text);

// What a `user:` selector means: a decimal uid as is, anything else a user name.
Result<uid_t> resolveUser(std::string_view nameOrUid);

}  // namespace chaosd
