#include "injectors/network/QdiscInjector.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "injectors/network/NetemSupport.h"

namespace chaosd {
namespace {

using json = nlohmann::json;

// The default class of our root, and the root's `default`: 1 when the root we replaced was the
// kernel's own (restored by deleting ours), 2 when it was the user's (restored from a snapshot
// only the process that took it, and the journal, hold). So another process finds in the kernel
// whether it may join the tree: with 1 it needs no snapshot.
constexpr uint32_t kDefaultMinor = 1;
constexpr uint32_t kDefaultMinorUserRoot = 2;
constexpr uint32_t kSlots = 0x3000;
constexpr uint32_t kClassBase = 0x1000;
// HTB classes at "line rate": high enough that no device here reaches it (an HTB class at this
// rate did not reduce veth throughput), with buffers and quantum the kernel accepts.
constexpr uint64_t kLineRateBytes = 100'000'000'000ULL / 8;
constexpr uint32_t kHtbBuffer = 1U << 20;
constexpr uint32_t kHtbQuantum = 200000;
constexpr size_t kMaxFilters = 256;
const uint32_t kIngressHandle = TC_HANDLE(0xffff, 0);

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hexHandle(uint32_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
  return buf;
}

// ---- libnl ownership ----------------------------------------------------------------------

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct QdiscPut {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct ClassPut {
  void operator()(rtnl_class* c) const { rtnl_class_put(c); }
};
struct ClsPut {
  void operator()(rtnl_cls* c) const { rtnl_cls_put(c); }
};
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using Sock = std::unique_ptr<nl_sock, SockFree>;
using Cache = std::unique_ptr<nl_cache, CacheFree>;
using Qdisc = std::unique_ptr<rtnl_qdisc, QdiscPut>;
using Class = std::unique_ptr<rtnl_class, ClassPut>;
using Cls = std::unique_ptr<rtnl_cls, ClsPut>;
using Link = std::unique_ptr<rtnl_link, LinkPut>;
using Msg = std::unique_ptr<nl_msg, MsgFree>;

Error nlError(const std::string& what, int rc) {
  ErrorCode code = ErrorCode::kKernel;
  if (rc == -NLE_EXIST) code = ErrorCode::kConflict;
  if (rc == -NLE_PERM) code = ErrorCode::kPermission;
  if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV) code = ErrorCode::kNotFound;
  return Error(code, what + ": " + nl_geterror(rc));
}

bool gone(int rc) { return rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV; }

// A route socket of the namespace the calling thread is in (a socket stays in the namespace it
// was made in).
Result<Sock> routeSocket() {
  Sock s(nl_socket_alloc());
  if (!s) return Error(ErrorCode::kInternal, "nl_socket_alloc failed");
  const int rc = nl_connect(s.get(), NETLINK_ROUTE);
  if (rc < 0) return nlError("netlink connect", rc);
  return s;
}

Result<int> ifindexOf(nl_sock* sock, const std::string& name) {
  rtnl_link* raw = nullptr;
  const int rc = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw);
  if (rc < 0) return nlError("interface " + name, rc);
  Link link(raw);
  return rtnl_link_get_ifindex(link.get());
}

int sendAndAck(nl_sock* sock, nl_msg* msg) {
  const int rc = nl_send_auto_complete(sock, msg);
  if (rc < 0) return rc;
  return nl_wait_for_ack(sock);
}

std::string toHex(const void* data, size_t len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

Result<std::vector<unsigned char>> fromHex(const std::string& s) {
  if (s.size() % 2 != 0) return Error(ErrorCode::kInvalid, "odd-length hex in undo record");
  std::vector<unsigned char> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned v = 0;
    if (std::sscanf(s.c_str() + 2 * i, "%2x", &v) != 1) {
      return Error(ErrorCode::kInvalid, "bad hex in undo record");
    }
    out[i] = static_cast<unsigned char>(v);
  }
  return out;
}

// ---- the device's root: ours, the kernel's default, or the user's -----------------------

Qdisc qdiscAt(nl_cache* cache, int ifindex, uint32_t parent) {
  return Qdisc(rtnl_qdisc_get_by_parent(cache, ifindex, parent));
}

bool isOurRoot(rtnl_qdisc* q) {
  return q != nullptr && rtnl_tc_get_handle(TC_CAST(q)) == TC_HANDLE(kQdiscRootMajor, 0) &&
         std::string(rtnl_tc_get_kind(TC_CAST(q))) == "htb";
}

Result<Cache> qdiscCache(nl_sock* sock) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_qdisc_alloc_cache(sock, &raw);
  if (rc < 0) return nlError("listing qdiscs", rc);
  return Cache(raw);
}

// Classless kinds whose dumped options the kernel takes back as an add (tbf, pfifo and bfifo
// checked byte for byte in QdiscFaultTest; this kernel has no sfq or fq_codel).
const std::set<std::string> kRestorableKinds = {"pfifo",      "bfifo", "tbf",  "sfq", "fq_codel",
                                                "pfifo_fast", "netem", "prio", "red"};

// The TCA_OPTIONS attribute (header included) of the device's root qdisc exactly as the kernel
// dumps it. Re-adding a qdisc with the dumped options recreates it as it was: libnl's parsed
// copy loses precision (a tbf burst read back through microseconds comes back a few bytes
// short) and anything libnl does not model.
int onRootQdisc(nl_msg* m, void* arg) {
  auto* want = static_cast<std::pair<int, std::vector<unsigned char>>*>(arg);
  nlmsghdr* h = nlmsg_hdr(m);
  if (h->nlmsg_type != RTM_NEWQDISC) return NL_OK;
  const auto* t = static_cast<const tcmsg*>(nlmsg_data(h));
  if (t->tcm_ifindex != want->first || t->tcm_parent != TC_H_ROOT) return NL_OK;
  if (nlattr* o = nlmsg_find_attr(h, sizeof(tcmsg), TCA_OPTIONS)) {
    const auto* b = reinterpret_cast<const unsigned char*>(o);
    want->second.assign(b, b + o->nla_len);
  }
  return NL_OK;
}

