#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Result.h"
#include "injectors/network/NftRecords.h"

// The typed arguments and undo record of network.delay through NFQUEUE
// (injectors/network/NfqueueDelay.h), with one JSON conversion each, as in NftRecords.h: the
// undo record's JSON is the journal's format, and fromJson never throws.
namespace chaosd {

// The packet filter of a delay: its `to`, `from` and `protocol` args. A key not given stays
// absent (the undo record carries the filter as it was given).
struct NfqueueFilter {
  std::optional<NftEndpoint> to;
  std::optional<NftEndpoint> from;
  std::optional<std::string> protocol;  // all, tcp, udp, icmp; absent: all

  // The keys to, from and protocol of an object (the args, or the undo record's filter).
  static Result<NfqueueFilter> fromJson(const nlohmann::json& j);
  nlohmann::json toJson() const;
};

// network.delay's args as the NFQUEUE backend takes them. fromJson fails with kUnsupported for
// an arg only netem does or a distribution this backend cannot draw (paretonormal), and with
// kInvalid without a delay.
struct NfqueueDelayArgs {
  int64_t delayNs = 0;
  int64_t jitterNs = 0;
  std::string distribution = "uniform";  // uniform, normal, pareto
  int64_t limit = 1000;                  // packets held at once (and the kernel queue's maxlen)
  bool egress = true;
  NfqueueFilter filter;

  static Result<NfqueueDelayArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// The undo record of an NFQUEUE delay. JSON keys: faultId, table, family ("inet"), netns, iface,
// direction, filter, rules, queue, delayNs, jitterNs, distribution, limit, seed.
struct NfqueueDelayUndo {
  std::string faultId;
  std::string table;      // chaosd_<fault id>; fromJson refuses a table not named chaosd_*
  std::string netnsPath;  // "" for the host's
  std::string iface;
  bool egress = true;
  NfqueueFilter filter;
  std::vector<std::string> rules;  // the filter's rules as text, for people
  uint16_t queue = 0;
  int64_t delayNs = 0;
  int64_t jitterNs = 0;
  std::string distribution = "uniform";
  int64_t limit = 1000;
  uint64_t seed = 0;  // of the delay sampler, so a run can be replayed

  NetnsRef netns() const;
  // kInvalid when the record belongs to another fault; "" accepts any.
  Result<void> belongsTo(std::string_view otherFaultId) const;

  static Result<NfqueueDelayUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
