#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Result.h"
#include "injectors/http/HttpPolicy.h"

// The typed arguments and undo record of http.fault (injectors/http/HttpFaultInjector.h), with
// one JSON conversion each, read through RecordFields: the undo record's JSON is the journal's
// format, and fromJson never throws.
namespace chaosd {

struct HttpFaultArgs {
  std::vector<uint16_t> ports;  // the dependency's TCP ports whose new connections are redirected
  std::vector<std::string> to;  // destination CIDRs ("10.0.0.2/32"); empty: any address
  // With `refresh`: the addresses of the host names `to` gave (resolved by the type's
  // ArgResolver, HttpFaults.cpp), kept in the table's sets hosts_v4/hosts_v6 that a refresh
  // replaces. Present (even empty) means the table has the sets; `to` then holds only the
  // CIDRs given as such, and an empty `to` no longer means any address.
  std::optional<std::vector<std::string>> hostAddresses;
  int64_t refreshNs = 0;
  std::vector<http::Rule> rules;  // the first matching rule acts
  int64_t maxConnections = 1024;
  int64_t headerTimeoutNs = 10'000'000'000;
  // Destroy the namespace's established connections to the dependency once the redirect is in
  // place (sock_diag SOCK_DESTROY), so pooled clients reconnect through the proxy.
  bool resetExisting = false;

  // kInvalid naming the arg: no port, port 22, a rule without an action, a bad regex.
  static Result<HttpFaultArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// The undo record. JSON keys: faultId, table, family ("inet"), netns, mark, args. Revert needs
// only the table and the namespace: the proxy is threads of the process that applied the fault.
struct HttpFaultUndo {
  std::string faultId;
  std::string table;      // chaosd_<fault id>; fromJson refuses a table not named chaosd_*
  std::string netnsPath;  // "" for the host's
  uint32_t mark = 0;      // the proxy's upstream connections carry it; the rules skip it
  HttpFaultArgs args;

  NetnsRef netns() const;
  Result<void> belongsTo(std::string_view otherFaultId) const;

  static Result<HttpFaultUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
