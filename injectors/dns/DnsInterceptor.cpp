#include "injectors/dns/DnsInterceptor.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include "chaosd/base/Log.h"
#include "chaosd/base/Netns.h"
#include "injectors/network/NfqueueConsumer.h"
#include "injectors/network/NftRecords.h"

namespace chaosd::dns {
namespace {

// Messages read per wake-up before releasing what is due.
constexpr size_t kReceiveBudget = 256;
// Bytes of each packet copied to us: a whole DNS message over UDP or TCP.
constexpr uint32_t kCopyRange = 0xffff;

// A UDP socket that may send from `addr`:`port` though the address is not local.
Fd transparentSocket(int family, const in6_addr& addr, uint16_t port) {
  Fd s(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return s;
  int one = 1;
  const bool v6 = family == AF_INET6;
  if (::setsockopt(s.get(), v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                   sizeof one) != 0 ||
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return Fd();
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = addr;
    a->sin6_port = htons(port);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, &addr, 4);
    a->sin_port = htons(port);
    len = sizeof *a;
  }
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Fd();
  return s;
}

}  // namespace

Result<std::unique_ptr<DnsInterceptor>> DnsInterceptor::start(InterceptConfig config) {
  auto matcher = QueryMatcher::create(config.names, config.types);
  if (!matcher) return std::move(matcher).error();
  DnsPolicy policy(std::move(*matcher), config.action);
  mnl_socket* nl = nullptr;
  auto ran = runInNetns(netnsAtPath(config.netnsPath), [&]() -> Result<void> {
    auto bound = nfq::bindQueue(config.queue, config.maxlen, kCopyRange);
    if (!bound) return std::move(bound).error();
    nl = *bound;
    return success();
  });
  if (!ran) return std::move(ran).error();
  std::unique_ptr<DnsInterceptor> c(new DnsInterceptor(nl, std::move(config), std::move(policy)));
  if (!c->stop_) return Error::fromErrno("creating the interceptor's eventfd", errno);
  c->thread_ = std::thread([p = c.get()] { p->loop(); });
  return c;
}

DnsInterceptor::DnsInterceptor(mnl_socket* nl, InterceptConfig config, DnsPolicy policy)
    : nl_(nl),
      queue_(config.queue),
      netnsPath_(std::move(config.netnsPath)),
      limit_(config.maxlen),
      delay_(config.delay),
      policy_(std::move(policy)),
      stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      recvBuf_(kCopyRange + MNL_SOCKET_BUFFER_SIZE),
      sendBuf_(64 << 10) {}

DnsInterceptor::~DnsInterceptor() { (void)stop(); }

DnsStats DnsInterceptor::stats() const {
  std::lock_guard lock(statsMu_);
  return stats_;
}

DnsStats DnsInterceptor::stop() {
  if (!stopped_) {
    stopped_ = true;
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    nfq::unbindQueue(nl_, queue_);
    nl_ = nullptr;
  }
  return stats();
}

void DnsInterceptor::loop() {
  (void)::prctl(PR_SET_TIMERSLACK, 1UL);
  // The answer sockets must live in the target's namespace: this thread stays there.
  auto inside = NetnsGuard::enter(netnsAtPath(netnsPath_));
  if (!inside) {
    log::get("dns")->error("dns queue={} cannot enter {}: {}", queue_, netnsPath_,
                           inside.error().describe());
  }
  const int sock = mnl_socket_get_fd(nl_);
  for (;;) {
    timespec timeout{};
    timespec* wait = nullptr;
    if (!held_.empty()) {
      const auto left = std::max(Clock::duration::zero(), held_.top().first - Clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      wait = &timeout;
    }
    pollfd fds[2] = {{sock, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    const int n = ::ppoll(fds, 2, wait, nullptr);
    if (n < 0 && errno != EINTR) {
      log::get("dns")->error("dns queue={} poll failed: {}", queue_, std::strerror(errno));
      break;
    }
    if (n > 0 && fds[1].revents != 0) break;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) receive(kReceiveBudget, false);
    releaseDue(Clock::now());
    flushVerdicts();
    publish();
  }
  // The rules are gone (revert flushes them first): what is still queued passes untouched, and
  // every held query is accepted.
  receive(0, true);
  while (!held_.empty()) {
    putVerdict(held_.top().second, NF_ACCEPT);
    held_.pop();
    ++live_.releasedAtStop;
  }
  flushVerdicts();
  publish();
  answerSockets_.clear();  // closed inside the namespace they belong to
  raw4_ = Fd();
  raw6_ = Fd();
}

void DnsInterceptor::receive(size_t budget, bool passAll) {
  const int sock = mnl_socket_get_fd(nl_);
  for (size_t count = 0; budget == 0 || count < budget; ++count) {
    const ssize_t n = ::recv(sock, recvBuf_.data(), recvBuf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      return;  // EAGAIN: empty
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(recvBuf_.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET) continue;
      nlattr* attr[NFQA_MAX + 1] = {};
      if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) continue;
      const auto* ph =
          static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
      const uint32_t id = ntohl(ph->packet_id);
      if (passAll || attr[NFQA_PAYLOAD] == nullptr) {
        putVerdict(id, NF_ACCEPT);
        continue;
      }
      serve(id, static_cast<const uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD])),
            mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
    }
  }
}

