#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/Result.h"
#include "chaosd/base/Units.h"

// The typed arguments and undo records of the nftables faults: network.partition, network.loss
// with backend nftables, and the run's table they share (injectors/network/NftablesInjector.h).
// Each is read from JSON once, by its fromJson, and written by its toJson; the code that acts
// reads only the structs. An undo record's JSON is the journal's format: records journalled by
// an earlier release must still parse and revert, so a key is never renamed or retyped. fromJson
// never throws: a corrupt record is a kInvalid value (the guardian reverts from these records).
namespace chaosd {

// One side of a packet filter: addresses and ports. Empty lists match everything.
struct NftEndpoint {
  std::vector<std::string> cidrs;  // normalised CIDRs: "10.0.0.2/32", "fd00::/64"
  std::vector<units::PortRange> ports;
  // The addresses of host names a refresh follows (HostFilters.h, `refresh`): plain addresses,
  // kept apart from `cidrs` because the fault holds them in a set of its own that a refresh
  // replaces. Empty without `refresh` (the names' addresses are then in `cidrs`).
  std::vector<std::string> hostAddresses;

  // The keys `cidr` (strings), `hostAddresses` (strings) and `ports` ({first, last}; last
  // defaults to first) of an object; other keys are ignored, so a partition's args (top-level
  // cidr and ports) parse too.
  static Result<NftEndpoint> fromJson(const nlohmann::json& j);
  nlohmann::json toJson() const;  // the non-empty lists only
};

// network.partition's args, normalised (ArgSchema defaults filled in).
struct NftPartitionArgs {
  NftEndpoint peers;
  std::string protocol = "all";    // all, tcp, udp, icmp
  std::string direction = "both";  // to: ours to the peers; from: theirs to us; both
  bool reject = false;             // a TCP reset / ICMP unreachable instead of a silent drop

  static Result<NftPartitionArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// network.loss's args as the nftables backend takes them. fromJson fails with kUnsupported when
// an arg only netem does is set.
struct NftLossArgs {
  double loss = 0;     // share of packets dropped, 0..1
  bool egress = true;  // egress: packets sent that match `to`; ingress: received, matching `from`
  NftEndpoint to;
  NftEndpoint from;
  std::string protocol = "all";

  static Result<NftLossArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// The undo record of a partition or an nftables loss: the fault's rules in the run's table.
// JSON keys: faultId, table, family ("inet"), netns, iface, comment, script; with `refresh`
// also faultType, hostSet and hostAddresses (records without them have no host set).
struct NftRuleUndo {
  std::string faultId;
  std::string table;      // chaosd_run_<run id>; fromJson refuses a table not named chaosd_*
  std::string netnsPath;  // the namespace's file; "" for the host's
  std::string iface;
  std::string comment;  // "chaosd:<fault id>", on every rule of the fault
  std::string script;   // the nft commands that add the sets and the rules
  // With `refresh`: the fault type (to rebuild the rules), and the two named sets of the
  // fault (<hostSet>_v4, <hostSet>_v6, in the run's table) holding the names' addresses, which
  // a refresh replaces in one transaction and a revert deletes whole. "": none.
  std::string faultType;
  std::string hostSet;
  std::vector<std::string> hostAddresses;  // what the sets hold (this record's state)

  NetnsRef netns() const;
  // kInvalid when the record belongs to another fault; "" accepts any.
  Result<void> belongsTo(std::string_view otherFaultId) const;

  static Result<NftRuleUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// The undo record of the run's table (the shared need). JSON keys: table, family ("inet"),
// netns, script.
struct NftTableUndo {
  std::string table;      // chaosd_run_<run id>; fromJson refuses a table not named chaosd_*
  std::string netnsPath;  // "" for the host's
  std::string script;     // the nft commands that add the table and its base chains

  NetnsRef netns() const;

  static Result<NftTableUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

// The namespace an undo record names by its path: the one place a record's "netns" becomes a
// reference ("" is the host's).
NetnsRef netnsAtPath(const std::string& path);

// Whether a table name is one of ours ("chaosd_" prefix): no record makes us touch another.
bool isChaosdTable(std::string_view table);

// kInvalid when a record of fault `recorded` is used for fault `asked` ("" accepts any).
Result<void> sameFault(std::string_view recorded, std::string_view asked);

// A record as text for an error message; never throws (invalid UTF-8 is replaced).
std::string recordText(const nlohmann::json& j);

// The converters' common frame: kInvalid unless `j` is an object, then `read`, with every JSON
// exception (a wrong type) turned into kInvalid instead of escaping. `what` names the record,
// with its article ("an nftables undo record").
template <typename T>
Result<T> parseJsonObject(std::string_view what, const nlohmann::json& j,
                          Result<T> (*read)(const nlohmann::json&)) {
  if (!j.is_object()) {
    return Error(ErrorCode::kInvalid, "not " + std::string(what) + ": " + recordText(j));
  }
  try {
    return read(j);
  } catch (const nlohmann::json::exception& e) {
    return Error(ErrorCode::kInvalid,
                 "not " + std::string(what) + " (" + e.what() + "): " + recordText(j));
  }
}

}  // namespace chaosd
