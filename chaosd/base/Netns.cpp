#include "chaosd/base/Netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <thread>

#include "chaosd/base/Log.h"

namespace chaosd {

std::string NetnsRef::describe() const {
  if (!name.empty()) return "netns " + name;
  if (!path.empty()) return "netns " + path;
  if (pid) return "netns of pid " + std::to_string(*pid);
  return "host netns";
}

std::string NetnsRef::nsPath() const {
  if (!name.empty()) return "/run/netns/" + name;
  if (!path.empty()) return path;
  if (pid) return "/proc/" + std::to_string(*pid) + "/ns/net";
  return "";
}

namespace {

// NetnsRef::nsPath() after the checks a user-written reference needs.
Result<std::string> nsPathOf(const NetnsRef& ref) {
  int fieldsSet = !ref.name.empty() + !ref.path.empty() + ref.pid.has_value();
  if (fieldsSet > 1) {
    return Error(ErrorCode::kInvalid, "a netns reference sets only one of name, path, pid");
  }
  // The name becomes a path component: no escaping /run/netns.
  if (ref.name == "." || ref.name == ".." || ref.name.find('/') != std::string::npos) {
    return Error(ErrorCode::kInvalid, "invalid netns name '" + ref.name + "'");
  }
  if (ref.pid && *ref.pid <= 0) {
    return Error(ErrorCode::kInvalid, "invalid pid " + std::to_string(*ref.pid));
  }
  return ref.nsPath();
}

Error notFound(const NetnsRef& ref, const std::string& path, int err) {
  std::string what;
  if (!ref.name.empty()) {
    what = "network namespace '" + ref.name + "' does not exist (no " + path + ")";
  } else if (ref.pid) {
    what = "no process " + std::to_string(*ref.pid) + " to take a network namespace from";
  } else {
    what = "network namespace file " + path + " does not exist";
  }
  return Error(ErrorCode::kNotFound, what, err);
}

[[noreturn]] void dieInWrongNamespace(const std::string& why) {
  auto logger = log::get("system");
  logger->critical("thread left in the wrong network namespace, aborting: {}", why);
  logger->flush();
  std::abort();
}

std::string formatMac(const unsigned char* bytes, size_t length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string mac;
  for (size_t i = 0; i < length; ++i) {
    if (i > 0) mac += ':';
    mac += kHex[bytes[i] >> 4];
    mac += kHex[bytes[i] & 0xf];
  }
  return mac;
}

// "10.0.0.1/24" from an address and its netmask.
std::string formatAddress(const ifaddrs& entry) {
  char text[INET6_ADDRSTRLEN] = {};
  int prefix = 0;
  if (entry.ifa_addr->sa_family == AF_INET) {
    sockaddr_in addr{}, mask{};
    std::memcpy(&addr, entry.ifa_addr, sizeof addr);
    if (entry.ifa_netmask != nullptr) std::memcpy(&mask, entry.ifa_netmask, sizeof mask);
    ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
    prefix = std::popcount(mask.sin_addr.s_addr);
  } else {
    sockaddr_in6 addr{}, mask{};
    std::memcpy(&addr, entry.ifa_addr, sizeof addr);
    if (entry.ifa_netmask != nullptr) std::memcpy(&mask, entry.ifa_netmask, sizeof mask);
    ::inet_ntop(AF_INET6, &addr.sin6_addr, text, sizeof text);
    for (unsigned char byte : mask.sin6_addr.s6_addr) prefix += std::popcount(byte);
  }
  return std::string(text) + "/" + std::to_string(prefix);
}

void addEntry(const ifaddrs& entry, InterfaceInfo& info) {
  info.name = entry.ifa_name;
  info.up = (entry.ifa_flags & IFF_UP) != 0;
  info.running = (entry.ifa_flags & IFF_RUNNING) != 0;
  if (entry.ifa_addr == nullptr) return;
  int family = entry.ifa_addr->sa_family;
  if (family == AF_PACKET) {  // one per link, from RTM_GETLINK
    sockaddr_ll link{};
    std::memcpy(&link, entry.ifa_addr, sizeof link);
    info.ifindex = static_cast<unsigned>(link.sll_ifindex);
    size_t length = std::min<size_t>(link.sll_halen, sizeof link.sll_addr);
    if (length > 0) info.mac = formatMac(link.sll_addr, length);
  } else if (family == AF_INET || family == AF_INET6) {
    info.addresses.push_back(formatAddress(entry));
  }
}

// getifaddrs talks netlink through a socket it opens itself, so it answers for the
// namespace of the calling thread.
Result<std::vector<InterfaceInfo>> interfacesOfThisThread() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return Error::fromErrno("listing interfaces", errno);
  std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owner(list, &::freeifaddrs);
  std::map<std::string, InterfaceInfo> byName;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_name != nullptr) addEntry(*entry, byName[entry->ifa_name]);
  }
  std::vector<InterfaceInfo> interfaces;
  for (auto& [name, info] : byName) {
    if (info.ifindex == 0) info.ifindex = ::if_nametoindex(name.c_str());
    interfaces.push_back(std::move(info));
  }
  std::sort(interfaces.begin(), interfaces.end(),
            [](const InterfaceInfo& a, const InterfaceInfo& b) { return a.ifindex < b.ifindex; });
  return interfaces;
}

}  // namespace