void DnsInterceptor::serve(uint32_t id, const uint8_t* payload, size_t len) {
  const Decision d = policy_.decide(payload, len, &flows_);
  Verdict done = d.verdict;
  switch (d.verdict) {
    case Verdict::kAccept:
      putVerdict(id, NF_ACCEPT);
      break;
    case Verdict::kDrop:
      putVerdict(id, NF_DROP);
      break;
    case Verdict::kDelay:
      if (held_.size() >= limit_) {
        ++live_.overflow;
        done = Verdict::kAccept;
        putVerdict(id, NF_ACCEPT);
      } else {
        held_.emplace(Clock::now() + delay_, id);
      }
      break;
    case Verdict::kReset:
      if (!answerTcp(id, d)) {
        ++live_.answerErrors;
        done = Verdict::kAccept;
        putVerdict(id, NF_ACCEPT);
      }
      break;
    case Verdict::kAnswer:
      if (!d.replacement.empty()) {
        if (!answerTcp(id, d)) {
          ++live_.answerErrors;
          done = Verdict::kAccept;
          putVerdict(id, NF_ACCEPT);
        }
      } else if (sendAnswer(*d.packet, d.answer)) {
        putVerdict(id, NF_DROP);
      } else {
        ++live_.answerErrors;
        done = Verdict::kAccept;
        putVerdict(id, NF_ACCEPT);
      }
      break;
  }
  live_.count(d, done);
}

bool DnsInterceptor::sendAnswer(const PacketView& q, const std::vector<uint8_t>& answer) {
  const bool v6 = q.family == AF_INET6;
  const std::string key(reinterpret_cast<const char*>(&q.dst), v6 ? 16 : 4);
  Fd& s = answerSockets_[{q.family, key, q.dport}];
  if (!s) s = transparentSocket(q.family, q.dst, q.dport);
  if (!s) {
    answerSockets_.erase({q.family, key, q.dport});
    log::get("dns")->warn("dns queue={} cannot send from the resolver's address: {}", queue_,
                          std::strerror(errno));
    return false;
  }
  sockaddr_storage to{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_addr = q.src;
    a->sin6_port = htons(q.sport);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, &q.src, 4);
    a->sin_port = htons(q.sport);
    len = sizeof *a;
  }
  return ::sendto(s.get(), answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&to),
                  len) == static_cast<ssize_t>(answer.size());
}

bool DnsInterceptor::answerTcp(uint32_t id, const Decision& d) {
  const bool v6 = (d.toClient[0] >> 4) == 6;
  Fd& raw = v6 ? raw6_ : raw4_;
  if (!raw) raw = Fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
  if (!raw) {
    log::get("dns")->warn("dns queue={} cannot open a raw socket: {}", queue_,
                          std::strerror(errno));
    return false;
  }
  // The server first: by the time the client acknowledges our FIN, the server's side is gone.
  putVerdict(id, NF_ACCEPT, &d.replacement);
  flushVerdicts();
  sockaddr_storage to{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    std::memcpy(&a->sin6_addr, d.toClient.data() + 24, 16);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr, d.toClient.data() + 16, 4);
    len = sizeof *a;
  }
  if (::sendto(raw.get(), d.toClient.data(), d.toClient.size(), 0, reinterpret_cast<sockaddr*>(&to),
               len) != static_cast<ssize_t>(d.toClient.size())) {
    // The server's side is reset already: the client's next retransmission meets its RST.
    log::get("dns")->warn("dns queue={} sending the TCP answer failed: {}", queue_,
                          std::strerror(errno));
    ++live_.answerErrors;
  }
  return true;
}

void DnsInterceptor::releaseDue(Clock::time_point now) {
  while (!held_.empty() && held_.top().first <= now) {
    putVerdict(held_.top().second, NF_ACCEPT);
    held_.pop();
  }
}

void DnsInterceptor::putVerdict(uint32_t id, int verdict, const std::vector<uint8_t>* packet) {
  const size_t need = 64 + (packet != nullptr ? MNL_ALIGN(packet->size()) + 8 : 0);
  if (sendLen_ + need > sendBuf_.size()) flushVerdicts();
  nlmsghdr* nlh = nfq_nlmsg_put(sendBuf_.data() + sendLen_, NFQNL_MSG_VERDICT, queue_);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), verdict);
  if (packet != nullptr) {
    nfq_nlmsg_verdict_put_pkt(nlh, packet->data(), static_cast<uint32_t>(packet->size()));
  }
  sendLen_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

void DnsInterceptor::flushVerdicts() {
  if (sendLen_ == 0) return;
  if (mnl_socket_sendto(nl_, sendBuf_.data(), sendLen_) < 0) {
    log::get("dns")->warn("dns queue={} sending verdicts failed: {}", queue_, std::strerror(errno));
  }
  sendLen_ = 0;
}

void DnsInterceptor::publish() {
  std::lock_guard lock(statsMu_);
  stats_ = live_;
}

Result<std::unique_ptr<Interception>> NfqueueDnsKernel::startInterception(InterceptConfig config) {
  auto started = DnsInterceptor::start(std::move(config));
  if (!started) return std::move(started).error();
  return std::unique_ptr<Interception>(std::move(*started));
}

}  // namespace chaosd::dns
