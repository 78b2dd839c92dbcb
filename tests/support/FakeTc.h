#pragma once

// An in-memory TcKernel for unit tests of the qdisc faults: per namespace path, links (by name,
// with their ifindex) and each link's qdiscs, classes and u32 filters. It keeps the kernel's
// rules the tree logic relies on: adds of something there fail with EEXIST, a class needs its
// HTB qdisc and a leaf its class, deleting a qdisc takes everything under it, an HTB class a
// filter points to cannot be deleted (EBUSY), deleting something not there is success, a root
// added exclusively over another fails, a replace takes the old root's subtree away, and the
// kernel refuses a tbf without a rate. failCall(n, errno) makes the n-th mutating call from now
// fail (changing nothing), the way a netlink error half-way through building a tree would.
#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "injectors/network/TcKernel.h"

namespace chaosd::testing {

struct FakeQdisc {
  uint32_t handle = 0;
  uint32_t parent = TC_H_ROOT;
  std::string kind;
  uint32_t htbDefault = 0;
  std::optional<QdiscLeaf> leaf;  // a fault's leaf, as added
  std::string options;            // a user's qdisc: its options as the kernel would dump them
  TcCounters counters;
  bool operator==(const FakeQdisc&) const = default;
};

// An ingress qdisc (ffff:), as `tc qdisc add dev D ingress` adds it.
inline FakeQdisc ingressQdisc() {
  FakeQdisc q;
  q.handle = tcHandle(0xffff, 0);
  q.parent = TC_H_INGRESS;
  q.kind = "ingress";
  return q;
}

struct FakeClass {
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::string kind;
  bool operator==(const FakeClass&) const = default;
};

struct FakeFilter {
  uint32_t parent = 0;
  uint32_t prio = 0;
  U32Filter match;
  uint32_t classid = 0;  // steering: the class it sends to
  int redirectTo = 0;    // mirred: the ifindex it redirects to
  bool operator==(const FakeFilter&) const = default;
};

// A link and everything traffic control holds on it.
struct FakeLink {
  int ifindex = 0;
  std::string type;  // "veth", "ifb", ...
  bool up = false;
  std::vector<FakeQdisc> qdiscs;
  std::vector<FakeClass> classes;
  std::vector<FakeFilter> filters;
  bool operator==(const FakeLink&) const = default;

  FakeQdisc* qdisc(uint32_t handle) {
    for (auto& q : qdiscs) {
      if (q.handle == handle && handle != 0) return &q;
    }
    return nullptr;
  }
  FakeQdisc* at(uint32_t parent) {
    for (auto& q : qdiscs) {
      if (q.parent == parent) return &q;
    }
    return nullptr;
  }
  bool hasClass(uint32_t handle) const {
    return std::any_of(classes.begin(), classes.end(),
                       [&](const FakeClass& c) { return c.handle == handle; });
  }
  // Sorted, so that two links holding the same things compare equal.
  void normalize() {
    auto byKey = [](const auto& a, const auto& b) {
      return std::tie(a.parent, a.handle) < std::tie(b.parent, b.handle);
    };
    std::sort(qdiscs.begin(), qdiscs.end(), byKey);
    std::sort(classes.begin(), classes.end(), byKey);
    std::stable_sort(filters.begin(), filters.end(), [](const auto& a, const auto& b) {
      return std::tie(a.parent, a.prio) < std::tie(b.parent, b.prio);
    });
  }
  // The qdisc of `handle` and all under it: its classes, their qdiscs, the filters on them.
  void removeSubtree(uint32_t handle) {
    const uint32_t major = TC_H_MAJ(handle);
    std::vector<uint32_t> children;
    for (const auto& q : qdiscs) {
      if (q.parent != TC_H_ROOT && q.parent != TC_H_INGRESS && TC_H_MAJ(q.parent) == major &&
          q.handle != handle) {
        children.push_back(q.handle);
      }
    }
    for (uint32_t c : children) removeSubtree(c);
    std::erase_if(qdiscs, [&](const FakeQdisc& q) { return q.handle == handle; });
    std::erase_if(classes, [&](const FakeClass& c) { return TC_H_MAJ(c.handle) == major; });
    std::erase_if(filters, [&](const FakeFilter& f) { return f.parent == handle; });
  }
};

struct FakeNetns {
  std::string id;
  std::map<std::string, FakeLink> links;  // by name
};

class FakeTc final : public TcKernel {
 public:
  FakeTc() { addNetns(""); }

