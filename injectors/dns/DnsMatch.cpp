#include "injectors/dns/DnsMatch.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>

extern "C" {
#include <ldns/ldns.h>
}

namespace chaosd::dns {

std::string normalizeName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool globMatches(std::string_view glob, std::string_view name) {
  const std::string g = normalizeName(glob);
  const std::string n = normalizeName(name);
  return ::fnmatch(g.c_str(), n.c_str(), 0) == 0;
}

Result<uint16_t> queryTypeNumber(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const ldns_rr_type t = ldns_get_rr_type_by_name(upper.c_str());
  if (t == 0) {
    return Error(ErrorCode::kInvalid,
                 "'" + std::string(name) + "' is not a DNS query type (A, AAAA, SRV, TXT, ...)");
  }
  return static_cast<uint16_t>(t);
}

std::string queryTypeName(uint16_t type) {
  char* text = ldns_rr_type2str(static_cast<ldns_rr_type>(type));
  if (text == nullptr) return "TYPE" + std::to_string(type);
  std::string out(text);
  ::free(text);
  return out;
}

Result<QueryMatcher> QueryMatcher::create(const std::vector<std::string>& globs,
                                          const std::vector<std::string>& types) {
  if (globs.empty()) return Error(ErrorCode::kInvalid, "names: give at least one name or glob");
  QueryMatcher m;
  for (const auto& g : globs) {
    const std::string n = normalizeName(g);
    if (n.empty()) return Error(ErrorCode::kInvalid, "names: an empty name matches nothing");
    m.globs_.push_back(n);
  }
  for (const auto& t : types) {
    auto number = queryTypeNumber(t);
    if (!number) return std::move(number).error().withContext("types");
    m.types_.push_back(*number);
  }
  return m;
}

bool QueryMatcher::matches(std::string_view name, uint16_t type) const {
  if (!types_.empty() && std::find(types_.begin(), types_.end(), type) == types_.end()) {
    return false;
  }
  const std::string n = normalizeName(name);
  return std::any_of(globs_.begin(), globs_.end(), [&n](const std::string& g) {
    return ::fnmatch(g.c_str(), n.c_str(), 0) == 0;
  });
}

}  // namespace chaosd::dns
