#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/network/NfqueueMatches.h"

// The nftables side of network.delay through NFQUEUE: a table of the fault's own whose one
// base chain (postrouting for egress, prerouting for ingress, scoped to the target interface)
// sends matching packets to an NFQUEUE queue with the bypass flag. Built with libnftnl and
// sent over libmnl as one netlink batch (all of it or nothing), because the rule's verdict is
// not always nft's own `queue` expression: kernels built without CONFIG_NFT_QUEUE (this
// machine's) only offer the xtables NFQUEUE target, which nft's text parser cannot express but
// the compat layer runs inside an nft rule (what iptables-nft does). Every function acts in
// the calling thread's network namespace. The rules' matches: NfqueueMatches.h.
// docs/faults/network.md.
namespace chaosd::nfq {

// How a rule hands a packet to the queue.
enum class QueueVerdict {
  kNftQueue,  // nft's `queue` expression (CONFIG_NFT_QUEUE)
  kXtTarget,  // the xtables NFQUEUE target, revision 3, through nft_compat
};
std::string_view queueVerdictName(QueueVerdict v);

struct QueueTable {
  std::string name;   // chaosd_<fault id>, family inet
  std::string iface;  // the interface every rule is scoped to
  bool egress = true;
  uint16_t queue = 0;
  std::vector<PacketMatch> matches;
};

// Adds the table, its chain and rules in one batch. kUnsupported when the kernel lacks the
// verdict's expression (the batch then changed nothing).
Result<void> addQueueTable(const QueueTable& table, QueueVerdict verdict);

// Replaces every rule of the table (made by addQueueTable with the same name, chain and
// verdict) by one per match of `table`, in one batch: a flush of the table and the new rules,
// committed at once, so a packet meets the old rules or the new ones, never none. The chain
// and its hook stay (a hook unregistered drops what is queued). kNotFound (ENOENT) when the
// table is not there.
Result<void> replaceQueueRules(const QueueTable& table, QueueVerdict verdict);

// Deletes every rule of table inet `name`, keeping its chains: nothing new is queued, and no
// hook is unregistered (unregistering any hook in a namespace makes the kernel drop every
// packet queued there, nf_queue_nf_hook_drop). False when the table was not there.
Result<bool> flushTable(const std::string& name);

// Deletes table inet `name`; false when it was not there.
Result<bool> deleteTable(const std::string& name);

// Whether table inet `name` exists.
Result<bool> tableExists(const std::string& name);

// Packets counted by the rules of table inet `name` (each rule counts what it queues); nullopt
// when the table is gone.
Result<std::optional<uint64_t>> tablePackets(const std::string& name);

}  // namespace chaosd::nfq
