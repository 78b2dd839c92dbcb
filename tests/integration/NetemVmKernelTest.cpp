// The VM harness's own proof that netem works where scripts/vm-test boots (Debian's stock
// kernel): a netem qdisc added through libnl-route directly, no chaosd injector involved,
// delays real UDP traffic between two namespaces of the test's own by what it says. Suites
// named NetemVm* are the ones scripts/vm-test runs; on a kernel without sch_netem (this
// machine's) they skip themselves.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/tc.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Netns.h"
#include "experiments/model/Experiment.h"
#include "tests/support/NetnsPair.h"

namespace chaosd {
namespace {

using Clock = std::chrono::steady_clock;
using chaosd::testing::NetnsPair;

constexpr uint16_t kEchoPort = 7007;
constexpr int kProbes = 21;  // odd: the median is one sample
constexpr double kDelayMs = 100.0;

NetnsRef named(const std::string& name) {
  NetnsRef ref;
  ref.name = name;
  return ref;
}

struct SocketCloser {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct QdiscPut {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct CachePut {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using NlSocket = std::unique_ptr<nl_sock, SocketCloser>;
using Qdisc = std::unique_ptr<rtnl_qdisc, QdiscPut>;
using Cache = std::unique_ptr<nl_cache, CachePut>;

// What the kernel says the root qdisc of a device is: its kind and, for netem, its delay.
struct RootQdisc {
  std::string kind;
  uint32_t delayUs = 0;
};

Result<void> nlError(const std::string& what, int err) {
  // libnl errors are negative NLE_* codes; NLE_OBJ_NOTFOUND is how a missing qdisc kind
  // (no sch_netem) comes back.
  return Error(err == -NLE_OBJ_NOTFOUND ? ErrorCode::kUnsupported : ErrorCode::kKernel,
               what + ": " + nl_geterror(err));
}

// Runs fn(socket, ifindex) on a thread inside ns, with a route socket opened there.
template <typename Fn>
Result<void> withRouteSocket(const std::string& ns, const std::string& dev, Fn fn) {
  return runInNetns(named(ns), [&]() -> Result<void> {
    NlSocket sock(nl_socket_alloc());
    if (!sock) return Error(ErrorCode::kInternal, "nl_socket_alloc failed");
    if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nlError("connect", err);
    nl_cache* raw = nullptr;
    if (int err = rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw); err < 0) {
      return nlError("link cache", err);
    }
    Cache links(raw);
    const int ifindex = rtnl_link_name2i(links.get(), dev.c_str());
    if (ifindex <= 0) return Error(ErrorCode::kNotFound, "no device " + dev);
    return fn(sock.get(), ifindex);
  });
}

Result<void> addNetemDelay(const std::string& ns, const std::string& dev, uint32_t delayUs) {
  return withRouteSocket(ns, dev, [&](nl_sock* sock, int ifindex) -> Result<void> {
    Qdisc q(rtnl_qdisc_alloc());
    rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
    rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(0xc4d0, 0));
    if (int err = rtnl_tc_set_kind(TC_CAST(q.get()), "netem"); err < 0) {
      return nlError("kind netem", err);
    }
    rtnl_netem_set_delay(q.get(), static_cast<int>(delayUs));  // microseconds (KERNEL-FACTS)
    if (int err = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
      return nlError("adding netem", err);
    }
    return success();
  });
}

Result<void> deleteRootQdisc(const std::string& ns, const std::string& dev) {
  return withRouteSocket(ns, dev, [&](nl_sock* sock, int ifindex) -> Result<void> {
    Qdisc q(rtnl_qdisc_alloc());
    rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
    rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
    if (int err = rtnl_qdisc_delete(sock, q.get()); err < 0) return nlError("deleting", err);
    return success();
  });
}

// The kernel's own dump, not our copy of what we asked for.
Result<RootQdisc> rootQdisc(const std::string& ns, const std::string& dev) {
  RootQdisc found;
  auto ran = withRouteSocket(ns, dev, [&](nl_sock* sock, int ifindex) -> Result<void> {
    nl_cache* raw = nullptr;
    if (int err = rtnl_qdisc_alloc_cache(sock, &raw); err < 0) return nlError("qdisc dump", err);
    Cache qdiscs(raw);
    Qdisc root(rtnl_qdisc_get_by_parent(qdiscs.get(), ifindex, TC_H_ROOT));
    if (!root) return success();  // the kernel default (noqueue on veth) is not dumped as root
    const char* kind = rtnl_tc_get_kind(TC_CAST(root.get()));
    found.kind = kind != nullptr ? kind : "";
    if (found.kind == "netem")
      found.delayUs = static_cast<uint32_t>(rtnl_netem_get_delay(root.get()));
    return success();
  });
  if (!ran) return std::move(ran).error();
  return found;
}

// A UDP socket bound inside a namespace (a socket stays in the namespace it was opened in).
Result<Fd> udpSocketIn(const std::string& ns, const std::string& address, uint16_t port) {
  Fd fd;
  auto ran = runInNetns(named(ns), [&]() -> Result<void> {
    fd = Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return Error::fromErrno("socket", errno);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      return Error::fromErrno("bind " + address, errno);
    }
    return success();
  });
  if (!ran) return std::move(ran).error();
  return fd;
}

// Echoes every datagram back to its sender until destroyed.
class UdpEchoServer {
 public:
  explicit UdpEchoServer(Fd fd) : fd_(std::move(fd)), thread_([this] { serve(); }) {}
  UdpEchoServer(const UdpEchoServer&) = delete;
  UdpEchoServer& operator=(const UdpEchoServer&) = delete;
  ~UdpEchoServer() {
    stop_ = true;
    thread_.join();
  }

