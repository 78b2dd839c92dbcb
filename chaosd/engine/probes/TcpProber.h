#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "chaosd/engine/probes/Probe.h"

namespace chaosd {

// `tcp:` probe. Passes when a TCP connection to host:port is established within the timeout
// (then closed at once). Each resolved address (v6 and v4) is tried in turn in the time left.
class TcpProber final : public TimedProbe {
 public:
  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock);

 protected:
  Observation observe() override;

 private:
  TcpProber(const ProbeSpec& spec, const Clock& clock) : TimedProbe(spec, clock) {}
};

// One address to connect to, with its printable form ("127.0.0.1:80", "[::1]:80").
struct SocketAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;
};

// Resolves host (an IPv4 or IPv6 literal, optionally in brackets, or a name) for TCP. A
// literal never blocks; a name is resolved on a helper thread that is abandoned (left to
// finish on its own) when the deadline passes, so the caller never waits past the deadline.
Result<std::vector<SocketAddress>> resolveTcp(const std::string& host, uint16_t port,
                                              std::chrono::steady_clock::time_point deadline);

}  // namespace chaosd