Result<std::vector<unsigned char>> rawRootOptions(nl_sock* sock, int ifindex) {
  Msg req(nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_DUMP));
  if (!req) return Error(ErrorCode::kInternal, "nlmsg_alloc_simple failed");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  int rc = nlmsg_append(req.get(), &t, sizeof t, NLMSG_ALIGNTO);
  if (rc == 0) rc = nl_send_auto(sock, req.get());
  if (rc < 0) return nlError("dumping qdiscs", rc);
  std::pair<int, std::vector<unsigned char>> want{ifindex, {}};
  nl_cb* base = nl_socket_get_cb(sock);
  nl_cb* cb = nl_cb_clone(base);
  nl_cb_put(base);
  if (cb == nullptr) return Error(ErrorCode::kInternal, "nl_cb_clone failed");
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, onRootQdisc, &want);
  rc = nl_recvmsgs(sock, cb);
  nl_cb_put(cb);
  if (rc < 0) return nlError("dumping qdiscs", rc);
  return want.second;
}

// What the root of a device is, as the undo record keeps it: {"kind": "default"} for the
// kernel's own (handle 0: restored by deleting ours), {"ours": true} for our HTB, else the
// user's qdisc as the add request that recreates it (hex of the netlink message).
Result<json> snapshotRoot(nl_sock* sock, int ifindex, const std::string& iface) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  if (!root || rtnl_tc_get_handle(TC_CAST(root.get())) == 0) return json{{"kind", "default"}};
  if (isOurRoot(root.get())) {
    return json{{"ours", true}, {"priorDefault", rtnl_htb_get_defcls(root.get()) == kDefaultMinor}};
  }
  const std::string kind = rtnl_tc_get_kind(TC_CAST(root.get()));
  const uint32_t handle = rtnl_tc_get_handle(TC_CAST(root.get()));
  if (kRestorableKinds.count(kind) == 0) {
    return Error(ErrorCode::kUnsupported,
                 "the root qdisc of " + iface + " is " + kind + " (" + hexHandle(handle) +
                     "), which chaosd cannot snapshot and restore exactly; remove it or target "
                     "another interface");
  }
  for (nl_object* o = nl_cache_get_first(cache->get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* q = reinterpret_cast<rtnl_qdisc*>(o);
    const uint32_t parent = rtnl_tc_get_parent(TC_CAST(q));
    if (rtnl_tc_get_ifindex(TC_CAST(q)) == ifindex && parent != TC_H_ROOT &&
        parent != TC_H_INGRESS && TC_H_MAJ(parent) == TC_H_MAJ(handle)) {
      return Error(ErrorCode::kUnsupported,
                   "the root qdisc of " + iface + " (" + kind + " " + hexHandle(handle) +
                       ") has child qdiscs, which chaosd cannot snapshot and restore");
    }
  }
  auto opts = rawRootOptions(sock, ifindex);
  if (!opts) return std::move(opts).error();
  Msg msg(nlmsg_alloc_simple(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL));
  if (!msg) return Error(ErrorCode::kInternal, "nlmsg_alloc_simple failed");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_handle = handle;
  t.tcm_parent = TC_H_ROOT;
  int rc = nlmsg_append(msg.get(), &t, sizeof t, NLMSG_ALIGNTO);
  if (rc == 0) rc = nla_put_string(msg.get(), TCA_KIND, kind.c_str());
  if (rc == 0 && !opts->empty()) {
    const auto* a = reinterpret_cast<const nlattr*>(opts->data());
    rc = nla_put(msg.get(), a->nla_type, nla_len(a), nla_data(a));
  }
  if (rc < 0) return nlError("snapshotting the root qdisc of " + iface, rc);
  nlmsghdr* h = nlmsg_hdr(msg.get());
  return json{{"kind", kind}, {"handle", hexHandle(handle)}, {"request", toHex(h, h->nlmsg_len)}};
}

Result<void> restoreRoot(nl_sock* sock, const json& prior, const std::string& iface) {
  if (!prior.contains("request")) return success();
  auto bytes = fromHex(prior["request"].get<std::string>());
  if (!bytes) return std::move(bytes).error();
  if (bytes->size() < sizeof(nlmsghdr)) return Error(ErrorCode::kInvalid, "short snapshot");
  Msg msg(nlmsg_convert(reinterpret_cast<nlmsghdr*>(bytes->data())));
  if (!msg) return Error(ErrorCode::kInternal, "nlmsg_convert failed");
  const int rc = sendAndAck(sock, msg.get());
  if (rc < 0 && rc != -NLE_EXIST) {
    return nlError("restoring the root qdisc " + prior.value("kind", std::string()) + " " +
                       prior.value("handle", std::string()) + " of " + iface,
                   rc);
  }
  return success();
}

// The users' roots seen at prepare, by namespace and interface, for a fault prepared while
// our tree already replaced it (another fault of this process on the same device): that fault
// needs the user's root in its own undo, since it may be the one whose revert removes the tree.
std::mutex gTreeMu;  // one tree change at a time in this process
std::map<std::string, json> gPriors;

Result<std::string> deviceKey(int ifindex) {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) {
    return Error::fromErrno("stat /proc/thread-self/ns/net", errno);
  }
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(ifindex);
}

// ---- building the tree --------------------------------------------------------------------

uint32_t classMinor(uint32_t slot) { return kClassBase + slot; }
uint32_t leafMajor(uint32_t slot) { return kClassBase + slot; }
uint32_t prioFor(uint32_t slot, int family) { return 2 * slot + (family == 6 ? 3 : 2); }
uint16_t ethProto(int family) {
  return family == 4 ? ETH_P_IP : family == 6 ? ETH_P_IPV6 : ETH_P_ALL;
}

Class htbClass(int ifindex, uint32_t minor) {
  Class c(rtnl_class_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), TC_HANDLE(kQdiscRootMajor, 0));
  rtnl_tc_set_handle(TC_CAST(c.get()), TC_HANDLE(kQdiscRootMajor, minor));
  return c;
}

Result<void> addHtbClass(nl_sock* sock, int ifindex, uint32_t minor, bool mayExist = false) {
  Class c = htbClass(ifindex, minor);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_rate64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_ceil64(c.get(), kLineRateBytes);
  if (rc == 0) rc = rtnl_htb_set_rbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_cbuffer(c.get(), kHtbBuffer);
  if (rc == 0) rc = rtnl_htb_set_quantum(c.get(), kHtbQuantum);
  if (rc == 0) rc = rtnl_class_add(sock, c.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc == -NLE_EXIST && mayExist) return success();
  if (rc < 0) {
    Error e = nlError("adding HTB class " + hexHandle(TC_HANDLE(kQdiscRootMajor, minor)), rc);
    if (rc == -NLE_EXIST) {
      e = Error(ErrorCode::kConflict,
                "HTB class " + hexHandle(TC_HANDLE(kQdiscRootMajor, minor)) +
                    " exists: another fault holds this slot (try again with another fault id)");
    }
    return e;
  }
  return success();
}

