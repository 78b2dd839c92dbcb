#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Result.h"
#include "injectors/dns/DnsPolicy.h"

// The typed arguments and undo record of dns.error (injectors/dns/DnsErrorInjector.h), with one
// JSON conversion each, read through RecordFields: the undo record's JSON is the journal's
// format, and fromJson never throws.
namespace chaosd {

// dns.error's normalised args.
struct DnsErrorArgs {
  std::vector<std::string> names;  // globs, as given
  std::vector<std::string> types;  // query type names; empty: every type
  dns::Action action = dns::Action::kNxdomain;
  int64_t delayNs = 0;            // action delay
  uint16_t port = 53;             // the resolvers' port the rules send to the queue
  std::string protocol = "both";  // udp, tcp, both
  int64_t limit = 1000;           // queries held at once (delay), and the kernel queue's maxlen

  // kInvalid naming the arg: no names, an unknown type or action, delay without a duration.
  static Result<DnsErrorArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// The undo record. JSON keys: faultId, table, family ("inet"), netns, iface, queue, rules, and
// the args (names, types, action, delayNs, port, protocol, limit).
struct DnsErrorUndo {
  std::string faultId;
  std::string table;      // chaosd_<fault id>; fromJson refuses a table not named chaosd_*
  std::string netnsPath;  // "" for the host's
  std::string iface;
  uint16_t queue = 0;
  std::vector<std::string> rules;  // the rules as text, for people
  DnsErrorArgs args;

  NetnsRef netns() const;
  // kInvalid when the record belongs to another fault; "" accepts any.
  Result<void> belongsTo(std::string_view otherFaultId) const;

  static Result<DnsErrorUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
