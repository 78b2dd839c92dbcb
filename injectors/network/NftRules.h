#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/NftRecords.h"

// The nft text of the nftables faults (injectors/network/NftablesInjector.h): the run's table
// with its two base chains, and a fault's rules, each tagged with the fault's comment. Pure
// text, tested without root.
namespace chaosd {

// The rules of a partition, a reset or an nftables loss, for the output and input base chains,
// and, when the filter follows host names (`refresh`), the fault's two named sets that hold
// their addresses (<hostSet>_v4, <hostSet>_v6): the rules match `@set`, so a refresh changes
// the sets' elements and never a rule.
struct NftablesRules {
  std::vector<std::string> out;
  std::vector<std::string> in;
  std::string hostSet;                     // "" when the filter has no host set
  std::vector<std::string> hostAddresses;  // the sets' elements
};

// `iface` scopes every rule to the target interface. A partition drops (or rejects) what goes
// to or comes from the peers; a loss drops a share, drawn by a random-number match. `hostSet`
// (nftablesHostSet) names the sets of the peers' hostAddresses; "" when they have none.
NftablesRules nftablesRules(const NftPartitionArgs& args, const std::string& iface,
                            const std::string& hostSet = "");
NftablesRules nftablesRules(const NftLossArgs& args, const std::string& iface,
                            const std::string& hostSet = "");
// A reset (network.reset): every TCP segment to (egress) or from (ingress) the peers answered
// with a TCP reset, new and established connections alike; each rule counts what it rejected.
// The partition args' protocol and reject are not used.
NftablesRules nftablesResetRules(const NftPartitionArgs& args, const std::string& iface,
                                 const std::string& hostSet = "");
// The same from the fault type and its normalised args, parsed by the type's args struct;
// kInvalid for a type the nftables backend does not do. The peers' hostAddresses (args with
// `refresh`) go into the sets of nftablesHostSet(faultId).
Result<NftablesRules> nftablesRules(const std::string& faultType, const std::string& iface,
                                    const nlohmann::json& args, const std::string& faultId = "");

// The base name of a fault's host sets: "hosts_<fault id>", non-alphanumerics as '_'.
std::string nftablesHostSet(const std::string& faultId);
// One transaction that makes the sets hold exactly `addresses`: flush both, add the new
// elements (nf_tables commits a batch at once: a packet sees the old elements or the new).
std::string nftablesHostSetUpdate(const std::string& table, const std::string& hostSet,
                                  const std::vector<std::string>& addresses);

// The run's table with its two empty base chains.
std::string nftablesTableScript(const std::string& table);
// The fault's sets (when it has any) and rules added to that table, each rule tagged with the
// fault's comment.
std::string nftablesFaultScript(const std::string& table, const std::string& faultId,
                                const NftablesRules& rules);

// The run's table: `inet chaosd_run_<run id>`, the id's non-alphanumerics as '_'.
std::string nftablesRunTable(const std::string& runId);
// A table of one fault's own (network.delay through NFQUEUE, dns.error, http.fault):
// `chaosd_<fault id>`, the id's non-alphanumerics as '_'.
std::string nftablesFaultTable(const std::string& faultId);
// The comment on every rule of a fault: "chaosd:<fault id>".
std::string nftablesRuleComment(const std::string& faultId);

}  // namespace chaosd
