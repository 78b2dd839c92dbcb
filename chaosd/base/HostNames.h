#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

// Host names in packet filters: their syntax (checked where the experiment is parsed, with
// the line and column) and their resolution (when a fault is prepared, through the system's
// resolver: /etc/hosts, DNS, whatever nsswitch.conf says).
namespace chaosd {

// A DNS host name (RFC 1123 labels: letters, digits, '-' and '_', 1-63 each, 253 in all, an
// optional final dot) or an IPv4/IPv6 address literal. Returns it lowercased, without the
// final dot; kInvalid saying what is wrong.
Result<std::string> checkHostName(std::string_view text);

// Every IPv4 and IPv6 address `name` resolves to (A and AAAA through getaddrinfo), sorted and
// without duplicates. kNotFound (with the resolver's reason) when it resolves to nothing.
Result<std::vector<std::string>> resolveHostName(const std::string& name);

}  // namespace chaosd