// Over the kernel's default root: CREATE|EXCL, so when another process added our root since
// this one looked, the add fails with "exists" and this fault joins that tree instead of
// replacing it. Over a user's root: CREATE|REPLACE (the only way to replace one).
Result<void> addOurRoot(nl_sock* sock, int ifindex, bool priorDefault) {
  const uint32_t defcls = priorDefault ? kDefaultMinor : kDefaultMinorUserRoot;
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(kQdiscRootMajor, 0));
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "htb");
  if (rc == 0) rc = rtnl_htb_set_defcls(q.get(), defcls);
  if (rc == 0) {
    rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | (priorDefault ? NLM_F_EXCL : NLM_F_REPLACE));
  }
  if (rc == -NLE_EXIST && priorDefault) return addHtbClass(sock, ifindex, defcls, true);
  if (rc < 0) return nlError("adding the HTB root c4a0:", rc);
  return addHtbClass(sock, ifindex, defcls, true);
}

int probability(const json& leaf, const char* key) {
  const double p = leaf.value(key, 0.0);
  return static_cast<int>(static_cast<uint32_t>(std::llround(p * 4294967295.0)));
}

// libnl 3.7 has no netem rate setter: TCA_NETEM_RATE (and RATE64 above 32 bits of bytes/s)
// is appended to the add request libnl built, inside its TCA_OPTIONS, which libnl writes as the
// message's last attribute.
Result<void> appendNetemRate(nl_msg* msg, uint64_t bytesPerSecond) {
  nlmsghdr* h = nlmsg_hdr(msg);
  nlattr* opts = nlmsg_find_attr(h, sizeof(tcmsg), TCA_OPTIONS);
  auto* tail = reinterpret_cast<char*>(h) + NLMSG_ALIGN(h->nlmsg_len);
  if (opts == nullptr || reinterpret_cast<char*>(opts) + NLA_ALIGN(opts->nla_len) != tail) {
    return Error(ErrorCode::kInternal, "cannot place netem's rate: unexpected libnl message");
  }
  tc_netem_rate r{};
  r.rate = static_cast<uint32_t>(std::min<uint64_t>(bytesPerSecond, UINT32_MAX));
  if (nla_put(msg, TCA_NETEM_RATE, sizeof r, &r) < 0 ||
      (bytesPerSecond > UINT32_MAX && nla_put_u64(msg, TCA_NETEM_RATE64, bytesPerSecond) < 0)) {
    return Error(ErrorCode::kInternal, "no room for netem's rate in the netlink message");
  }
  h = nlmsg_hdr(msg);
  opts->nla_len = static_cast<uint16_t>(reinterpret_cast<char*>(h) + h->nlmsg_len -
                                        reinterpret_cast<char*>(opts));
  return success();
}

std::string missingNetem() {
  return "this kernel has no sch_netem (the netem qdisc module is neither built in nor "
         "loadable)";
}

Result<void> addLeaf(nl_sock* sock, int ifindex, uint32_t slot, const json& leaf) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_HANDLE(kQdiscRootMajor, classMinor(slot)));
  rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(leafMajor(slot), 0));
  const std::string kind = leaf.value("kind", std::string());
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), kind.c_str());
  if (rc < 0) return nlError("qdisc kind " + kind, rc);
  if (kind == "tbf") {
    rtnl_qdisc_tbf_set_rate(q.get(), leaf["rate"].get<int>(), leaf["burst"].get<int>(), 0);
    if (leaf.contains("limit")) {
      rtnl_qdisc_tbf_set_limit(q.get(), leaf["limit"].get<int>());
    } else {
      rc = rtnl_qdisc_tbf_set_limit_by_latency(q.get(), leaf["latencyUs"].get<int>());
      if (rc < 0) return nlError("tbf latency", rc);
    }
  } else if (kind == "netem") {
    rtnl_netem_set_limit(q.get(), leaf.value("limit", 1000));
    if (leaf.contains("delayUs")) rtnl_netem_set_delay(q.get(), leaf["delayUs"].get<int>());
    if (leaf.contains("jitterUs")) rtnl_netem_set_jitter(q.get(), leaf["jitterUs"].get<int>());
    if (leaf.contains("correlation")) {
      rtnl_netem_set_delay_correlation(q.get(), probability(leaf, "correlation"));
    }
    if (leaf.contains("distributionFile")) {
      rc = rtnl_netem_set_delay_distribution(q.get(),
                                             leaf["distributionFile"].get<std::string>().c_str());
      if (rc < 0) return nlError("netem distribution " + leaf["distributionFile"].dump(), rc);
    }
    if (leaf.contains("loss")) rtnl_netem_set_loss(q.get(), probability(leaf, "loss"));
    if (leaf.contains("lossCorrelation")) {
      rtnl_netem_set_loss_correlation(q.get(), probability(leaf, "lossCorrelation"));
    }
    if (leaf.contains("duplicate")) {
      rtnl_netem_set_duplicate(q.get(), probability(leaf, "duplicate"));
    }
    if (leaf.contains("corrupt")) {
      rtnl_netem_set_corruption_probability(q.get(), probability(leaf, "corrupt"));
    }
    if (leaf.contains("reorder")) {
      rtnl_netem_set_reorder_probability(q.get(), probability(leaf, "reorder"));
      rtnl_netem_set_gap(q.get(), leaf.value("gap", 1));
    }
  }
  nl_msg* raw = nullptr;
  rc = rtnl_qdisc_build_add_request(q.get(), NLM_F_CREATE | NLM_F_EXCL, &raw);
  if (rc < 0) return nlError("building the " + kind + " request", rc);
  Msg msg(raw);
  if (kind == "netem" && leaf.contains("rateBytes")) {
    CHAOSD_TRY(appendNetemRate(msg.get(), leaf["rateBytes"].get<uint64_t>()));
  }
  rc = sendAndAck(sock, msg.get());
  if (rc < 0) {
    if (kind == "netem" && rc == -NLE_OBJ_NOTFOUND) {
      return Error(ErrorCode::kUnsupported, missingNetem());
    }
    return nlError("adding " + kind + " " + hexHandle(TC_HANDLE(leafMajor(slot), 0)), rc);
  }
  return success();
}

Cls u32At(int ifindex, uint32_t parent, uint32_t prio, int family) {
  Cls c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), parent);
  rtnl_cls_set_prio(c.get(), static_cast<uint16_t>(prio));
  rtnl_cls_set_protocol(c.get(), ethProto(family));
  return c;
}

