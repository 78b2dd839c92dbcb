// TcKernel over libnl-route: a namespace entered with NetnsGuard and a route socket made inside
// it, for as long as the TcNetns lives. The netlink calls themselves are QdiscNetlink.h's.
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "chaosd/base/Netns.h"
#include "injectors/network/NetemSupport.h"
#include "injectors/network/QdiscNetlink.h"
#include "injectors/network/TcKernel.h"
#include "injectors/network/U32Classifier.h"

namespace chaosd {
namespace {

class NetlinkTcNetns final : public TcNetns {
 public:
  NetlinkTcNetns(NetnsGuard guard, qdisc::Sock sock)
      : guard_(std::move(guard)), sock_(std::move(sock)) {}

  Result<int> ifindex(const std::string& name) override { return qdisc::ifindexOf(sock(), name); }
  Result<std::vector<std::string>> links() override { return qdisc::listLinks(sock()); }
  // The namespace's nsfs inode: the same for every path naming it (a pid's, /run/netns).
  Result<std::string> id() override {
    struct stat st {};
    if (::stat("/proc/thread-self/ns/net", &st) != 0) {
      return Error::fromErrno("stat /proc/thread-self/ns/net", errno);
    }
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  Result<std::vector<TcQdisc>> qdiscs(int ifindex) override {
    return qdisc::listQdiscs(sock(), ifindex);
  }
  Result<std::vector<TcClass>> classes(int ifindex) override {
    return qdisc::listClasses(sock(), ifindex);
  }
  Result<std::set<uint32_t>> filterPrios(int ifindex, uint32_t parent) override {
    return qdisc::filterPrios(sock(), ifindex, parent);
  }
  Result<void> addHtbRoot(int ifindex, uint32_t handle, uint32_t defaultMinor,
                          TcRootAdd how) override {
    return qdisc::addHtbRoot(sock(), ifindex, handle, defaultMinor, how);
  }
  Result<void> addHtbClass(int ifindex, uint32_t classid) override {
    return qdisc::addHtbClass(sock(), ifindex, classid);
  }
  Result<void> addLeaf(int ifindex, uint32_t parent, uint32_t handle,
                       const QdiscLeaf& leaf) override {
    return qdisc::addLeaf(sock(), ifindex, parent, handle, leaf);
  }
  Result<void> addIngressQdisc(int ifindex) override {
    return qdisc::addIngressQdisc(sock(), ifindex);
  }
  Result<void> addU32Filter(int ifindex, uint32_t parent, uint32_t prio, const U32Filter& filter,
                            uint32_t classid) override {
    return qdisc::addU32Filter(sock(), ifindex, parent, prio, filter, classid);
  }
  Result<void> addMirredRedirect(int ifindex, uint32_t parent, uint32_t prio,
                                 const U32Filter& filter, int toIfindex) override {
    return qdisc::addMirredRedirect(sock(), ifindex, parent, prio, filter, toIfindex);
  }
  Result<void> deleteU32Filters(int ifindex, uint32_t parent, uint32_t prio, int family) override {
    return qdisc::deleteU32Filters(sock(), ifindex, parent, prio, family);
  }
  Result<void> deleteQdisc(int ifindex, uint32_t parent, uint32_t handle) override {
    return qdisc::deleteQdisc(sock(), ifindex, parent, handle);
  }
  Result<void> deleteClass(int ifindex, uint32_t classid) override {
    return qdisc::deleteClass(sock(), ifindex, classid);
  }
  Result<int> createIfb(const std::string& name) override { return qdisc::createIfb(sock(), name); }
  Result<void> deleteLink(const std::string& name) override {
    return qdisc::deleteLink(sock(), name);
  }
  Result<QdiscPriorRoot> rootRequest(int ifindex) override {
    return qdisc::rootRequest(sock(), ifindex);
  }
  Result<void> restoreRoot(const QdiscPriorRoot& prior) override {
    return qdisc::restoreRoot(sock(), prior);
  }

 private:
  nl_sock* sock() { return sock_.get(); }

  // Declared first, destroyed last: the socket goes before the thread leaves the namespace.
  NetnsGuard guard_;
  qdisc::Sock sock_;
};

class NetlinkTcKernel final : public TcKernel {
 public:
  Result<std::unique_ptr<TcNetns>> enter(const std::string& netnsPath) override {
    NetnsRef ref;
    ref.path = netnsPath;
    auto guard = NetnsGuard::enter(ref);
    if (!guard) return std::move(guard).error();
    auto sock = qdisc::routeSocket();
    if (!sock) return std::move(sock).error();
    return std::unique_ptr<TcNetns>(
        std::make_unique<NetlinkTcNetns>(std::move(*guard), std::move(*sock)));
  }
  Result<bool> hasNetem() override { return kernelHasNetem(); }
};

}  // namespace

std::shared_ptr<TcKernel> netlinkTcKernel() { return std::make_shared<NetlinkTcKernel>(); }

}  // namespace chaosd
