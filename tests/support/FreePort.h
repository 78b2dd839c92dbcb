#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace chaosd::testing {

// The first of `count` consecutive loopback TCP ports that nothing holds now, for a demo
// service a test starts. The ports are below the kernel's ephemeral range (32768-60999 by
// default), so no outgoing connection of another test takes one meanwhile (a pid-derived
// port in that range collided once in CI and the demo exited with "address in use"). Each
// port is checked by binding it without SO_REUSEADDR, the strictest check. Returns 0 when
// no block is free.
inline uint16_t freeLoopbackPorts(int count = 1) {
  static uint16_t next = static_cast<uint16_t>(20000 + (::getpid() % 2000) * 5);
  const auto bindable = [](uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  };
  for (int attempt = 0; attempt < 4000; ++attempt) {
    if (next + count > 32700) next = 20000;
    const uint16_t first = next;
    next = static_cast<uint16_t>(next + count);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = bindable(static_cast<uint16_t>(first + i));
    if (free) return first;
  }
  return 0;
}

}  // namespace chaosd::testing
