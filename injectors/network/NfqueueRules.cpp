#include "injectors/network/NfqueueRules.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

namespace chaosd::nfq {
namespace {

constexpr int kPriority = -300;  // before conntrack and NAT, like the partition's chains
constexpr uint32_t kReg = NFT_REG_1;

struct SocketCloser {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using Socket = std::unique_ptr<mnl_socket, SocketCloser>;
struct TableFree {
  void operator()(nftnl_table* t) const { nftnl_table_free(t); }
};
struct ChainFree {
  void operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
};
struct RuleFree {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};

// A netfilter netlink socket of the calling thread's namespace.
Result<Socket> openSocket() {
  Socket nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!nl) return Error::fromErrno("opening a netfilter netlink socket", errno);
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return Error::fromErrno("binding a netfilter netlink socket", errno);
  }
  int one = 1;
  // Errors without the echoed request: an ack of a large batch fits a small buffer.
  (void)mnl_socket_setsockopt(nl.get(), NETLINK_CAP_ACK, &one, sizeof one);
  timeval timeout{5, 0};  // the kernel always answers; this only bounds a bug
  (void)::setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                     sizeof timeout);
  return nl;
}

// Receives until every message in [firstSeq, lastSeq] (each sent with NLM_F_ACK) is answered,
// or the batch as a whole is refused. The first error, as the errno it carries.
Result<void> awaitAcks(mnl_socket* nl, uint32_t batchSeq, uint32_t firstSeq, uint32_t lastSeq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  uint32_t pending = lastSeq - firstSeq + 1;
  int firstError = 0;
  while (pending > 0) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("reading nftables' answer", errno);
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (err->error != 0 && firstError == 0) firstError = -err->error;
      if (nlh->nlmsg_seq == batchSeq) {
        pending = 0;  // the batch itself was refused: nothing else will answer
        break;
      }
      if (nlh->nlmsg_seq >= firstSeq && nlh->nlmsg_seq <= lastSeq) --pending;
    }
  }
  if (firstError != 0) return Error::fromErrno("nftables refused the batch", firstError);
  return success();
}

// One transaction: begin, the messages `fill` puts, end; every message acknowledged.
class Batch {
 public:
  explicit Batch(size_t bytes) : buf_(bytes), batch_(mnl_nlmsg_batch_start(buf_.data(), bytes)) {
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    mnl_nlmsg_batch_next(batch_);
    first_ = seq_;
  }
  ~Batch() { mnl_nlmsg_batch_stop(batch_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  nlmsghdr* add(uint16_t type, uint16_t flags) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), type,
                                          NFPROTO_INET, flags | NLM_F_ACK, seq_++);
    return nlh;
  }
  // After each add: false when the buffer is full.
  bool next() { return mnl_nlmsg_batch_next(batch_); }

  Result<void> send() {
    const uint32_t last = seq_ - 1;
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    mnl_nlmsg_batch_next(batch_);
    auto nl = openSocket();
    if (!nl) return std::move(nl).error();
    if (mnl_socket_sendto(nl->get(), mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_)) <
        0) {
      return Error::fromErrno("sending an nftables batch", errno);
    }
    return awaitAcks(nl->get(), 0, first_, last);
  }

 private:
  std::vector<char> buf_;
  mnl_nlmsg_batch* batch_;
  uint32_t seq_ = 0;
  uint32_t first_ = 0;
};

// ---- expressions ----

void addExpr(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

void meta(nftnl_rule* r, uint32_t key) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, kReg);
  addExpr(r, e);
}

void cmp(nftnl_rule* r, uint32_t op, const void* data, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, kReg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  addExpr(r, e);
}

void payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, kReg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  addExpr(r, e);
}

void address(nftnl_rule* r, const units::Cidr& c, bool destination) {
  const bool v6 = c.family == AF_INET6;
  const uint32_t len = v6 ? 16 : 4;
  if (c.prefix == 0) return;  // the family compare already says all there is
  payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? (destination ? 24 : 8) : (destination ? 16 : 12),
          len);
  if (static_cast<uint32_t>(c.prefix) < len * 8) {
    unsigned char mask[16] = {};
    unsigned char zero[16] = {};
    for (int bit = 0; bit < c.prefix; ++bit)
      mask[bit / 8] |= static_cast<unsigned char>(0x80 >> (bit % 8));
    nftnl_expr* e = nftnl_expr_alloc("bitwise");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, kReg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, kReg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
    addExpr(r, e);
  }
  cmp(r, NFT_CMP_EQ, c.addr, len);
}

void port(nftnl_rule* r, const units::PortRange& p, bool destination) {
  payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, destination ? 2 : 0, 2);
  // Big-endian bytes compare (memcmp) in numeric order.
  const uint16_t first = htons(p.first);
  const uint16_t last = htons(p.last);
  if (p.first == p.last) {
    cmp(r, NFT_CMP_EQ, &first, 2);
  } else {
    cmp(r, NFT_CMP_GTE, &first, 2);
    cmp(r, NFT_CMP_LTE, &last, 2);
  }
}

