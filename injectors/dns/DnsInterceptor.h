#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "chaosd/base/Fd.h"
#include "injectors/dns/DnsKernel.h"

struct mnl_socket;

// The userspace half of dns.error: one thread inside the target's network namespace reads the
// packets the fault's rules queue (copied whole), decides with DnsPolicy and answers the kernel:
// accept (untouched), drop, hold for the delay then accept, or drop and send the error answer
// to the client from the resolver's address and port. That answer leaves from a UDP socket
// with IP_TRANSPARENT (IPV6_TRANSPARENT) bound to the resolver's address, which is not local:
// the kernel routes it to the client over loopback, so no raw socket and no hand-written IP
// header is needed. docs/faults/dns.md.
namespace chaosd::dns {

class DnsInterceptor final : public Interception {
 public:
  static Result<std::unique_ptr<DnsInterceptor>> start(InterceptConfig config);
  ~DnsInterceptor() override;
  DnsInterceptor(const DnsInterceptor&) = delete;
  DnsInterceptor& operator=(const DnsInterceptor&) = delete;

  DnsStats stop() override;
  uint16_t queue() const override { return queue_; }
  DnsStats stats() const;

 private:
  using Clock = std::chrono::steady_clock;
  using Held = std::pair<Clock::time_point, uint32_t>;  // due, packet id

  DnsInterceptor(mnl_socket* nl, InterceptConfig config, DnsPolicy policy);
  void loop();
  // Reads and serves what the socket holds now (at most `budget` messages; 0: until empty).
  // `passAll`: the fault is over, every packet is accepted.
  void receive(size_t budget, bool passAll);
  void serve(uint32_t id, const uint8_t* payload, size_t len);
  // Sends `answer` to the query's source from its destination; false when it could not.
  bool sendAnswer(const PacketView& query, const std::vector<uint8_t>& answer);
  // TCP (kAnswer, kReset): the verdict sends the query rewritten as a RST to the server, then
  // the raw socket sends the client its packet; false (and nothing done) without a raw socket.
  bool answerTcp(uint32_t id, const Decision& d);
  void releaseDue(Clock::time_point now);
  // `packet`: the bytes the kernel sends instead of the queued ones (NF_ACCEPT only).
  void putVerdict(uint32_t id, int verdict, const std::vector<uint8_t>* packet = nullptr);
  void flushVerdicts();
  void publish();

  mnl_socket* nl_;
  uint16_t queue_;
  std::string netnsPath_;
  size_t limit_;
  std::chrono::nanoseconds delay_;
  DnsPolicy policy_;
  Fd stop_;  // eventfd
  std::vector<char> recvBuf_;
  std::vector<char> sendBuf_;
  size_t sendLen_ = 0;
  std::priority_queue<Held, std::vector<Held>, std::greater<>> held_;
  // Answer sockets by (family, resolver address, port), opened on first use.
  std::map<std::tuple<int, std::string, uint16_t>, Fd> answerSockets_;
  // IPPROTO_RAW sockets (IPv4, IPv6) for forged TCP segments, opened on first use.
  Fd raw4_, raw6_;
  TcpFlows flows_;
  DnsStats live_;
  mutable std::mutex statsMu_;
  DnsStats stats_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace chaosd::dns