Result<Fd> openNetns(const NetnsRef& ref) {
  if (ref.isHost()) return Fd();
  auto path = nsPathOf(ref);
  if (!path) return std::move(path).error();
  Fd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT || err == ESRCH) return notFound(ref, *path, err);
    return Error::fromErrno("opening " + *path, err).withContext("in " + ref.describe());
  }
  // A stale /run/netns entry (its mount gone) or a wrong path is a plain file: say so
  // here rather than as an EINVAL from setns later.
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0 && (errno == ENOTTY || errno == EINVAL)) {
    return Error(ErrorCode::kInvalid, *path + " is not a namespace file", errno);
  }
  if (type < 0) return Error::fromErrno("checking namespace type of " + *path, errno);
  if (type != CLONE_NEWNET) {
    return Error(ErrorCode::kInvalid, *path + " is a namespace, but not a network namespace");
  }
  return fd;
}

Result<NetnsGuard> NetnsGuard::enter(const NetnsRef& ref) {
  auto netns = openNetns(ref);
  if (!netns) return std::move(netns).error();
  auto guard = enter(*netns);
  if (!guard) return std::move(guard).error().withContext("in " + ref.describe());
  return guard;
}

Result<NetnsGuard> NetnsGuard::enter(const Fd& netns) {
  if (!netns.valid()) return NetnsGuard(Fd(), 0);
  // thread-self, not self: /proc/self/ns/net is the main thread's namespace.
  Fd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return Error::fromErrno("saving this thread's network namespace", errno);
  if (::setns(netns.get(), CLONE_NEWNET) != 0) {
    return Error::fromErrno("entering network namespace", errno);
  }
  return NetnsGuard(std::move(original), ::gettid());
}

NetnsGuard::NetnsGuard(NetnsGuard&& other) noexcept
    : original_(std::move(other.original_)), tid_(other.tid_) {}

NetnsGuard::~NetnsGuard() {
  if (!original_.valid()) return;
  if (::gettid() != tid_) {
    dieInWrongNamespace("guard of thread " + std::to_string(tid_) + " destroyed on thread " +
                        std::to_string(::gettid()));
  }
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    dieInWrongNamespace(Error::fromErrno("setns back to the saved namespace", errno).message());
  }
}

Result<void> runInNetns(const NetnsRef& ref, const std::function<Result<void>()>& fn) {
  auto netns = openNetns(ref);
  if (!netns) return std::move(netns).error();
  Result<void> result;
  try {
    std::thread worker([&] {
      auto guard = NetnsGuard::enter(*netns);
      if (!guard) {
        result = std::move(guard).error();
        return;
      }
      try {
        result = fn();
      } catch (const std::exception& e) {
        result = Error(ErrorCode::kInternal, std::string("exception in netns thread: ") + e.what());
      }
    });
    worker.join();
  } catch (const std::system_error& e) {
    return Error(ErrorCode::kInternal, std::string("starting a netns thread: ") + e.what());
  }
  if (!result) return std::move(result).error().withContext("in " + ref.describe());
  return result;
}

Result<std::vector<InterfaceInfo>> listInterfaces(const NetnsRef& ref) {
  std::vector<InterfaceInfo> interfaces;
  auto ran = runInNetns(ref, [&]() -> Result<void> {
    auto found = interfacesOfThisThread();
    if (!found) return std::move(found).error();
    interfaces = std::move(*found);
    return success();
  });
  if (!ran) return std::move(ran).error();
  return interfaces;
}

Result<bool> interfaceExists(const NetnsRef& ref, const std::string& name) {
  if (name.empty()) return Error(ErrorCode::kInvalid, "empty interface name");
  auto interfaces = listInterfaces(ref);
  if (!interfaces) return std::move(interfaces).error();
  return std::any_of(interfaces->begin(), interfaces->end(),
                     [&](const InterfaceInfo& i) { return i.name == name; });
}

}  // namespace chaosd
