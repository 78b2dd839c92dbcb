// The fault's leaf qdisc (tbf or netem) added under its class: TcNetns::addLeaf over libnl.
#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "injectors/network/QdiscNetlink.h"

namespace chaosd::qdisc {
namespace {

// A fraction as netem's 32-bit probability.
int probability(double p) {
  return static_cast<int>(static_cast<uint32_t>(std::llround(p * 4294967295.0)));
}

// The leaf's integers are bounded at prepare; libnl takes them as int.
int asInt(uint64_t v) { return static_cast<int>(v); }
int asInt(int64_t v) { return static_cast<int>(v); }

Result<void> setTbf(rtnl_qdisc* q, const TbfLeaf& t) {
  rtnl_qdisc_tbf_set_rate(q, asInt(t.rate), asInt(t.burst), 0);
  if (t.limit) {
    rtnl_qdisc_tbf_set_limit(q, asInt(*t.limit));
    return success();
  }
  const int rc = rtnl_qdisc_tbf_set_limit_by_latency(q, asInt(*t.latencyUs));
  if (rc < 0) return nlError("tbf latency", rc);
  return success();
}

Result<void> setNetem(rtnl_qdisc* q, const NetemLeaf& n) {
  rtnl_netem_set_limit(q, asInt(n.limit));
  if (n.delayUs) rtnl_netem_set_delay(q, asInt(*n.delayUs));
  if (n.jitterUs) rtnl_netem_set_jitter(q, asInt(*n.jitterUs));
  if (n.correlation) rtnl_netem_set_delay_correlation(q, probability(*n.correlation));
  if (n.distributionFile) {
    const int rc = rtnl_netem_set_delay_distribution(q, n.distributionFile->c_str());
    if (rc < 0) {
      return nlError("netem distribution " + nlohmann::json(*n.distributionFile).dump(), rc);
    }
  }
  if (n.loss) rtnl_netem_set_loss(q, probability(*n.loss));
  if (n.lossCorrelation) rtnl_netem_set_loss_correlation(q, probability(*n.lossCorrelation));
  if (n.duplicate) rtnl_netem_set_duplicate(q, probability(*n.duplicate));
  if (n.corrupt) rtnl_netem_set_corruption_probability(q, probability(*n.corrupt));
  if (n.reorder) {
    rtnl_netem_set_reorder_probability(q, probability(*n.reorder));
    rtnl_netem_set_gap(q, n.gap ? asInt(*n.gap) : 1);
  }
  return success();
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

// The add request of the leaf, with its parameters.
Result<Msg> leafRequest(int ifindex, uint32_t parent, uint32_t handle, const QdiscLeaf& leaf) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), parent);
  rtnl_tc_set_handle(TC_CAST(q.get()), handle);
  const std::string kind = leaf.kind();
  int rc = rtnl_tc_set_kind(TC_CAST(q.get()), kind.c_str());
  if (rc < 0) return nlError("qdisc kind " + kind, rc);
  if (const auto* t = std::get_if<TbfLeaf>(&leaf.shape)) CHAOSD_TRY(setTbf(q.get(), *t));
  const auto* n = std::get_if<NetemLeaf>(&leaf.shape);
  if (n != nullptr) CHAOSD_TRY(setNetem(q.get(), *n));
  nl_msg* raw = nullptr;
  rc = rtnl_qdisc_build_add_request(q.get(), NLM_F_CREATE | NLM_F_EXCL, &raw);
  if (rc < 0) return nlError("building the " + kind + " request", rc);
  Msg msg(raw);
  if (n != nullptr && n->rateBytes) CHAOSD_TRY(appendNetemRate(msg.get(), *n->rateBytes));
  return msg;
}

}  // namespace

Result<void> addLeaf(nl_sock* sock, int ifindex, uint32_t parent, uint32_t handle,
                     const QdiscLeaf& leaf) {
  auto msg = leafRequest(ifindex, parent, handle, leaf);
  if (!msg) return std::move(msg).error();
  const int rc = sendAndAck(sock, msg->get());
  if (rc < 0) {
    if (leaf.isNetem() && rc == -NLE_OBJ_NOTFOUND) {
      return Error(ErrorCode::kUnsupported, missingNetem());
    }
    return nlError("adding " + leaf.kind() + " " + hexHandle(handle), rc);
  }
  return success();
}

}  // namespace chaosd::qdisc
