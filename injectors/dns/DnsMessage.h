#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// DNS messages through ldns (Debian's libldns): what a dns.error fault reads of a query and
// the error answer it builds from one. No DNS wire format is written by hand here.
namespace chaosd::dns {

// The answer a fault gives instead of the resolver's.
enum class Rcode : uint8_t { kServfail = 2, kNxdomain = 3, kRefused = 5 };

struct Query {
  uint16_t id = 0;
  std::string name;  // as asked, without the trailing dot ("a.db.internal")
  uint16_t type = 0;
};

// The first question of a standard query (QR=0, opcode QUERY, one question or more); nullopt
// for anything else: an answer, a malformed message, another opcode.
std::optional<Query> parseQuery(const uint8_t* data, size_t len);

// The answer a recursive resolver gives to the query in `data` with `rcode`: the same id,
// opcode, RD and CD, the question, QR and RA set, no records; an OPT record when the query
// had one (the EDNS payload size 1232). kInvalid when `data` is not a query.
Result<std::vector<uint8_t>> errorAnswer(const uint8_t* data, size_t len, Rcode rcode);

}  // namespace chaosd::dns
