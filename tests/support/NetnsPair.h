#pragma once

// NetnsPair: two network namespaces of a root test's own joined by a veth pair, deleted on
// destruction (with the veth pair and everything on it) even when an assertion failed.
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/Shell.h"

namespace chaosd::testing {

// Namespaces chaosd-<tag>-<id>-a and chaosd-<tag>-<id>-b (<id>: this process's pid), joined by
// veth <veth>-a (in a) / <veth>-b (in b), each with its addresses, the veth ends and both
// loopbacks set up.
class NetnsPair {
 public:
  NetnsPair() = default;
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;
  ~NetnsPair() {
    if (createdA_) runShell("ip netns del " + a_);
    if (createdB_) runShell("ip netns del " + b_);
  }

  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  const std::string& vethA() const { return vethA_; }
  const std::string& vethB() const { return vethB_; }

  // Creates the pair. Addresses are "address/prefix"; IPv6 ones are added `nodad` (usable at
  // once). "" on success, else the command that failed and its output.
  std::string create(const std::string& tag, const std::string& veth,
                     const std::vector<std::string>& addrsA,
                     const std::vector<std::string>& addrsB) {
    const std::string id = std::to_string(::getpid() % 100000);
    a_ = "chaosd-" + tag + "-" + id + "-a";
    b_ = "chaosd-" + tag + "-" + id + "-b";
    vethA_ = veth + "-a";
    vethB_ = veth + "-b";
    if (std::string err = step("ip netns add " + a_); !err.empty()) return err;
    createdA_ = true;
    if (std::string err = step("ip netns add " + b_); !err.empty()) return err;
    createdB_ = true;
    std::vector<std::string> steps = {"ip -n " + a_ + " link add " + vethA_ +
                                      " type veth peer name " + vethB_ + " netns " + b_};
    auto addresses = [&steps](const std::string& ns, const std::string& dev,
                              const std::vector<std::string>& addrs) {
      for (const std::string& addr : addrs) {
        const bool v6 = addr.find(':') != std::string::npos;
        steps.push_back("ip -n " + ns + " addr add " + addr + " dev " + dev + (v6 ? " nodad" : ""));
      }
    };
    addresses(a_, vethA_, addrsA);
    addresses(b_, vethB_, addrsB);
    for (const auto& [ns, dev] : {std::pair{a_, vethA_}, std::pair{b_, vethB_}}) {
      steps.push_back("ip -n " + ns + " link set " + dev + " up");
      steps.push_back("ip -n " + ns + " link set lo up");
    }
    for (const std::string& s : steps) {
      if (std::string err = step(s); !err.empty()) return err;
    }
    return "";
  }

  // Waits until both veth ends are operationally up. The kernel attaches a device's qdisc (and
  // reports it "state UP") from its link-watch work, which runs at most once a second: until
  // then everything sent is dropped by the noop qdisc. "" once up, else which end never came up.
  std::string waitUp(std::chrono::steady_clock::duration timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& [ns, dev] : {std::pair{a_, vethA_}, std::pair{b_, vethB_}}) {
      while (runShell("ip -n " + ns + " -o link show " + dev).find("state UP") ==
             std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) {
          return dev + " never came up: " + runShell("ip -n " + ns + " link show");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the kernel
      }
    }
    return "";
  }

 private:
  static std::string step(const std::string& cmd) {
    int st = -1;
    std::string out = runShell(cmd, &st);
    return st == 0 ? "" : cmd + ": " + out;
  }

  std::string a_, b_, vethA_, vethB_;
  bool createdA_ = false;
  bool createdB_ = false;
};

}  // namespace chaosd::testing
