#pragma once

// FakeNetfilter: the netfilter state of the network namespaces a unit test touches (nftables
// tables with their chains and rules, handles as the kernel hands them out, and the NFQUEUE
// queues bound), shared by FakeNftKernel (nft text) and FakeNfqueueKernel (the NFQUEUE delay's
// batches and consumers), so both faults act on one model and a test sees what each left.
// Also the failure plan both fakes consult: the Nth call of a method fails with a given error.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chaosd/base/Error.h"

namespace chaosd::testing {

struct FakeNftRule {
  uint64_t handle = 0;
  std::string text;     // the statements as nft prints them, without the comment
  std::string comment;  // "" when none
  uint64_t packets = 0;
};

struct FakeNftChain {
  std::string name;
  uint64_t handle = 0;
  std::string type;  // base chains only: filter
  std::string hook;  // "" for a regular chain
  int priority = 0;
  std::string policy;
  std::vector<FakeNftRule> rules;
};

// A named set (the host sets of a fault that refreshes its names).
struct FakeNftSet {
  std::string name;
  std::string type;  // ipv4_addr, ipv6_addr
  uint64_t handle = 0;
  std::set<std::string> elements;
};

struct FakeNftTable {
  std::string family;
  std::string name;
  uint64_t handle = 0;
  uint64_t nextHandle = 1;  // chains and rules draw from the table's counter, as in the kernel
  std::vector<FakeNftChain> chains;
  std::vector<FakeNftSet> sets;

  FakeNftSet* set(const std::string& n) {
    for (auto& x : sets) {
      if (x.name == n) return &x;
    }
    return nullptr;
  }
  std::optional<uint16_t> nfqueue;  // the queue its rules send to (an NFQUEUE delay's table)

  FakeNftChain* chain(const std::string& n) {
    for (auto& c : chains) {
      if (c.name == n) return &c;
    }
    return nullptr;
  }
};

// A bound queue's consumer, as the NFQUEUE fake counts it.
struct FakeQueueHolder {
  uint64_t queued = 0;
  uint64_t held = 0;
  uint64_t released = 0;
  uint64_t releasedAtStop = 0;
};

struct FakeNetfilterNs {
  std::vector<FakeNftTable> tables;
  std::set<uint16_t> boundQueues;
  std::map<uint16_t, std::shared_ptr<FakeQueueHolder>> holders;  // by bound queue
  uint64_t nextTableHandle = 1;

  FakeNftTable* table(const std::string& family, const std::string& name) {
    for (auto& t : tables) {
      if (t.family == family && t.name == name) return &t;
    }
    return nullptr;
  }
  bool eraseTable(const std::string& family, const std::string& name) {
    for (auto it = tables.begin(); it != tables.end(); ++it) {
      if (it->family == family && it->name == name) {
        tables.erase(it);
        return true;
      }
    }
    return false;
  }
};

// The Nth call (counted from when the failure is planned) of a method fails with an error.
class FakeFailures {
 public:
  void failNth(const std::string& method, int nth, Error error) {
    plans_[method].emplace_back(calls_[method] + nth, std::move(error));
  }
  // Counts a call of `method`; the planned error when this call is to fail.
  std::optional<Error> onCall(const std::string& method) {
    const int n = ++calls_[method];
    auto& plans = plans_[method];
    for (auto it = plans.begin(); it != plans.end(); ++it) {
      if (it->first == n) {
        Error e = std::move(it->second);
        plans.erase(it);
        return e;
      }
    }
    return std::nullopt;
  }
  int calls(const std::string& method) const {
    auto it = calls_.find(method);
    return it == calls_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, int> calls_;
  std::map<std::string, std::vector<std::pair<int, Error>>> plans_;
};

class FakeNetfilter {
 public:
  // A namespace's state, made empty on first use ("" is the host's). Not for a gone one.
  FakeNetfilterNs& netns(const std::string& path) { return namespaces_[path]; }
  const FakeNetfilterNs* find(const std::string& path) const {
    auto it = namespaces_.find(path);
    return it == namespaces_.end() ? nullptr : &it->second;
  }
  // Deletes the namespace: its tables and queues go with it; entering it fails from now on.
  void removeNamespace(const std::string& path) {
    namespaces_.erase(path);
    gone_.insert(path);
  }
  bool gone(const std::string& path) const { return gone_.contains(path); }
  // What entering a gone namespace fails with (openNetns's kNotFound).
  static Error goneError(const std::string& path) {
    return Error(ErrorCode::kNotFound, "network namespace file " + path + " does not exist");
  }