void counter(nftnl_rule* r) { addExpr(r, nftnl_expr_alloc("counter")); }

void queueVerdict(nftnl_rule* r, uint16_t queue, QueueVerdict verdict) {
  if (verdict == QueueVerdict::kNftQueue) {
    nftnl_expr* e = nftnl_expr_alloc("queue");
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, queue);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, 1);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
    addExpr(r, e);
    return;
  }
  // nft_compat wants the target's info at its aligned size (8 bytes for v3's 6). libnftnl
  // keeps the pointer it is given and frees it with the expression: a malloc'd copy.
  xt_NFQ_info_v3 v3{};
  v3.queuenum = queue;
  v3.queues_total = 1;  // the target refuses 0
  v3.flags = NFQ_FLAG_BYPASS;
  constexpr size_t kInfoLen = XT_ALIGN(sizeof(xt_NFQ_info_v3));
  void* info = std::calloc(1, kInfoLen);
  std::memcpy(info, &v3, sizeof v3);
  nftnl_expr* e = nftnl_expr_alloc("target");
  nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
  nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
  nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, kInfoLen);
  addExpr(r, e);
}

std::unique_ptr<nftnl_rule, RuleFree> buildRule(const QueueTable& t, const std::string& chain,
                                                const PacketMatch& m, QueueVerdict verdict) {
  std::unique_ptr<nftnl_rule, RuleFree> r(nftnl_rule_alloc());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, t.name.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  char ifname[IFNAMSIZ] = {};
  std::strncpy(ifname, t.iface.c_str(), IFNAMSIZ - 1);
  meta(r.get(), t.egress ? NFT_META_OIFNAME : NFT_META_IIFNAME);
  cmp(r.get(), NFT_CMP_EQ, ifname, IFNAMSIZ);
  if (m.family != 0) {
    const uint8_t proto = m.family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    meta(r.get(), NFT_META_NFPROTO);
    cmp(r.get(), NFT_CMP_EQ, &proto, 1);
  }
  if (m.l4proto) {
    meta(r.get(), NFT_META_L4PROTO);
    cmp(r.get(), NFT_CMP_EQ, &*m.l4proto, 1);
  }
  if (m.dst) address(r.get(), *m.dst, true);
  if (m.src) address(r.get(), *m.src, false);
  if (m.dport) port(r.get(), *m.dport, true);
  if (m.sport) port(r.get(), *m.sport, false);
  counter(r.get());
  queueVerdict(r.get(), t.queue, verdict);
  return r;
}

// One NEWRULE per match, appended to the table's chain.
Result<void> addRules(Batch& batch, const QueueTable& t, QueueVerdict verdict) {
  const std::string chainName = t.egress ? "egress" : "ingress";
  for (const auto& m : t.matches) {
    auto rule = buildRule(t, chainName, m, verdict);
    nftnl_rule_nlmsg_build_payload(batch.add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND),
                                   rule.get());
    if (!batch.next()) return Error(ErrorCode::kInternal, "nftables batch buffer too small");
  }
  return success();
}

}  // namespace

Result<void> replaceQueueRules(const QueueTable& t, QueueVerdict verdict) {
  Batch batch(8192 + t.matches.size() * 2048);
  std::unique_ptr<nftnl_rule, RuleFree> flush(nftnl_rule_alloc());
  nftnl_rule_set_u32(flush.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  // A table and no chain: every rule of the table, in the same transaction as the new ones.
  nftnl_rule_set_str(flush.get(), NFTNL_RULE_TABLE, t.name.c_str());
  nftnl_rule_nlmsg_build_payload(batch.add(NFT_MSG_DELRULE, 0), flush.get());
  batch.next();
  CHAOSD_TRY(addRules(batch, t, verdict));
  auto sent = batch.send();
  if (!sent && sent.error().sysErrno() == ENOENT) {
    return Error(ErrorCode::kNotFound, "table inet " + t.name + " is not there", ENOENT);
  }
  if (!sent)
    return std::move(sent).error().withContext("replacing the rules of table inet " + t.name);
  return success();
}

std::string_view queueVerdictName(QueueVerdict v) {
  return v == QueueVerdict::kNftQueue ? "nft queue" : "xt NFQUEUE v3 (nft_compat)";
}

Result<void> addQueueTable(const QueueTable& t, QueueVerdict verdict) {
  Batch batch(8192 + t.matches.size() * 2048);
  std::unique_ptr<nftnl_table, TableFree> table(nftnl_table_alloc());
  nftnl_table_set_u32(table.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, t.name.c_str());
  // EXCL: a table of this name already there is someone's (or a leftover): never merge into it.
  nftnl_table_nlmsg_build_payload(batch.add(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL),
                                  table.get());
  batch.next();
  const std::string chainName = t.egress ? "egress" : "ingress";
  std::unique_ptr<nftnl_chain, ChainFree> chain(nftnl_chain_alloc());
  nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_TABLE, t.name.c_str());
  nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_NAME, chainName.c_str());
  nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_HOOKNUM,
                      t.egress ? NF_INET_POST_ROUTING : NF_INET_PRE_ROUTING);
  nftnl_chain_set_s32(chain.get(), NFTNL_CHAIN_PRIO, kPriority);
  nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  nftnl_chain_nlmsg_build_payload(batch.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE), chain.get());
  batch.next();
  CHAOSD_TRY(addRules(batch, t, verdict));
  auto sent = batch.send();
  if (!sent && sent.error().sysErrno() == ENOENT) {
    // The expression (or target) type is unknown to this kernel: nft_queue or nft_compat
    // missing. The batch was aborted whole.
    return Error(ErrorCode::kUnsupported,
                 std::string(queueVerdictName(verdict)) + " is not available in this kernel",
                 ENOENT);
  }
  if (!sent) return std::move(sent).error().withContext("adding table inet " + t.name);
  return success();
}

