#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"
#include "injectors/dns/DnsPolicy.h"

// The kernel surface of dns.error besides its nftables table (which it reaches through the
// NFQUEUE family's NfqueueKernel): the queue's interceptor, which reads each queued query,
// decides (DnsPolicy.h) and gives the kernel its verdict, and sends the error answers. The
// injector holds only these, so its apply, revert and failure paths run against fakes in the
// unit tier (tests/support/FakeDnsKernel.h).
namespace chaosd::dns {

struct InterceptConfig {
  std::string netnsPath;  // "" for the caller's namespace
  uint16_t queue = 0;
  uint32_t maxlen = 1000;  // the kernel queue's, and the most queries held at once
  std::vector<std::string> names;
  std::vector<std::string> types;
  Action action = Action::kNxdomain;
  std::chrono::nanoseconds delay{0};
};

// A bound queue and the thread serving it. Destroying it stops it.
class Interception {
 public:
  virtual ~Interception() = default;
  // Accepts every query still held or queued (none is lost), then unbinds the queue.
  // Idempotent; the final counts.
  virtual DnsStats stop() = 0;
  virtual uint16_t queue() const = 0;
};

class DnsKernel {
 public:
  virtual ~DnsKernel() = default;
  // Binds config.queue in config.netnsPath (copying packets) and starts serving it. kConflict
  // when another socket holds the queue; kInvalid for names or types that do not compile.
  virtual Result<std::unique_ptr<Interception>> startInterception(InterceptConfig config) = 0;
};

// The kernel's: libnetfilter_queue over libmnl, answers from transparent UDP sockets.
class NfqueueDnsKernel final : public DnsKernel {
 public:
  Result<std::unique_ptr<Interception>> startInterception(InterceptConfig config) override;
};

}  // namespace chaosd::dns