  // The table names of a namespace, "family name" in creation order.
  std::vector<std::string> tableNames(const std::string& path) const {
    std::vector<std::string> out;
    if (const FakeNetfilterNs* ns = find(path)) {
      for (const auto& t : ns->tables) out.push_back(t.family + " " + t.name);
    }
    return out;
  }
  // A table, or nullptr.
  const FakeNftTable* table(const std::string& path, const std::string& name,
                            const std::string& family = "inet") const {
    const FakeNetfilterNs* ns = find(path);
    return ns == nullptr ? nullptr : const_cast<FakeNetfilterNs*>(ns)->table(family, name);
  }
  // "chain: text comment" of every rule of a table, in chain then rule order.
  std::vector<std::string> rules(const std::string& path, const std::string& name) const {
    std::vector<std::string> out;
    if (const FakeNftTable* t = table(path, name)) {
      for (const auto& c : t->chains) {
        for (const auto& r : c.rules) {
          out.push_back(c.name + ": " + r.text +
                        (r.comment.empty() ? "" : " comment \"" + r.comment + "\""));
        }
      }
    }
    return out;
  }

  // The kernel counted `packets` on the index-th rule of rules(path, name) (its counter).
  void countPackets(const std::string& path, const std::string& name, size_t index,
                    uint64_t packets) {
    const FakeNftTable* t = table(path, name);
    ASSERT_NE(t, nullptr) << "no table " << name;
    size_t left = index;
    for (auto& c : const_cast<FakeNftTable*>(t)->chains) {
      for (auto& r : c.rules) {
        if (left-- == 0) {
          r.packets += packets;
          return;
        }
      }
    }
    ADD_FAILURE() << "no rule " << index << " in table " << name;
  }

  // `list table` as libnftables' JSON: metainfo, the table, its chains, then their rules.
  static nlohmann::json listJson(const FakeNftTable& t) {
    using nlohmann::json;
    json items = json::array();
    items.push_back({{"metainfo",
                      {{"version", "1.0.6"},
                       {"release_name", "Lester Gooch #5"},
                       {"json_schema_version", 1}}}});
    items.push_back({{"table", {{"family", t.family}, {"name", t.name}, {"handle", t.handle}}}});
    for (const auto& set : t.sets) {
      json item = {{"family", t.family},
                   {"name", set.name},
                   {"table", t.name},
                   {"type", set.type},
                   {"handle", set.handle}};
      if (!set.elements.empty()) item["elem"] = set.elements;
      items.push_back({{"set", item}});
    }
    json rules = json::array();
    for (const auto& c : t.chains) {
      json chain = {
          {"family", t.family}, {"table", t.name}, {"name", c.name}, {"handle", c.handle}};
      if (!c.hook.empty()) {
        chain["type"] = c.type;
        chain["hook"] = c.hook;
        chain["prio"] = c.priority;
        chain["policy"] = c.policy;
      }
      items.push_back({{"chain", chain}});
      for (const auto& r : c.rules) {
        json rule = {{"family", t.family},
                     {"table", t.name},
                     {"chain", c.name},
                     {"handle", r.handle},
                     {"expr", statementsJson(r)}};
        if (!r.comment.empty()) rule["comment"] = r.comment;
        rules.push_back({{"rule", rule}});
      }
    }
    for (auto& r : rules) items.push_back(std::move(r));
    return {{"nftables", items}};
  }

  std::vector<std::string> events;  // "bind 17152 /run/netns/a", "unbind ...": the queue sockets
  FakeFailures failures;

 private:
  // The rule's statements libnftables prints as their own objects (the counter and the
  // verdict); the matches, which no caller reads, are left out.
  static nlohmann::json statementsJson(const FakeNftRule& r) {
    using nlohmann::json;
    json out = json::array();
    auto has = [&](const std::string& word) {
      return (" " + r.text + " ").find(" " + word + " ") != std::string::npos;
    };
    if (has("counter")) out.push_back({{"counter", {{"packets", r.packets}, {"bytes", 0}}}});
    if (has("queue")) out.push_back({{"queue", {{"flags", "bypass"}}}});
    if (r.text.ends_with("reject with tcp reset")) {
      out.push_back({{"reject", {{"type", "tcp reset"}}}});
    } else {
      for (const char* v : {"drop", "accept", "reject"}) {
        if (r.text.ends_with(v)) out.push_back({{v, nullptr}});
      }
    }
    return out;
  }

  std::map<std::string, FakeNetfilterNs> namespaces_;
  std::set<std::string> gone_;
};

}  // namespace chaosd::testing
