#pragma once

// FakeTc's handle on one namespace (TcNetns): the kernel rules FakeTc.h lists, applied to the
// namespace's links. Included by FakeTc.h.
#include "tests/support/FakeTc.h"

namespace chaosd::testing {

class FakeTcNetns final : public TcNetns {
 public:
  FakeTcNetns(FakeTc& tc, std::string path) : tc_(tc), path_(std::move(path)) { tc_.joined(); }
  FakeTcNetns(const FakeTcNetns&) = delete;
  FakeTcNetns& operator=(const FakeTcNetns&) = delete;
  ~FakeTcNetns() override { tc_.left(); }

  Result<int> ifindex(const std::string& name) override {
    auto ns = here();
    if (!ns) return std::move(ns).error();
    auto it = (*ns)->links.find(name);
    if (it == (*ns)->links.end()) return faketc::errnoError("interface " + name, ENODEV);
    return it->second.ifindex;
  }
  Result<std::vector<std::string>> links() override {
    auto ns = here();
    if (!ns) return std::move(ns).error();
    std::vector<std::string> out;
    for (const auto& [name, _] : (*ns)->links) out.push_back(name);
    return out;
  }
  Result<std::string> id() override {
    auto ns = here();
    if (!ns) return std::move(ns).error();
    return (*ns)->id;
  }
  // Like the kernel's dump of every qdisc: a device not there has none.
  Result<std::vector<TcQdisc>> qdiscs(int ifindex) override {
    std::vector<TcQdisc> out;
    if (FakeLink* l = byIndex(ifindex)) {
      for (const auto& q : l->qdiscs) {
        out.push_back({q.handle, q.parent, q.kind, q.htbDefault, q.counters});
      }
    }
    return out;
  }
  Result<std::vector<TcClass>> classes(int ifindex) override {
    FakeLink* l = byIndex(ifindex);
    if (l == nullptr) return faketc::errnoError("listing classes", ENODEV);
    std::vector<TcClass> out;
    for (const auto& c : l->classes) out.push_back({c.handle, c.parent, c.kind});
    return out;
  }
  Result<std::set<uint32_t>> filterPrios(int ifindex, uint32_t parent) override {
    std::set<uint32_t> out;
    if (FakeLink* l = byIndex(ifindex)) {
      for (const auto& f : l->filters) {
        if (f.parent == parent) out.insert(f.prio);
      }
    }
    return out;
  }