Result<void> addSteeringFilter(nl_sock* sock, int ifindex, uint32_t slot, const json& filter) {
  const int family = filter.value("family", 0);
  Cls c = u32At(ifindex, TC_HANDLE(kQdiscRootMajor, 0), prioFor(slot, family), family);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "u32");
  for (const auto& k : filter["keys"]) {
    if (rc < 0) break;
    rc = rtnl_u32_add_key(c.get(), htonl(k[0].get<uint32_t>()), htonl(k[1].get<uint32_t>()),
                          k[2].get<int>(), 0);
  }
  if (rc == 0) rc = rtnl_u32_set_classid(c.get(), TC_HANDLE(kQdiscRootMajor, classMinor(slot)));
  // Without the terminal flag the match falls through to the default class.
  if (rc == 0) rc = rtnl_u32_set_cls_terminal(c.get());
  if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
  if (rc < 0) return nlError("adding a u32 filter", rc);
  return success();
}

Result<void> deleteFilters(nl_sock* sock, int ifindex, uint32_t parent, uint32_t prio, int family) {
  Cls c = u32At(ifindex, parent, prio, family);
  int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "u32");
  if (rc == 0) rc = rtnl_cls_delete(sock, c.get(), 0);
  if (rc < 0 && !gone(rc) && rc != -NLE_INVAL) return nlError("deleting u32 filters", rc);
  return success();
}

// Priorities (at parent) holding any filter, by family of their protocol.
Result<std::set<uint32_t>> filterPrios(nl_sock* sock, int ifindex, uint32_t parent) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_cls_alloc_cache(sock, ifindex, parent, &raw);
  if (rc < 0) {
    if (gone(rc) || rc == -NLE_INVAL) return std::set<uint32_t>{};
    return nlError("listing filters", rc);
  }
  Cache cache(raw);
  std::set<uint32_t> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    out.insert(rtnl_cls_get_prio(reinterpret_cast<rtnl_cls*>(o)));
  }
  return out;
}

// The fault classes of ours on the device (every class of our root but the default one).
Result<std::set<uint32_t>> ourClasses(nl_sock* sock, int ifindex) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_class_alloc_cache(sock, ifindex, &raw);
  if (rc < 0) return nlError("listing classes", rc);
  Cache cache(raw);
  std::set<uint32_t> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const uint32_t h = rtnl_tc_get_handle(TC_CAST(reinterpret_cast<rtnl_class*>(o)));
    if (TC_H_MAJ(h) == TC_HANDLE(kQdiscRootMajor, 0) && TC_H_MIN(h) >= kClassBase) {
      out.insert(TC_H_MIN(h));
    }
  }
  return out;
}

std::vector<int> familiesOf(const json& undo) {
  std::set<int> fams;
  for (const auto& f : undo["filters"]) fams.insert(f.value("family", 0));
  return {fams.begin(), fams.end()};
}

// Adds our root (if the device has none of ours yet), the fault's class, leaf and filters.
Result<void> applyTree(nl_sock* sock, int ifindex, const json& undo, const std::string& dev) {
  const uint32_t slot = undo["slot"].get<uint32_t>();
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  if (!isOurRoot(root.get())) {
    const json& prior = undo["prior"];
    const uint32_t handle = root ? rtnl_tc_get_handle(TC_CAST(root.get())) : 0;
    const std::string now = handle == 0 ? "default" : hexHandle(handle);
    const std::string then = prior.value("kind", std::string()) == "default"
                                 ? "default"
                                 : prior.value("handle", std::string());
    if (now != then) {
      return Error(ErrorCode::kConflict, "the root qdisc of " + dev + " changed since prepare (" +
                                             then + " then, " + now + " now)");
    }
    CHAOSD_TRY(addOurRoot(sock, ifindex, then == "default"));
  }
  CHAOSD_TRY(addHtbClass(sock, ifindex, classMinor(slot)));
  CHAOSD_TRY(addLeaf(sock, ifindex, slot, undo["leaf"]));
  for (const auto& f : undo["filters"]) CHAOSD_TRY(addSteeringFilter(sock, ifindex, slot, f));
  return success();
}

json leafCounters(nl_cache* cache, int ifindex, uint32_t slot) {
  Qdisc leaf(rtnl_qdisc_get(cache, ifindex, TC_HANDLE(leafMajor(slot), 0)));
  if (!leaf) return json::object();
  return {{"packets", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_PACKETS)},
          {"bytes", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_BYTES)},
          {"drops", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_DROPS)},
          {"overlimits", rtnl_tc_get_stat(TC_CAST(leaf.get()), RTNL_TC_OVERLIMITS)}};
}

json leafCounters(nl_sock* sock, int ifindex, uint32_t slot) {
  auto cache = qdiscCache(sock);
  if (!cache) return json::object();
  return leafCounters(cache->get(), ifindex, slot);
}

// Removes the fault's filters and class; the last class of ours takes our root with it and
// the user's root comes back.
Result<json> revertTree(nl_sock* sock, int ifindex, const json& undo, const std::string& dev) {
  const uint32_t slot = undo["slot"].get<uint32_t>();
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  Qdisc root = qdiscAt(cache->get(), ifindex, TC_H_ROOT);
  if (!isOurRoot(root.get())) return json::object();  // nothing of ours on the device
  json observed = leafCounters(cache->get(), ifindex, slot);
  auto classes = ourClasses(sock, ifindex);
  if (!classes) return std::move(classes).error();
  classes->erase(classMinor(slot));
  if (!classes->empty()) {  // another fault still uses the tree: remove only this one's part
    for (int family : familiesOf(undo)) {
      CHAOSD_TRY(deleteFilters(sock, ifindex, TC_HANDLE(kQdiscRootMajor, 0), prioFor(slot, family),
                               family));
    }
    Class c = htbClass(ifindex, classMinor(slot));
    const int rc = rtnl_class_delete(sock, c.get());
    if (rc < 0 && !gone(rc)) return nlError("deleting class " + hexHandle(classMinor(slot)), rc);
    return observed;
  }
  // The last fault on the device: deleting our root takes its classes, leaves and filters
  // with it (one request instead of three).
  const int rc = rtnl_qdisc_delete(sock, root.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting the HTB root c4a0: of " + dev, rc);
  CHAOSD_TRY(restoreRoot(sock, undo["prior"], dev));
  if (auto key = deviceKey(ifindex)) gPriors.erase(*key);
  return observed;
}

// ---- ingress through an ifb ---------------------------------------------------------------

Result<int> createIfb(nl_sock* sock, const std::string& name) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  int rc = rtnl_link_set_type(l.get(), "ifb");
  if (rc < 0) return nlError("link type ifb", rc);
  rtnl_link_set_flags(l.get(), IFF_UP);
  rc = rtnl_link_add(sock, l.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0) return nlError("creating ifb device " + name, rc);
  return ifindexOf(sock, name);
}

