#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/support/PodmanContainer.h"

// The test support for real containers (tests/support/PodmanContainer.h) does what the
// container tests rely on: a container from a busybox-static rootfs runs in namespaces of its
// own, a veth reaches it from a test namespace, the REST socket lists it, and it is gone after.
namespace chaosd::testing {
namespace {

ino_t nsInode(pid_t pid, const char* ns) {
  struct stat st {};
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(ContainerSupportTest, ContainerRunsFromRootfsReachableAndRemoved) {
  if (!podmanUsable()) GTEST_SKIP() << "needs root, podman and runc";
  BusyboxRootfs rootfs;
  ASSERT_TRUE(rootfs.ok());
  const std::string name = "chaosd-support-" + std::to_string(::getpid());
  {
    PodmanContainer c;
    ASSERT_EQ(c.run(name, rootfs.dir(), {"/bin/sleep", "600"}, {.labels = {"chaosd-test=1"}}), "");
    const pid_t pid = c.pid();
    ASSERT_GT(pid, 0);
    EXPECT_NE(nsInode(pid, "net"), nsInode(::getpid(), "net"));
    EXPECT_NE(nsInode(pid, "pid"), nsInode(::getpid(), "pid"));
    EXPECT_NE(nsInode(pid, "mnt"), nsInode(::getpid(), "mnt"));
    EXPECT_EQ(c.id().size(), 64u);

    ContainerLink link;
    ASSERT_EQ(link.create("sup", pid, "10.231.0.2/24", "10.231.0.1/24"), "");
    int status = -1;
    runShell("ip netns exec " + link.peerNs() + " ping -c 1 -W 2 10.231.0.2", &status);
    EXPECT_EQ(status, 0) << "the container answers on its veth";

    PodmanService service;
    const std::string sock = "/tmp/chaosd-podman-" + std::to_string(::getpid()) + ".sock";
    ASSERT_EQ(service.start(sock), "");
    const std::string listed = runShell(
        "curl -s --unix-socket " + sock +
        " 'http://d/containers/json?filters=%7B%22label%22%3A%5B%22chaosd-test%3D1%22%5D%7D'");
    EXPECT_NE(listed.find(c.id()), std::string::npos) << listed;
  }
  EXPECT_EQ(runShell("podman ps -a --format '{{.Names}}'").find(name), std::string::npos)
      << "removed on destruction";
}

}  // namespace
}  // namespace chaosd::testing