 private:
  void serve() {
    std::array<char, 64> buf{};
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;  // a short timeout only to notice stop_
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) {
        ::sendto(fd_.get(), buf.data(), static_cast<size_t>(n), 0,
                 reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  Fd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The median round-trip time in ms of kProbes sequential echoes, each timed by the test
// itself; a probe unanswered within a second fails the measurement.
Result<double> medianRttMs(const Fd& client, const std::string& server) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kEchoPort);
  ::inet_pton(AF_INET, server.c_str(), &to.sin_addr);
  std::vector<double> rtts;
  for (uint32_t seq = 0; seq < kProbes; ++seq) {
    const auto sent = Clock::now();
    if (::sendto(client.get(), &seq, sizeof seq, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) !=
        sizeof seq) {
      return Error::fromErrno("sendto", errno);
    }
    for (;;) {  // skip late answers to earlier probes
      const auto left = std::chrono::seconds(1) - (Clock::now() - sent);
      pollfd p{client.get(), POLLIN, 0};
      const int ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
      if (::poll(&p, 1, ms) <= 0) {
        return Error(ErrorCode::kTimeout, "probe " + std::to_string(seq) + " unanswered");
      }
      uint32_t back = 0;
      if (::recv(client.get(), &back, sizeof back, 0) == sizeof back && back == seq) break;
    }
    rtts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
  }
  std::nth_element(rtts.begin(), rtts.begin() + kProbes / 2, rtts.end());
  return rtts[kProbes / 2];
}

class NetemVmKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    // Namespaces chaosd-nk-<id>-a/-b, veth cnk-a (10.232.0.1) / cnk-b (10.232.0.2).
    ASSERT_EQ(pair_.create("nk", "cnk", {"10.232.0.1/24"}, {"10.232.0.2/24"}), "");
    a_ = pair_.a();
    b_ = pair_.b();
  }

  // Deleting the namespaces removes the veth pair and every qdisc on it, even after a failure.
  NetnsPair pair_;
  std::string a_, b_;
};

TEST_F(NetemVmKernel, DelayRaisesTheRoundTripByItsValueAndGoesAwayWhenDeleted) {
  auto serverFd = udpSocketIn(b_, "10.232.0.2", kEchoPort);
  ASSERT_TRUE(serverFd.ok()) << serverFd.error().describe();
  UdpEchoServer server(std::move(*serverFd));
  auto client = udpSocketIn(a_, "10.232.0.1", 0);
  ASSERT_TRUE(client.ok()) << client.error().describe();

  auto baseline = medianRttMs(*client, "10.232.0.2");
  ASSERT_TRUE(baseline.ok()) << baseline.error().describe();

  auto added = addNetemDelay(a_, "cnk-a", static_cast<uint32_t>(kDelayMs * 1000));
  if (!added && added.error().code() == ErrorCode::kUnsupported) {
    // A kernel without sch_netem; inside scripts/vm-test a skip fails the run.
    GTEST_SKIP() << "this kernel has no netem qdisc: " << added.error().describe();
  }
  ASSERT_TRUE(added.ok()) << added.error().describe();
  auto root = rootQdisc(a_, "cnk-a");
  ASSERT_TRUE(root.ok()) << root.error().describe();
  EXPECT_EQ(root->kind, "netem");
  EXPECT_EQ(root->delayUs, 100000u);

  // Only the request crosses the delayed egress of cnk-a, so the round trip grows by the
  // delay once.
  auto delayed = medianRttMs(*client, "10.232.0.2");
  ASSERT_TRUE(delayed.ok()) << delayed.error().describe();
  const double added_ms = *delayed - *baseline;
  std::printf("[ measure  ] median RTT %.3f ms, with netem delay 100ms %.3f ms (+%.3f ms)\n",
              *baseline, *delayed, added_ms);
  EXPECT_NEAR(added_ms, kDelayMs, kDelayMs * 0.05 + 2.0);

  ASSERT_TRUE(deleteRootQdisc(a_, "cnk-a").ok());
  root = rootQdisc(a_, "cnk-a");
  ASSERT_TRUE(root.ok()) << root.error().describe();
  EXPECT_NE(root->kind, "netem") << "the netem qdisc is still the root";
  auto after = medianRttMs(*client, "10.232.0.2");
  ASSERT_TRUE(after.ok()) << after.error().describe();
  std::printf("[ measure  ] median RTT after deleting netem %.3f ms\n", *after);
  EXPECT_LT(*after, *baseline + 2.0) << "the round trip is back to what it was";
}

}  // namespace
}  // namespace chaosd