Result<void> deleteLink(nl_sock* sock, const std::string& name) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  const int rc = rtnl_link_delete(sock, l.get());
  if (rc < 0 && !gone(rc)) return nlError("deleting " + name, rc);
  return success();
}

bool ourPrio(uint32_t prio) { return prio >= 2 && prio < 2 * kSlots + 4; }

// Whether the interface's ingress qdisc is one chaosd added for its ingress faults: kind
// ingress (not clsact), every filter on it at a priority of our scheme, and an ifb of ours in
// the namespace. A user's own (tc's first filter takes priority 49152) is not.
Result<bool> ourIngress(nl_sock* sock, int ifindex, rtnl_qdisc* in) {
  if (std::string(rtnl_tc_get_kind(TC_CAST(in))) != "ingress") return false;
  auto prios = filterPrios(sock, ifindex, kIngressHandle);
  if (!prios) return std::move(prios).error();
  if (prios->empty()) return false;
  for (uint32_t p : *prios) {
    if (!ourPrio(p)) return false;
  }
  nl_cache* raw = nullptr;
  const int rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw);
  if (rc < 0) return nlError("listing links", rc);
  Cache links(raw);
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(o));
    if (name != nullptr && std::string(name).rfind("cdifb", 0) == 0) return true;
  }
  return false;
}

// The interface's ingress qdisc (ffff:), shared by the ingress faults on it: added by the
// first, left alone when there.
Result<void> ensureIngressQdisc(nl_sock* sock, int ifindex) {
  auto cache = qdiscCache(sock);
  if (!cache) return std::move(cache).error();
  if (qdiscAt(cache->get(), ifindex, TC_H_INGRESS)) return success();
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  if (rc == 0) rc = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc < 0 && rc != -NLE_EXIST) return nlError("adding the ingress qdisc", rc);
  return success();
}

// The fault's redirect filters on the interface's ingress qdisc: its own u32 keys (the same
// filters as on its ifb), at its own priorities, with a mirred egress redirect to its ifb.
// Packets matching no fault's filters are delivered as usual, so several ingress faults share
// the interface, each with its ifb; a packet matching two goes to the one of lower priority.
Result<void> addIngressRedirect(nl_sock* sock, int ifindex, int ifbIndex, uint32_t slot,
                                const json& filters) {
  CHAOSD_TRY(ensureIngressQdisc(sock, ifindex));
  for (const auto& f : filters) {
    const int family = f.value("family", 0);
    Cls c = u32At(ifindex, kIngressHandle, prioFor(slot, family), family);
    int rc = rtnl_tc_set_kind(TC_CAST(c.get()), "u32");
    for (const auto& k : f["keys"]) {
      if (rc < 0) break;
      rc = rtnl_u32_add_key(c.get(), htonl(k[0].get<uint32_t>()), htonl(k[1].get<uint32_t>()),
                            k[2].get<int>(), 0);
    }
    if (rc == 0) rc = rtnl_u32_set_cls_terminal(c.get());
    rtnl_act* act = rtnl_act_alloc();
    if (act == nullptr) return Error(ErrorCode::kInternal, "rtnl_act_alloc failed");
    if (rc == 0) rc = rtnl_tc_set_kind(TC_CAST(act), "mirred");
    if (rc == 0) {
      // Returns a positive "unsupported" code for ingress actions, never for egress redirect.
      rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
      // Stolen: the packet goes to the ifb only (the default, pass, would deliver a copy too).
      rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
      rtnl_mirred_set_ifindex(act, static_cast<uint32_t>(ifbIndex));
      rc = rtnl_u32_add_action(c.get(), act);
    }
    rtnl_act_put(act);
    if (rc == 0) rc = rtnl_cls_add(sock, c.get(), NLM_F_CREATE);
    if (rc < 0) return nlError("adding an ingress redirect filter", rc);
  }
  return success();
}

// ---- the undo record ----------------------------------------------------------------------

Result<void> checkUndo(const json& undo, const std::string& faultId) {
  if (!undo.is_object() || !undo.contains("slot") || !undo.contains("iface") ||
      !undo.contains("leaf") || !undo.contains("filters") || !undo.contains("prior")) {
    return Error(ErrorCode::kInvalid, "not a qdisc undo record: " + undo.dump());
  }
  if (undo["slot"].get<uint32_t>() >= kSlots) {
    return Error(ErrorCode::kInvalid, "qdisc undo record with a slot out of range");
  }
  if (undo.contains("ifb") && undo["ifb"].get<std::string>().rfind("cdifb", 0) != 0) {
    return Error(ErrorCode::kInvalid, "refusing to touch device " + undo["ifb"].dump());
  }
  if (!faultId.empty() && undo.value("faultId", std::string()) != faultId) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to another fault");
  }
  return success();
}

Result<NetnsGuard> enterNetnsOf(const json& undo) {
  NetnsRef ref;
  ref.path = undo.value("netns", std::string());
  return NetnsGuard::enter(ref);
}

bool ingress(const json& undo) { return undo.value("direction", std::string()) == "ingress"; }

std::string describeNs(const json& undo) {
  const std::string ns = undo.value("netns", std::string());
  return ns.empty() ? "host" : ns;
}

// ---- filters from args --------------------------------------------------------------------

struct Prefix {
  int family = 0;
  uint8_t addr[16] = {};
  int len = 0;
};

Result<Prefix> parseCidr(const std::string& s) {
  Prefix p;
  const auto slash = s.find('/');
  const std::string host = s.substr(0, slash);
  p.family = host.find(':') != std::string::npos ? 6 : 4;
  if (::inet_pton(p.family == 6 ? AF_INET6 : AF_INET, host.c_str(), p.addr) != 1) {
    return Error(ErrorCode::kInvalid, "not an address: " + s);
  }
  p.len = p.family == 6 ? 128 : 32;
  if (slash != std::string::npos) p.len = std::atoi(s.c_str() + slash + 1);
  if (p.len < 0 || p.len > (p.family == 6 ? 128 : 32)) {
    return Error(ErrorCode::kInvalid, "bad prefix length: " + s);
  }
  return p;
}