namespace {

// Sends a batch of the one message `build` adds; false when the kernel answers that what it
// names does not exist (ENOENT), so a second delete or flush is not an error.
Result<bool> sendOne(const std::function<void(Batch&)>& build, const std::string& what) {
  Batch batch(8192);
  build(batch);
  batch.next();
  auto sent = batch.send();
  if (!sent && sent.error().sysErrno() == ENOENT) return false;
  if (!sent) return std::move(sent).error().withContext(what);
  return true;
}

}  // namespace

Result<bool> deleteTable(const std::string& name) {
  return sendOne(
      [&name](Batch& batch) {
        std::unique_ptr<nftnl_table, TableFree> table(nftnl_table_alloc());
        nftnl_table_set_u32(table.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, name.c_str());
        nftnl_table_nlmsg_build_payload(batch.add(NFT_MSG_DELTABLE, 0), table.get());
      },
      "deleting table inet " + name);
}

Result<bool> flushTable(const std::string& name) {
  return sendOne(
      [&name](Batch& batch) {
        std::unique_ptr<nftnl_rule, RuleFree> rule(nftnl_rule_alloc());
        nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
        // A table and no chain: every chain of the table is flushed.
        nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, name.c_str());
        nftnl_rule_nlmsg_build_payload(batch.add(NFT_MSG_DELRULE, 0), rule.get());
      },
      "flushing table inet " + name);
}

Result<bool> tableExists(const std::string& name) {
  auto nl = openSocket();
  if (!nl) return std::move(nl).error();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  std::unique_ptr<nftnl_table, TableFree> table(nftnl_table_alloc());
  nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, name.c_str());
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, 1);
  nftnl_table_nlmsg_build_payload(nlh, table.get());
  if (mnl_socket_sendto(nl->get(), nlh, nlh->nlmsg_len) < 0) {
    return Error::fromErrno("asking nftables for table " + name, errno);
  }
  auto answered = awaitAcks(nl->get(), 0, 1, 1);
  if (!answered && answered.error().sysErrno() == ENOENT) return false;
  if (!answered) return std::move(answered).error();
  return true;
}

Result<std::optional<uint64_t>> tablePackets(const std::string& name) {
  auto exists = tableExists(name);
  if (!exists) return std::move(exists).error();
  if (!*exists) return std::optional<uint64_t>();
  auto nl = openSocket();
  if (!nl) return std::move(nl).error();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 8);
  std::unique_ptr<nftnl_rule, RuleFree> filter(nftnl_rule_alloc());
  nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, name.c_str());
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, 1);
  nftnl_rule_nlmsg_build_payload(nlh, filter.get());
  if (mnl_socket_sendto(nl->get(), nlh, nlh->nlmsg_len) < 0) {
    return Error::fromErrno("dumping the rules of table " + name, errno);
  }
  uint64_t packets = 0;
  auto onRule = [](const nlmsghdr* msg, void* data) -> int {
    std::unique_ptr<nftnl_rule, RuleFree> rule(nftnl_rule_alloc());
    if (nftnl_rule_nlmsg_parse(msg, rule.get()) < 0) return MNL_CB_ERROR;
    nftnl_expr_foreach(
        rule.get(),
        [](nftnl_expr* e, void* sum) -> int {
          if (std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
            *static_cast<uint64_t*>(sum) += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
          }
          return 0;
        },
        data);
    return MNL_CB_OK;
  };
  const unsigned portid = mnl_socket_get_portid(nl->get());
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl->get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("reading the rules of table " + name, errno);
    }
    const int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), 1, portid, onRule, &packets);
    if (rc == MNL_CB_STOP) break;
    if (rc < 0) {
      if (errno == ENOENT) return std::optional<uint64_t>();
      return Error::fromErrno("parsing the rules of table " + name, errno);
    }
  }
  return std::optional<uint64_t>(packets);
}

}  // namespace chaosd::nfq