  Result<void> addHtbRoot(int ifindex, uint32_t handle, uint32_t defaultMinor,
                          TcRootAdd how) override {
    auto l = mutate("addHtbRoot", ifindex, handle);
    if (!l) return std::move(l).error();
    FakeQdisc* root = (*l)->at(TC_H_ROOT);
    if (root != nullptr && root->handle != 0) {
      if (how == TcRootAdd::kExclusive) return faketc::errnoError("adding the root", EEXIST);
      (*l)->removeSubtree(root->handle);
    }
    std::erase_if((*l)->qdiscs, [](const FakeQdisc& q) { return q.parent == TC_H_ROOT; });
    FakeQdisc q;
    q.handle = handle;
    q.kind = "htb";
    q.htbDefault = defaultMinor;
    return put(**l, std::move(q));
  }
  Result<void> addHtbClass(int ifindex, uint32_t classid) override {
    auto l = mutate("addHtbClass", ifindex, classid);
    if (!l) return std::move(l).error();
    FakeQdisc* htb = (*l)->qdisc(TC_H_MAJ(classid));
    if (htb == nullptr || htb->kind != "htb") return faketc::errnoError("class parent", ENOENT);
    if ((*l)->hasClass(classid)) return faketc::errnoError("adding the class", EEXIST);
    (*l)->classes.push_back({classid, TC_H_MAJ(classid), "htb"});
    (*l)->normalize();
    return success();
  }
  Result<void> addLeaf(int ifindex, uint32_t parent, uint32_t handle,
                       const QdiscLeaf& leaf) override {
    auto l = mutate("addLeaf " + leaf.kind(), ifindex, handle);
    if (!l) return std::move(l).error();
    if (leaf.isNetem() && !tc_.netemHere()) return Error(ErrorCode::kUnsupported, missingNetem());
    const auto* tbf = std::get_if<TbfLeaf>(&leaf.shape);
    if (tbf != nullptr && tbf->rate == 0) return faketc::errnoError("tbf without a rate", EINVAL);
    if (!(*l)->hasClass(parent)) return faketc::errnoError("leaf parent", ENOENT);
    if ((*l)->qdisc(handle) != nullptr || (*l)->at(parent) != nullptr) {
      return faketc::errnoError("adding the leaf", EEXIST);
    }
    FakeQdisc q;
    q.handle = handle;
    q.parent = parent;
    q.kind = leaf.kind();
    q.leaf = leaf;
    return put(**l, std::move(q));
  }
  Result<void> addIngressQdisc(int ifindex) override {
    auto l = mutate("addIngressQdisc", ifindex, TC_H_INGRESS);
    if (!l) return std::move(l).error();
    if ((*l)->at(TC_H_INGRESS) != nullptr) return faketc::errnoError("ingress", EEXIST);
    return put(**l, ingressQdisc());
  }
  Result<void> addU32Filter(int ifindex, uint32_t parent, uint32_t prio, const U32Filter& filter,
                            uint32_t classid) override {
    return addFilter("addU32Filter", ifindex, {parent, prio, filter, classid, 0});
  }
  Result<void> addMirredRedirect(int ifindex, uint32_t parent, uint32_t prio,
                                 const U32Filter& filter, int toIfindex) override {
    if (byIndex(toIfindex) == nullptr) {
      CHAOSD_TRY(tc_.step("addMirredRedirect"));
      return faketc::errnoError("mirred to a device not there", ENODEV);
    }
    return addFilter("addMirredRedirect", ifindex, {parent, prio, filter, 0, toIfindex});
  }
  Result<void> deleteU32Filters(int ifindex, uint32_t parent, uint32_t prio, int family) override {
    auto l = mutate("deleteU32Filters", ifindex, prio, true);
    if (!l) return std::move(l).error();
    if (*l == nullptr) return success();
    std::erase_if((*l)->filters, [&](const FakeFilter& f) {
      return f.parent == parent && f.prio == prio && f.match.family == family;
    });
    return success();
  }
  Result<void> deleteQdisc(int ifindex, uint32_t parent, uint32_t handle) override {
    auto l = mutate("deleteQdisc", ifindex, handle, true);
    if (!l) return std::move(l).error();
    if (*l == nullptr) return success();
    FakeQdisc* q = (*l)->at(parent);
    if (q == nullptr || q->handle == 0) return success();
    if (q->handle != handle) return faketc::errnoError("deleting the qdisc", EINVAL);
    (*l)->removeSubtree(handle);
    return success();
  }
  Result<void> deleteClass(int ifindex, uint32_t classid) override {
    auto l = mutate("deleteClass", ifindex, classid, true);
    if (!l) return std::move(l).error();
    if (*l == nullptr || !(*l)->hasClass(classid)) return success();
    for (const auto& f : (*l)->filters) {
      if (f.classid == classid) return faketc::errnoError("a filter points to the class", EBUSY);
    }
    if (FakeQdisc* leaf = (*l)->at(classid)) (*l)->removeSubtree(leaf->handle);
    std::erase_if((*l)->classes, [&](const FakeClass& c) { return c.handle == classid; });
    return success();
  }
  Result<int> createIfb(const std::string& name) override {
    CHAOSD_TRY(tc_.step("createIfb " + name));
    auto ns = here();
    if (!ns) return std::move(ns).error();
    if ((*ns)->links.count(name) != 0) return faketc::errnoError("creating " + name, EEXIST);
    FakeLink l;
    l.ifindex = tc_.nextIndex();
    l.type = "ifb";
    l.up = true;
    (*ns)->links[name] = l;
    return l.ifindex;
  }
  Result<void> deleteLink(const std::string& name) override {
    CHAOSD_TRY(tc_.step("deleteLink " + name));
    auto ns = here();
    if (!ns) return std::move(ns).error();
    (*ns)->links.erase(name);
    return success();
  }
  Result<QdiscPriorRoot> rootRequest(int ifindex) override {
    FakeLink* l = byIndex(ifindex);
    FakeQdisc* root = l != nullptr ? l->at(TC_H_ROOT) : nullptr;
    if (root == nullptr || root->handle == 0) return faketc::errnoError("root", ENOENT);
    return QdiscPriorRoot{root->kind, qdisc::hexHandle(root->handle),
                          faketc::encodeRoot(ifindex, *root)};
  }
  Result<void> restoreRoot(const QdiscPriorRoot& prior) override {
    if (prior.isDefault()) return success();
    CHAOSD_TRY(tc_.step("restoreRoot " + prior.kind + " " + prior.handle));
    auto decoded = faketc::decodeRoot(prior.request);
    if (!decoded) return Error(ErrorCode::kInvalid, "not a request the fake made");
    FakeLink* l = byIndex(decoded->first);
    if (l == nullptr) return faketc::errnoError("restoring the root", ENODEV);
    FakeQdisc* root = l->at(TC_H_ROOT);
    if (root != nullptr && root->handle != 0) return success();  // EEXIST: one is there
    return put(*l, std::move(decoded->second));
  }

 private:
  Result<FakeNetns*> here() {
    FakeNetns* ns = tc_.netns(path_);
    if (ns == nullptr) return Error(ErrorCode::kNotFound, "the namespace went away");
    return ns;
  }
  FakeLink* byIndex(int ifindex) {
    FakeNetns* ns = tc_.netns(path_);
    if (ns == nullptr) return nullptr;
    for (auto& [_, l] : ns->links) {
      if (l.ifindex == ifindex) return &l;
    }
    return nullptr;
  }
  // A mutating call: counted, maybe failed, on a device that must be there (or, for deletes,
  // null when it is not: nothing to delete).
  Result<FakeLink*> mutate(const std::string& what, int ifindex, uint32_t handle,
                           bool deleting = false) {
    CHAOSD_TRY(tc_.step(what + " " + std::to_string(ifindex) + " " + qdisc::hexHandle(handle)));
    FakeLink* l = byIndex(ifindex);
    if (l == nullptr && !deleting) return faketc::errnoError(what, ENODEV);
    return l;
  }
  Result<void> put(FakeLink& l, FakeQdisc q) {
    l.qdiscs.push_back(std::move(q));
    l.normalize();
    return success();
  }
  Result<void> addFilter(const std::string& what, int ifindex, FakeFilter f) {
    auto l = mutate(what, ifindex, f.prio);
    if (!l) return std::move(l).error();
    if ((*l)->qdisc(f.parent) == nullptr) return faketc::errnoError("filter parent", EINVAL);
    (*l)->filters.push_back(std::move(f));
    (*l)->normalize();
    return success();
  }

  FakeTc& tc_;
  std::string path_;
};

inline Result<std::unique_ptr<TcNetns>> FakeTc::enter(const std::string& netnsPath) {
  if (netns(netnsPath) == nullptr) {
    return Error(ErrorCode::kNotFound, "no network namespace " + netnsPath);
  }
  return std::unique_ptr<TcNetns>(std::make_unique<FakeTcNetns>(*this, netnsPath));
}

}  // namespace chaosd::testing