// Keys matching a prefix whose address starts at `offset`.
void prefixKeys(const Prefix& p, int offset, std::vector<U32Key>& out) {
  const int words = p.family == 6 ? 4 : 1;
  for (int w = 0; w < words; ++w) {
    const int bits = std::clamp(p.len - 32 * w, 0, 32);
    if (bits == 0) break;
    const uint32_t mask = bits == 32 ? 0xffffffffU : ~(0xffffffffU >> bits);
    const uint32_t v = (uint32_t{p.addr[4 * w]} << 24) | (uint32_t{p.addr[4 * w + 1]} << 16) |
                       (uint32_t{p.addr[4 * w + 2]} << 8) | uint32_t{p.addr[4 * w + 3]};
    out.push_back({v & mask, mask, offset + 4 * w});
  }
}

// Adds (value, mask) at offset into the key of the same word, or a new key.
void merge(std::vector<U32Key>& keys, U32Key k) {
  for (auto& e : keys) {
    if (e.offset == k.offset) {
      e.value |= k.value;
      e.mask |= k.mask;
      return;
    }
  }
  keys.push_back(k);
}

std::vector<std::pair<uint16_t, uint16_t>> anyPort() { return {{0, 0}}; }

std::vector<std::pair<uint16_t, uint16_t>> portsOf(const json& side) {
  if (!side.is_object() || !side.contains("ports") || side["ports"].empty()) return anyPort();
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (const auto& r : side["ports"]) {
    const int first = r.value("first", 0);
    const int last = r.value("last", first);
    for (auto b : portBlocks(static_cast<uint16_t>(first), static_cast<uint16_t>(last))) {
      out.push_back(b);
    }
  }
  return out;
}

}  // namespace

uint32_t qdiscSlot(const std::string& faultId) {
  return static_cast<uint32_t>(fnv1a(faultId) % kSlots);
}

std::string qdiscIfbName(const std::string& faultId) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "cdifb%010llx",
                static_cast<unsigned long long>(fnv1a(faultId) & 0xffffffffffULL));
  return buf;
}

std::vector<std::pair<uint16_t, uint16_t>> portBlocks(uint16_t first, uint16_t last) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  uint32_t lo = first;
  const uint32_t hi = last;
  while (lo <= hi) {
    // The largest aligned block starting at lo that stays within hi.
    uint32_t size = 1;
    while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < 0x10000) size *= 2;
    out.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff));
    lo += size;
  }
  return out;
}

Result<std::vector<U32Filter>> qdiscFilters(const json& args) {
  const json to = args.value("to", json::object());
  const json from = args.value("from", json::object());
  const std::string protocol = args.value("protocol", std::string("all"));
  auto cidrsOf = [](const json& side) -> Result<std::vector<Prefix>> {
    std::vector<Prefix> out;
    if (!side.is_object() || !side.contains("cidr")) return out;
    for (const auto& c : side["cidr"]) {
      auto p = parseCidr(c.get<std::string>());
      if (!p) return std::move(p).error();
      out.push_back(*p);
    }
    return out;
  };
  auto dsts = cidrsOf(to);
  if (!dsts) return std::move(dsts).error();
  auto srcs = cidrsOf(from);
  if (!srcs) return std::move(srcs).error();
  const auto dports = portsOf(to);
  const auto sports = portsOf(from);
  const bool anyPorts =
      dports.size() > 1 || dports[0].second != 0 || sports.size() > 1 || sports[0].second != 0;
  if (dsts->empty() && srcs->empty() && !anyPorts && protocol == "all") {
    return std::vector<U32Filter>{{0, {{0, 0, 0}}}};
  }
  std::vector<U32Filter> out;
  for (int family : {4, 6}) {
    auto ofFamily = [family](const std::vector<Prefix>& all, bool& skip) {
      std::vector<std::optional<Prefix>> v;
      for (const auto& p : all) {
        if (p.family == family) v.emplace_back(p);
      }
      if (!all.empty() && v.empty()) skip = true;  // addresses given, none of this family
      if (all.empty()) v.emplace_back(std::nullopt);
      return v;
    };
    bool skip = false;
    const auto fd = ofFamily(*dsts, skip);
    const auto fs = ofFamily(*srcs, skip);
    if (skip) continue;
    std::vector<int> protos;
    if (protocol == "tcp") protos = {6};
    if (protocol == "udp") protos = {17};
    if (protocol == "icmp") protos = {family == 6 ? 58 : 1};
    if (protocol == "all") protos = anyPorts ? std::vector<int>{6, 17} : std::vector<int>{-1};
    // v4: IHL at byte 0, protocol at 9, addresses at 12/16, ports at 20 (IHL 5, no options);
    // v6: next header at 6, addresses at 8/24, ports at 40 (no extension headers).
    const int srcOff = family == 6 ? 8 : 12;
    const int dstOff = family == 6 ? 24 : 16;
    const int portOff = family == 6 ? 40 : 20;
    for (const auto& d : fd) {
      for (const auto& s : fs) {
        for (int proto : protos) {
          for (const auto& dp : dports) {
            for (const auto& sp : sports) {
              U32Filter f;
              f.family = family;
              if (d) prefixKeys(*d, dstOff, f.keys);
              if (s) prefixKeys(*s, srcOff, f.keys);
              if (proto >= 0) {
                if (family == 4) {
                  merge(f.keys, {static_cast<uint32_t>(proto) << 16, 0x00ff0000U, 8});
                } else {
                  merge(f.keys, {static_cast<uint32_t>(proto) << 8, 0x0000ff00U, 4});
                }
              }
              if (dp.second != 0 || sp.second != 0) {
                if (family == 4) merge(f.keys, {0x05000000U, 0x0f000000U, 0});
                merge(f.keys, {(uint32_t{sp.first} << 16) | dp.first,
                               (uint32_t{sp.second} << 16) | dp.second, portOff});
              }
              if (f.keys.empty()) f.keys.push_back({0, 0, 0});
              out.push_back(std::move(f));
              if (out.size() > kMaxFilters) {
                return Error(ErrorCode::kInvalid,
                             "the filter args need more than " + std::to_string(kMaxFilters) +
                                 " u32 filters: use fewer addresses or wider port ranges");
              }
            }
          }
        }
      }
    }
  }
  if (out.empty()) return Error(ErrorCode::kInvalid, "the filter args match nothing");
  return out;
}

