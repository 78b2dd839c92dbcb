#include "injectors/network/NfqueueConsumer.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <fstream>
#include <sstream>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"

namespace chaosd::nfq {
namespace {

using Clock = std::chrono::steady_clock;

// Messages read per wake-up before releasing what is due: a flood of new packets must not
// make held ones late.
constexpr size_t kReceiveBudget = 256;
// Room for one queued packet's message (metadata only) in the socket's buffer.
constexpr int kBytesPerPacket = 1024;

void closeSocket(mnl_socket* nl) {
  if (nl != nullptr) mnl_socket_close(nl);
}

// Sends one config message with NLM_F_ACK and waits for its answer.
Result<void> configure(mnl_socket* nl, nlmsghdr* nlh, uint32_t seq) {
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = seq;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    return Error::fromErrno("configuring the queue", errno);
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("reading the queue's configuration answer", errno);
    }
    int len = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len)) {
      if (m->nlmsg_type != NLMSG_ERROR || m->nlmsg_seq != seq) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
      if (err->error == 0) return success();
      return Error::fromErrno("configuring the queue", -err->error);
    }
  }
}

}  // namespace

void unbindQueue(mnl_socket* nl, uint16_t queue) {
  if (nl == nullptr) return;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
  (void)mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
  closeSocket(nl);
}

Result<mnl_socket*> bindQueue(uint16_t queue, uint32_t maxlen, uint32_t copyRange) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr) return Error::fromErrno("opening a netfilter netlink socket", errno);
  std::unique_ptr<mnl_socket, void (*)(mnl_socket*)> owner(nl, closeSocket);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    return Error::fromErrno("binding the netlink socket", errno);
  }
  const int fd = mnl_socket_get_fd(nl);
  // Past this the kernel accepts packets itself (fail-open) rather than queue them.
  const int rcvbuf = static_cast<int>(
      std::clamp<int64_t>(static_cast<int64_t>(maxlen) * kBytesPerPacket, 256 << 10, 64 << 20));
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  int one = 1;
  // An overrun is not an error to us: the kernel accepted what did not fit (fail-open), and
  // the ids we never see say how many.
  (void)mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof one);
  (void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one);
  timeval timeout{5, 0};  // only for the configuration answers; the loop polls
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
  if (auto r = configure(nl, nlh, 1); !r) {
    const int err = r.error().sysErrno();
    if (err == EBUSY || err == EPERM) {
      return Error(ErrorCode::kConflict,
                   "NFQUEUE queue " + std::to_string(queue) + " is held by another socket", err);
    }
    return std::move(r).error().withContext("binding NFQUEUE queue " + std::to_string(queue));
  }
  nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
  // Metadata only (the delay's case: no byte of the packet is copied to us), or the packet's
  // first copyRange bytes.
  if (copyRange == 0) {
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
  } else {
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, static_cast<int>(copyRange));
  }
  nfq_nlmsg_cfg_put_qmaxlen(nlh, maxlen);
  // FAIL_OPEN: what does not fit is accepted, not dropped. GSO: a TCP super-packet is queued
  // whole instead of being segmented for us (we never look inside).
  const uint32_t flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO;
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
  if (auto r = configure(nl, nlh, 2); !r) {
    return std::move(r).error().withContext("configuring NFQUEUE queue " + std::to_string(queue));
  }
  timeval none{0, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  return owner.release();
}

Result<std::unique_ptr<NfqueueConsumer>> NfqueueConsumer::start(Config config) {
  NetnsRef ref;
  ref.path = config.netnsPath;
  mnl_socket* nl = nullptr;
  auto ran = runInNetns(ref, [&]() -> Result<void> {
    auto bound = bindQueue(config.queue, config.maxlen, 0);
    if (!bound) return std::move(bound).error();
    nl = *bound;
    return success();
  });
  if (!ran) return std::move(ran).error();
  std::unique_ptr<NfqueueConsumer> c(
      new NfqueueConsumer(nl, config.queue, config.maxlen, config.sampler));
  if (!c->stop_) {
    return Error::fromErrno("creating the consumer's eventfd", errno);
  }
  c->thread_ = std::thread([p = c.get()] { p->loop(); });
  return c;
}

NfqueueConsumer::NfqueueConsumer(mnl_socket* nl, uint16_t queue, uint32_t maxlen,
                                 DelaySampler sampler)
    : nl_(nl),
      queue_(queue),
      held_(maxlen),
      sampler_(sampler),
      stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      recvBuf_(0xffff + MNL_SOCKET_BUFFER_SIZE),
      sendBuf_(64 << 10) {}

NfqueueConsumer::~NfqueueConsumer() { (void)stop(); }

ConsumerStats NfqueueConsumer::stats() const {
  std::lock_guard lock(statsMu_);
  return stats_;
}