  // ---- the machine, set up by the test (not counted as calls) ----
  void addNetns(const std::string& path) {
    netns_[path].id = "ns" + std::to_string(++serial_);
    addLink(path, "lo", "loopback");
  }
  void removeNetns(const std::string& path) { netns_.erase(path); }
  // A link, up; its ifindex.
  int addLink(const std::string& netns, const std::string& name, std::string type = "veth") {
    FakeLink l;
    l.ifindex = ++lastIndex_;
    l.type = std::move(type);
    l.up = true;
    netns_[netns].links[name] = l;
    return l.ifindex;
  }
  void removeLink(const std::string& netns, const std::string& name) {
    netns_[netns].links.erase(name);
  }
  FakeLink* link(const std::string& netns, const std::string& name) {
    auto ns = netns_.find(netns);
    if (ns == netns_.end()) return nullptr;
    auto it = ns->second.links.find(name);
    return it == ns->second.links.end() ? nullptr : &it->second;
  }
  // A qdisc of the user's (root, ingress, a child), as `tc qdisc add` would put it.
  void addUserQdisc(const std::string& netns, const std::string& dev, FakeQdisc q) {
    FakeLink* l = link(netns, dev);
    l->qdiscs.push_back(std::move(q));
    l->normalize();
  }
  void addUserFilter(const std::string& netns, const std::string& dev, FakeFilter f) {
    link(netns, dev)->filters.push_back(std::move(f));
  }
  void setNetem(bool here) { netem_ = here; }

  // ---- failures and what was asked ----
  // The n-th mutating call from now (1: the next) fails with err and changes nothing.
  void failCall(int n, int err) {
    failAt_ = calls_.size() + static_cast<size_t>(n);
    failErrno_ = err;
  }
  // Every mutating call made, "addHtbRoot 3 c4a0:0" and so on, failed ones included.
  const std::vector<std::string>& calls() const { return calls_; }
  // Namespaces entered and not left yet.
  int entered() const { return entered_; }
  // Called with each mutating call's name before it runs: another process acting meanwhile.
  std::function<void(const std::string&)> beforeCall;

  // ---- TcKernel ----
  Result<std::unique_ptr<TcNetns>> enter(const std::string& netnsPath) override;
  Result<bool> hasNetem() override { return netem_; }

  // Internals the namespace handle uses.
  FakeNetns* netns(const std::string& path) {
    auto it = netns_.find(path);
    return it == netns_.end() ? nullptr : &it->second;
  }
  int nextIndex() { return ++lastIndex_; }
  Result<void> step(const std::string& what) {
    if (beforeCall) beforeCall(what);
    calls_.push_back(what);
    if (calls_.size() != failAt_) return success();
    failAt_ = 0;
    return Error::fromErrno(what, failErrno_);
  }
  bool netemHere() const { return netem_; }
  void left() { --entered_; }
  void joined() { ++entered_; }

 private:
  std::map<std::string, FakeNetns> netns_;
  int serial_ = 0;
  int lastIndex_ = 0;
  bool netem_ = true;
  std::vector<std::string> calls_;
  size_t failAt_ = 0;
  int failErrno_ = 0;
  int entered_ = 0;
};

namespace faketc {

// What a user's root looks like in the request the fake hands out and takes back.
inline std::vector<unsigned char> encodeRoot(int ifindex, const FakeQdisc& q) {
  const std::string s =
      nlohmann::json{{"fake-root", true}, {"ifindex", ifindex},         {"handle", q.handle},
                     {"kind", q.kind},    {"htbDefault", q.htbDefault}, {"options", q.options}}
          .dump();
  return {s.begin(), s.end()};
}

inline std::optional<std::pair<int, FakeQdisc>> decodeRoot(const std::vector<unsigned char>& b) {
  const auto j = nlohmann::json::parse(b.begin(), b.end(), nullptr, false);
  if (!j.is_object() || !j.contains("fake-root")) return std::nullopt;
  FakeQdisc q;
  q.handle = j["handle"].get<uint32_t>();
  q.kind = j["kind"].get<std::string>();
  q.htbDefault = j["htbDefault"].get<uint32_t>();
  q.options = j["options"].get<std::string>();
  return std::pair{j["ifindex"].get<int>(), q};
}

inline Error errnoError(const std::string& what, int err) { return Error::fromErrno(what, err); }

}  // namespace faketc
}  // namespace chaosd::testing

#include "tests/support/FakeTcNetns.h"  // IWYU pragma: keep (FakeTc::enter's handle)