Result<PreparedFault> QdiscInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  const json& a = request.args;
  const bool tbf = request.faultType == "network.bandwidth";
  json leaf;
  if (tbf) {
    const uint64_t rate = a.at("rate").get<uint64_t>() / 8;  // bytes/s
    if (rate > static_cast<uint64_t>(INT_MAX)) {
      return Error(ErrorCode::kUnsupported,
                   "tbf through libnl 3.7 takes at most 2^31-1 bytes/s (about 17 Gbit/s)");
    }
    const uint64_t burst =
        a.contains("burst") ? a["burst"].get<uint64_t>() : std::max<uint64_t>(rate / 250, 16384);
    leaf = {{"kind", "tbf"}, {"rate", rate}, {"burst", std::min<uint64_t>(burst, INT_MAX)}};
    if (a.contains("limit")) {
      leaf["limit"] = std::min<uint64_t>(a["limit"].get<uint64_t>(), INT_MAX);
    } else {
      leaf["latencyUs"] = a.value("latency", int64_t{50'000'000}) / 1000;
    }
  } else {
    auto has = kernelHasNetem();
    if (!has) return std::move(has).error().withContext("checking for sch_netem");
    if (!*has) {
      return Error(ErrorCode::kUnsupported, missingNetem() + ": " + request.faultType +
                                                " cannot be applied with netem here");
    }
    leaf = {{"kind", "netem"}, {"limit", a.value("limit", 1000)}};
    const int64_t delay = a.value("delay", int64_t{0});
    const int64_t jitter = a.value("jitter", int64_t{0});
    if (delay / 1000 > INT_MAX || jitter / 1000 > INT_MAX) {
      return Error(ErrorCode::kUnsupported, "netem through libnl 3.7 delays at most 2^31-1 us");
    }
    if (delay > 0) leaf["delayUs"] = delay / 1000;
    if (jitter > 0) leaf["jitterUs"] = jitter / 1000;
    for (const char* k :
         {"correlation", "loss", "lossCorrelation", "duplicate", "corrupt", "reorder", "gap"}) {
      if (a.contains(k)) leaf[k] = a[k];
    }
    if (a.contains("rate")) leaf["rateBytes"] = a["rate"].get<uint64_t>() / 8;
    const std::string dist = a.value("distribution", std::string("uniform"));
    if (dist != "uniform") {
      std::string found;
      for (const char* dir :
           {"/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/tc", "/usr/lib64/tc", "/usr/local/lib/tc"}) {
        const std::string p = std::string(dir) + "/" + dist + ".dist";
        if (std::filesystem::exists(p)) {
          found = p;
          break;
        }
      }
      if (found.empty()) {
        return Error(ErrorCode::kNotFound, "no " + dist +
                                               ".dist table (iproute2 installs them in "
                                               "/usr/lib/x86_64-linux-gnu/tc)");
      }
      leaf["distributionFile"] = found;
    }
  }
  auto filters = qdiscFilters(a);
  if (!filters) return std::move(filters).error();
  json jfilters = json::array();
  for (const auto& f : *filters) {
    json keys = json::array();
    for (const auto& k : f.keys) keys.push_back({k.value, k.mask, k.offset});
    jfilters.push_back({{"family", f.family}, {"keys", keys}});
  }
  const NetnsRef& ns = target->interface.netns;
  std::string netnsPath;
  if (!ns.name.empty()) {
    netnsPath = "/run/netns/" + ns.name;
  } else if (!ns.path.empty()) {
    netnsPath = ns.path;
  } else if (ns.pid) {
    netnsPath = "/proc/" + std::to_string(*ns.pid) + "/ns/net";
  }
  const std::string iface = target->interface.name;
  const std::string direction = a.value("direction", std::string("egress"));
  const uint32_t slot = qdiscSlot(request.faultId);
  json undo = {{"faultId", request.faultId},
               {"faultType", request.faultType},
               {"netns", netnsPath},
               {"iface", iface},
               {"direction", direction},
               {"slot", slot},
               {"leaf", leaf},
               {"filters", jfilters}};

  NetnsRef nsRef;
  nsRef.path = netnsPath;
  auto guard = NetnsGuard::enter(nsRef);
  if (!guard) return std::move(guard).error();
  auto sock = routeSocket();
  if (!sock) return std::move(sock).error();
  auto ifindex = ifindexOf(sock->get(), iface);
  if (!ifindex) {
    return Error(ErrorCode::kNotFound, "no interface " + iface + " in " + ns.describe());
  }
  std::lock_guard lock(gTreeMu);
  if (direction == "ingress") {
    auto cache = qdiscCache(sock->get());
    if (!cache) return std::move(cache).error();
    if (Qdisc in = qdiscAt(cache->get(), *ifindex, TC_H_INGRESS)) {
      auto ours = ourIngress(sock->get(), *ifindex, in.get());
      if (!ours) return std::move(ours).error();
      if (!*ours) {
        return Error(ErrorCode::kConflict,
                     iface +
                         " already has an ingress (or clsact) qdisc of its own: chaosd adds "
                         "its redirect filters only to an ingress qdisc of its own");
      }
    }
    undo["ifb"] = qdiscIfbName(request.faultId);
    undo["prior"] = {{"kind", "default"}};  // the ifb is new
  } else {
    auto prior = snapshotRoot(sock->get(), *ifindex, iface);
    if (!prior) return std::move(prior).error();
    auto key = deviceKey(*ifindex);
    if (!key) return std::move(key).error();
    if (prior->value("ours", false) && prior->value("priorDefault", false)) {
      // Our tree over the kernel's default root (another fault's, maybe another process's):
      // this fault joins it, and whichever revert is last deletes it.
      *prior = {{"kind", "default"}};
    } else if (prior->value("ours", false)) {
      auto it = gPriors.find(*key);
      if (it == gPriors.end()) {
        return Error(ErrorCode::kConflict,
                     iface +
                         " carries a chaosd qdisc tree (c4a0:) over a root qdisc of the user's "
                         "that another process replaced (another chaosd run, or one left over: "
                         "see `chaosctl recover`); only that process can restore it");
      }
      *prior = it->second;
    } else {
      gPriors[*key] = *prior;
    }
    undo["prior"] = *prior;
  }

  PreparedFault out;
  out.undo = undo;
  const std::string what =
      tbf ? "tbf " + std::to_string(leaf["rate"].get<uint64_t>() * 8) + " bit/s"
          : "netem " + leaf.dump();
  out.description = request.faultType + " (" + what + ") on " + iface + " in " + ns.describe() +
                    ", " + direction + ", class " +
                    hexHandle(TC_HANDLE(kQdiscRootMajor, classMinor(slot))) +
                    (direction == "ingress" ? " on ifb " + undo["ifb"].get<std::string>() : "");
  out.resources = {"qdisc:" + netnsPath + ":" + iface + ":" + std::to_string(slot)};
  return out;
}