ConsumerStats NfqueueConsumer::stop() {
  if (!stopped_) {
    stopped_ = true;
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    nfq::unbindQueue(nl_, queue_);  // the loop accepted everything still queued
    nl_ = nullptr;
  }
  return stats();
}

void NfqueueConsumer::loop() {
  // Wake-ups on time to the microsecond, not the default 50 us slack.
  (void)::prctl(PR_SET_TIMERSLACK, 1UL);
  const int sock = mnl_socket_get_fd(nl_);
  for (;;) {
    timespec timeout{};
    timespec* wait = nullptr;
    if (auto due = held_.nextDue()) {
      const auto left = std::max(Clock::duration::zero(), *due - Clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      wait = &timeout;
    }
    pollfd fds[2] = {{sock, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    const int n = ::ppoll(fds, 2, wait, nullptr);
    if (n < 0 && errno != EINTR) {
      log::get("network")->error("nfqueue queue={} poll failed: {}", queue_, std::strerror(errno));
      break;
    }
    if (n > 0 && fds[1].revents != 0) break;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) receive(kReceiveBudget);
    const auto earliest = held_.nextDue();
    release(held_.popDue(Clock::now()), false, earliest);
    flushVerdicts();
    publish();
  }
  // The table is gone (revert deletes it first), so every packet ever queued is in the
  // socket or held: read the rest, then accept everything.
  receive(0);
  release(held_.popAll(), true, std::nullopt);
  flushVerdicts();
  publish();
}

void NfqueueConsumer::publish() {
  std::lock_guard lock(statsMu_);
  stats_ = live_;
}

void NfqueueConsumer::receive(size_t budget) {
  const int sock = mnl_socket_get_fd(nl_);
  for (size_t count = 0; budget == 0 || count < budget; ++count) {
    const ssize_t n = ::recv(sock, recvBuf_.data(), recvBuf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      return;  // EAGAIN: empty
    }
    const auto now = Clock::now();
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(recvBuf_.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error != 0) ++live_.verdictErrors;
        continue;
      }
      if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET) continue;
      nlattr* attr[NFQA_MAX + 1] = {};
      if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) continue;
      const auto* ph =
          static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
      const uint32_t id = ntohl(ph->packet_id);
      ++live_.queued;
      // The kernel numbers only the packets it queues; one it numbered but could not deliver
      // (our buffer full) it accepted itself.
      if (lastId_ && id - *lastId_ > 1 && id - *lastId_ < 0x80000000u) {
        live_.idGaps += id - *lastId_ - 1;
      }
      lastId_ = id;
      if (!held_.push(id, now + sampler_.next())) {
        ++live_.overflow;
        putVerdict(NFQNL_MSG_VERDICT, id);
      }
      live_.maxHeld = std::max<uint64_t>(live_.maxHeld, held_.size());
    }
  }
}

void NfqueueConsumer::putVerdict(int type, uint32_t id) {
  if (sendLen_ + 64 > sendBuf_.size()) flushVerdicts();
  nlmsghdr* nlh = nfq_nlmsg_put(sendBuf_.data() + sendLen_, type, queue_);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
  sendLen_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

void NfqueueConsumer::release(const ReleaseQueue::Release& r, bool atStop,
                              std::optional<Clock::time_point> due) {
  if (r.ids.empty()) return;
  if (r.batchUpTo) {
    putVerdict(NFQNL_MSG_VERDICT_BATCH, *r.batchUpTo);
    ++live_.batchVerdicts;
  } else {
    for (uint32_t id : r.ids) putVerdict(NFQNL_MSG_VERDICT, id);
  }
  (atStop ? live_.releasedAtStop : live_.released) += r.ids.size();
  if (due) {
    const auto late = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - *due);
    live_.maxLateNs = std::max<int64_t>(live_.maxLateNs, late.count());
  }
}

void NfqueueConsumer::flushVerdicts() {
  if (sendLen_ == 0) return;
  // Several verdicts in one send: the kernel walks every message of the datagram.
  if (mnl_socket_sendto(nl_, sendBuf_.data(), sendLen_) < 0) {
    log::get("network")->warn("nfqueue queue={} sending verdicts failed: {}", queue_,
                              std::strerror(errno));
  }
  sendLen_ = 0;
}

Result<std::set<uint16_t>> boundQueues() {
  std::set<uint16_t> out;
  std::ifstream in("/proc/thread-self/net/netfilter/nfnetlink_queue");
  if (!in) return out;  // nfnetlink_queue not loaded: nothing bound
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    unsigned queue = 0;
    if (fields >> queue && queue <= 0xffff) out.insert(static_cast<uint16_t>(queue));
  }
  return out;
}

}  // namespace chaosd::nfq
