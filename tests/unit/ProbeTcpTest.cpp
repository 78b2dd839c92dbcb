#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>

#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/TcpProber.h"
#include "tests/support/TestHttpServer.h"

namespace chaosd {
namespace {

using std::chrono::milliseconds;
using testing::TestTcpListener;

ProbeSpec tcpSpec(const std::string& host, uint16_t port,
                  milliseconds timeout = milliseconds(2000)) {
  ProbeSpec spec;
  spec.name = "db";
  spec.kind = ProbeKind::kTcp;
  spec.tcp.host = host;
  spec.tcp.port = port;
  spec.timeout = timeout;
  return spec;
}

ProbeSample sampleOnce(const ProbeSpec& spec) {
  auto probe = makeProbe(spec);
  EXPECT_TRUE(probe.ok());
  return (*probe)->sample(Phase::kDuring);
}

TEST(ProbeTcpTest, ConnectsToAListener) {
  TestTcpListener listener;
  auto s = sampleOnce(tcpSpec("127.0.0.1", listener.port()));
  EXPECT_TRUE(s.ok) << s.detail;
  EXPECT_EQ(s.detail, "connected to 127.0.0.1:" + std::to_string(listener.port()));
  EXPECT_FALSE(s.value.has_value());
}

TEST(ProbeTcpTest, ConnectionRefused) {
  const uint16_t port = testing::closedPort();
  auto s = sampleOnce(tcpSpec("127.0.0.1", port));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(ProbeTcpTest, Ipv6Loopback) {
  if (!TestTcpListener::hasIpv6Loopback()) GTEST_SKIP() << "no ::1 on this machine";
  TestTcpListener listener("::1");
  auto s = sampleOnce(tcpSpec("::1", listener.port()));
  EXPECT_TRUE(s.ok) << s.detail;
  EXPECT_EQ(s.detail, "connected to [::1]:" + std::to_string(listener.port()));
  EXPECT_TRUE(sampleOnce(tcpSpec("[::1]", listener.port())).ok);

  listener.close();
  s = sampleOnce(tcpSpec("::1", listener.port()));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "connect [::1]:" + std::to_string(listener.port()) + ": Connection refused");
}

TEST(ProbeTcpTest, ResolvesNames) {
  TestTcpListener listener;
  auto s = sampleOnce(tcpSpec("localhost", listener.port()));
  EXPECT_TRUE(s.ok) << s.detail;

  auto bad = sampleOnce(tcpSpec("no-such-host.invalid", listener.port()));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.detail.rfind("resolve no-such-host.invalid: ", 0), 0u) << bad.detail;
}

TEST(ProbeTcpTest, TimeoutIsStrict) {
  // A listener whose accept queue is full and never drained: the kernel drops further SYNs,
  // so a connect hangs until our deadline.
  TestTcpListener listener;
  ASSERT_EQ(::listen(listener.fd(), 0), 0);
  std::vector<int> fillers;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(listener.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Fill the queue: connects complete until it is full, then stay in progress.
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  auto probe = makeProbe(tcpSpec("127.0.0.1", listener.port(), milliseconds(300)));
  ASSERT_TRUE(probe.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto s = (*probe)->sample(Phase::kDuring);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  for (int fd : fillers) ::close(fd);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail,
            "timeout after 300ms connecting to 127.0.0.1:" + std::to_string(listener.port()));
  EXPECT_GE(elapsed, milliseconds(300));
  EXPECT_LT(elapsed, milliseconds(500));
}

TEST(ProbeTcpTest, ResolveTcpLiteralsNeverBlock) {
  const auto deadline = std::chrono::steady_clock::now();  // already passed
  auto v4 = resolveTcp("127.0.0.1", 80, deadline);
  ASSERT_TRUE(v4.ok());
  ASSERT_EQ(v4->size(), 1u);
  EXPECT_EQ((*v4)[0].text, "127.0.0.1:80");
  auto v6 = resolveTcp("::1", 443, deadline);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ((*v6)[0].text, "[::1]:443");
}

TEST(ProbeTcpTest, RefusesAnIncompleteSpec) {
  EXPECT_FALSE(makeProbe(tcpSpec("", 80)).ok());
  EXPECT_FALSE(makeProbe(tcpSpec("127.0.0.1", 0)).ok());
}

}  // namespace
}  // namespace chaosd
