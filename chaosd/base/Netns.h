#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"

// Network namespaces. setns() is per thread, so everything here switches only the calling
// thread (or a short-lived thread of its own); /proc/net and /sys/class/net keep showing the
// main thread's namespace, hence netlink (getifaddrs) for anything read inside.
namespace chaosd {

// A network namespace: the host's (none set), a name under /run/netns, a path, or a pid's.
struct NetnsRef {
  std::string name;
  std::string path;
  std::optional<int> pid;
  bool isHost() const { return name.empty() && path.empty() && !pid; }
  std::string describe() const;  // "host", "netns app", "/proc/42/ns/net"
  std::string nsPath() const;    // "" for host, else the path to open
};

// Opens the namespace file a reference names: a name under /run/netns, a path as given, or
// /proc/PID/ns/net. The host reference ("the namespace we are in") gives an invalid Fd:
// nothing to switch to. kNotFound when it does not exist, kInvalid when the file is not a
// network namespace.
Result<Fd> openNetns(const NetnsRef& ref);

// Holds the calling thread in another network namespace and brings it back on destruction.
// Must be destroyed on the thread that entered; a failed return aborts the process, since a
// thread left in the wrong namespace could apply a fault meant for a test namespace to the
// host.
class NetnsGuard {
 public:
  // Switches the calling thread into ref's namespace; the host reference switches nothing.
  static Result<NetnsGuard> enter(const NetnsRef& ref);
  // The same with a descriptor from openNetns; an invalid one switches nothing.
  static Result<NetnsGuard> enter(const Fd& netns);

  NetnsGuard(NetnsGuard&& other) noexcept;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

  // Whether this guard switched the thread (false for the host reference).
  bool switched() const { return original_.valid(); }

 private:
  NetnsGuard(Fd original, pid_t tid) : original_(std::move(original)), tid_(tid) {}

  Fd original_;  // /proc/thread-self/ns/net as it was before entering
  pid_t tid_ = 0;
};

// Runs fn on a fresh thread inside ref's namespace and waits for it. Sockets fn opens
// belong to that namespace and stay there after it returns.
Result<void> runInNetns(const NetnsRef& ref, const std::function<Result<void>()>& fn);

struct InterfaceInfo {
  std::string name;
  unsigned ifindex = 0;
  bool up = false;       // administratively up (IFF_UP)
  bool running = false;  // operationally up (IFF_RUNNING)
  std::string mac;       // "aa:bb:cc:dd:ee:ff"; "" when the link has no hardware address
  std::vector<std::string> addresses;  // "10.0.0.1/24", "fe80::1/64"
};

// The interfaces of a namespace, by ifindex.
Result<std::vector<InterfaceInfo>> listInterfaces(const NetnsRef& ref);

// Whether the namespace has an interface of this name.
Result<bool> interfaceExists(const NetnsRef& ref, const std::string& name);

}  // namespace chaosd
