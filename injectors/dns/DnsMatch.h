#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// Which DNS queries a dns.error fault acts on: a name glob and, optionally, query types. Kept
// apart from the packet handling so it is tested without root. docs/faults/dns.md.
namespace chaosd::dns {

// A name as the matcher compares it: lower case, without the root's trailing dot.
std::string normalizeName(std::string_view name);

// Whether `name` matches `glob` (both normalised first): `*` matches any run of characters,
// dots included (`*.db.internal` matches a.db.internal and a.b.db.internal, not db.internal),
// `?` one character, `[...]` a class (fnmatch without FNM_PERIOD).
bool globMatches(std::string_view glob, std::string_view name);

// The number of a query type from its name (A, AAAA, SRV, TYPE65, case-insensitive), through
// ldns; kInvalid for a name ldns does not know.
Result<uint16_t> queryTypeNumber(std::string_view name);

// A type's name for reports ("A", "TYPE65534" for one without a mnemonic).
std::string queryTypeName(uint16_t type);

// Names and types, compiled once: matches(name, type) is true when the name matches any glob
// and (when types were given) the type is one of them.
class QueryMatcher {
 public:
  // kInvalid naming the glob or the type that is wrong: an empty glob, no glob, an unknown type.
  static Result<QueryMatcher> create(const std::vector<std::string>& globs,
                                     const std::vector<std::string>& types);
  bool matches(std::string_view name, uint16_t type) const;

 private:
  std::vector<std::string> globs_;  // normalised
  std::vector<uint16_t> types_;     // empty: every type
};

}  // namespace chaosd::dns