Result<AppliedFault> QdiscInjector::apply(const std::string& faultId, const json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  const bool isNetem = undo["leaf"].value("kind", std::string()) == "netem";
  if (isNetem) {
    auto has = kernelHasNetem();
    if (has && !*has) return Error(ErrorCode::kUnsupported, missingNetem());
  }
  auto guard = enterNetnsOf(undo);
  if (!guard) return std::move(guard).error();
  auto sock = routeSocket();
  if (!sock) return std::move(sock).error();
  const std::string iface = undo["iface"].get<std::string>();
  auto ifindex = ifindexOf(sock->get(), iface);
  if (!ifindex) return std::move(ifindex).error();
  std::lock_guard lock(gTreeMu);
  AppliedFault out;
  out.backend = isNetem ? "netem" : "tbf";
  const uint32_t slot = undo["slot"].get<uint32_t>();
  out.observed = {{"iface", iface},
                  {"class", hexHandle(TC_HANDLE(kQdiscRootMajor, classMinor(slot)))},
                  {"filters", undo["filters"].size()}};
  if (ingress(undo)) {
    const std::string ifb = undo["ifb"].get<std::string>();
    auto ifbIndex = createIfb(sock->get(), ifb);
    if (!ifbIndex) return std::move(ifbIndex).error();
    CHAOSD_TRY(applyTree(sock->get(), *ifbIndex, undo, ifb));
    CHAOSD_TRY(addIngressRedirect(sock->get(), *ifindex, *ifbIndex, slot, undo["filters"]));
    out.observed["ifb"] = ifb;
  } else {
    CHAOSD_TRY(applyTree(sock->get(), *ifindex, undo, iface));
  }
  return out;
}

Result<json> QdiscInjector::revert(const std::string& faultId, const json& undo) {
  CHAOSD_TRY(checkUndo(undo, faultId));
  auto guard = enterNetnsOf(undo);
  if (!guard) {
    if (guard.error().code() == ErrorCode::kNotFound) {
      return json{{"note", "the network namespace is gone"}};
    }
    return std::move(guard).error();
  }
  auto sock = routeSocket();
  if (!sock) return std::move(sock).error();
  const std::string iface = undo["iface"].get<std::string>();
  std::lock_guard lock(gTreeMu);
  auto ifindex = ifindexOf(sock->get(), iface);
  const uint32_t slot = undo["slot"].get<uint32_t>();
  if (!ingress(undo)) {
    if (!ifindex) {
      if (ifindex.error().code() == ErrorCode::kNotFound) {
        return json{{"note", "interface " + iface + " is gone"}};
      }
      return std::move(ifindex).error();
    }
    return revertTree(sock->get(), *ifindex, undo, iface);
  }
  if (ifindex) {
    for (int family : familiesOf(undo)) {
      CHAOSD_TRY(
          deleteFilters(sock->get(), *ifindex, kIngressHandle, prioFor(slot, family), family));
    }
    auto cache = qdiscCache(sock->get());
    if (!cache) return std::move(cache).error();
    Qdisc in = qdiscAt(cache->get(), *ifindex, TC_H_INGRESS);
    if (in) {
      auto prios = filterPrios(sock->get(), *ifindex, kIngressHandle);
      if (!prios) return std::move(prios).error();
      // Without filters it does nothing: ours, the last ingress fault on the interface gone.
      if (prios->empty()) {
        const int rc = rtnl_qdisc_delete(sock->get(), in.get());
        if (rc < 0 && !gone(rc)) return nlError("deleting the ingress qdisc of " + iface, rc);
      }
    }
  } else if (ifindex.error().code() != ErrorCode::kNotFound) {
    return std::move(ifindex).error();
  }
  json observed = json::object();
  const std::string ifb = undo["ifb"].get<std::string>();
  if (auto ifbIndex = ifindexOf(sock->get(), ifb)) {
    observed = leafCounters(sock->get(), *ifbIndex, slot);
  }
  CHAOSD_TRY(deleteLink(sock->get(), ifb));  // its qdiscs go with it
  return observed;
}

Result<std::vector<std::string>> QdiscInjector::audit(const json& undo) {
  CHAOSD_TRY(checkUndo(undo, ""));
  std::vector<std::string> out;
  auto guard = enterNetnsOf(undo);
  if (!guard) return out;
  auto sock = routeSocket();
  if (!sock) return std::move(sock).error();
  const std::string iface = undo["iface"].get<std::string>();
  const uint32_t slot = undo["slot"].get<uint32_t>();
  const std::string where = " in " + describeNs(undo);
  auto treeLeft = [&](int ifindex, const std::string& dev) -> Result<void> {
    auto cache = qdiscCache(sock->get());
    if (!cache) return std::move(cache).error();
    if (!isOurRoot(qdiscAt(cache->get(), ifindex, TC_H_ROOT).get())) return success();
    auto classes = ourClasses(sock->get(), ifindex);
    if (!classes) return std::move(classes).error();
    if (classes->count(classMinor(slot)) != 0) {
      out.push_back("class " + hexHandle(TC_HANDLE(kQdiscRootMajor, classMinor(slot))) +
                    " of fault " + undo.value("faultId", std::string()) + " on " + dev + where);
    }
    if (classes->empty()) {
      out.push_back("chaosd's HTB root c4a0: on " + dev + where + " with no fault class left");
    }
    auto prios = filterPrios(sock->get(), ifindex, TC_HANDLE(kQdiscRootMajor, 0));
    if (!prios) return std::move(prios).error();
    for (int family : familiesOf(undo)) {
      if (prios->count(prioFor(slot, family)) != 0) {
        out.push_back("u32 filters of priority " + std::to_string(prioFor(slot, family)) + " on " +
                      dev + where);
      }
    }
    return success();
  };
  auto ifindex = ifindexOf(sock->get(), iface);
  if (ingress(undo)) {
    const std::string ifb = undo["ifb"].get<std::string>();
    if (ifindexOf(sock->get(), ifb)) out.push_back("ifb device " + ifb + where);
    if (ifindex) {
      auto prios = filterPrios(sock->get(), *ifindex, kIngressHandle);
      if (!prios) return std::move(prios).error();
      for (int family : familiesOf(undo)) {
        if (prios->count(prioFor(slot, family)) != 0) {
          out.push_back("ingress redirect filters of priority " +
                        std::to_string(prioFor(slot, family)) + " on " + iface + where);
        }
      }
    }
  } else if (ifindex) {
    CHAOSD_TRY(treeLeft(*ifindex, iface));
  }
  return out;
}

}  // namespace chaosd
