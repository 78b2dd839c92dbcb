#pragma once

// Real containers for root tests, with Debian's podman and no registry: a busybox-static tree
// made in a temp dir is the container's root (`podman run --rootfs DIR`). What this machine
// needs (measured on Debian 12, podman 4.3, hybrid cgroups, no CAP_SYS_RESOURCE):
//   --runtime runc          crun 1.8 refuses hybrid cgroups ("drop all controllers from
//                           cgroupv2": the v2 tree has hugetlb); runc joins the container to the
//                           v1 hierarchies and to the v2 group /libpod_parent/libpod-<id>
//   --ulimit nofile/nproc   podman copies the host's limits and crun/runc set them again, which
//                           fails without CAP_SYS_RESOURCE; lower limits are always allowed
//   --network none          netavark's bridge works but adds podman0 and iptables chains to the
//                           host; tests give the container a veth to a namespace of their own
// Every container is removed on destruction (`podman rm -f -t 0`), even after a failed
// assertion.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/Shell.h"
#include "tests/support/Wait.h"

namespace chaosd::testing {

// Whether podman and runc are here and we are root: root tests skip without them.
inline bool podmanUsable() {
  return ::geteuid() == 0 && ::access("/usr/bin/podman", X_OK) == 0 &&
         ::access("/usr/bin/runc", X_OK) == 0 && ::access("/bin/busybox", X_OK) == 0;
}

// A container root: busybox-static and its applets under bin/, the usual empty folders, and
// /var/lib/app for disk tests. Removed with everything in it on destruction.
class BusyboxRootfs {
 public:
  BusyboxRootfs() {
    char tmpl[] = "/tmp/chaosd-rootfs-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const char* d : {"bin", "proc", "sys", "dev", "etc", "tmp", "run", "var/lib/app"}) {
      fs::create_directories(fs::path(dir_) / d, ec);
    }
    fs::copy_file("/bin/busybox", fs::path(dir_) / "bin/busybox", ec);
    if (ec) return;
    for (const char* applet : {"sh", "sleep", "cat", "ls", "ip", "ping", "nc", "httpd", "echo",
                               "kill", "ps", "df", "dd", "true", "wget", "touch", "mkdir"}) {
      fs::create_symlink("busybox", fs::path(dir_) / "bin" / applet, ec);
    }
    ok_ = true;
  }
  BusyboxRootfs(const BusyboxRootfs&) = delete;
  BusyboxRootfs& operator=(const BusyboxRootfs&) = delete;
  ~BusyboxRootfs() {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

struct PodmanRunOptions {
  std::vector<std::string> labels{};  // "key=value"
  std::string pod{};                  // `--pod NAME`
  std::string restart{};              // `--restart POLICY` ("always")
  std::vector<std::string> extra{};   // more podman run options, each one argument
};

// One container, `podman run -d` from a rootfs, removed on destruction.
class PodmanContainer {
 public:
  PodmanContainer() = default;
  PodmanContainer(const PodmanContainer&) = delete;
  PodmanContainer& operator=(const PodmanContainer&) = delete;
  ~PodmanContainer() { remove(); }

  // Starts `argv` in a container named `name`; "" on success, else the command and its output.
  std::string run(const std::string& name, const std::string& rootfs,
                  const std::vector<std::string>& argv, const PodmanRunOptions& options = {}) {
    name_ = name;
    runShell("podman rm -f -t 0 " + name_);  // a leftover of an earlier crashed test
    const bool network =
        std::any_of(options.extra.begin(), options.extra.end(),
                    [](const std::string& e) { return e.starts_with("--network"); });
    std::string cmd = "podman run --runtime runc -d --name " + name_ +
                      (network ? "" : " --network none") +
                      " --ulimit nofile=1024:1024 --ulimit nproc=4096:4096";
    for (const auto& l : options.labels) cmd += " --label '" + l + "'";
    if (!options.pod.empty()) cmd += " --pod " + options.pod;
    if (!options.restart.empty()) cmd += " --restart " + options.restart;
    for (const auto& e : options.extra) cmd += " '" + e + "'";
    cmd += " --rootfs " + rootfs;
    for (const auto& a : argv) cmd += " '" + a + "'";
    int status = -1;
    std::string out = runShell(cmd, &status);
    started_ = true;
    if (status != 0) return cmd + ": " + out;
    id_ = trim(runShell("podman inspect -f '{{.Id}}' " + name_));
    return "";
  }

  // The container's init as the host sees it (`State.Pid`), 0 when it is not running.
  pid_t pid() const {
    const std::string s = trim(runShell("podman inspect -f '{{.State.Pid}}' " + name_));
    try {
      return static_cast<pid_t>(std::stol(s));
    } catch (...) {
      return 0;
    }
  }

  // Runs a command inside the container (`podman exec`), its output with stderr.
  std::string exec(const std::string& command, int* status = nullptr) const {
    return runShell("podman exec " + name_ + " " + command, status);
  }

  void remove() {
    if (started_) runShell("podman rm -f -t 0 " + name_);
    started_ = false;
  }

  const std::string& name() const { return name_; }
  const std::string& id() const { return id_; }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

 private:
  std::string name_;
  std::string id_;
  bool started_ = false;
};

// A podman pod without an infra container (its image would come from a registry), removed
// with its containers on destruction.
class PodmanPod {
 public:
  PodmanPod() = default;
  PodmanPod(const PodmanPod&) = delete;
  PodmanPod& operator=(const PodmanPod&) = delete;
  ~PodmanPod() {
    if (!name_.empty()) runShell("podman pod rm -f -t 0 " + name_);
  }
  // "" on success, else the command and its output.
  std::string create(const std::string& name) {
    name_ = name;
    runShell("podman pod rm -f -t 0 " + name_);
    int status = -1;
    std::string out = runShell("podman pod create --infra=false --name " + name_, &status);
    return status == 0 ? "" : "podman pod create: " + out;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// A veth from a container's network namespace to a namespace of the test's own
// (chaosd-ctr-<tag>-<pid>), addresses on both ends; the test namespace (and with it the veth) is
// deleted on destruction. The host's namespace is never touched.
class ContainerLink {
 public:
  ContainerLink() = default;
  ContainerLink(const ContainerLink&) = delete;
  ContainerLink& operator=(const ContainerLink&) = delete;
  ~ContainerLink() {
    if (created_) runShell("ip netns del " + peerNs_);
  }

  // "" on success, else the command that failed and its output.
  std::string create(const std::string& tag, pid_t containerPid, const std::string& ctrAddr,
                     const std::string& peerAddr, const std::string& ctrDev = "eth0") {
    peerNs_ = "chaosd-ctr-" + tag + "-" + std::to_string(::getpid() % 100000);
    peerDev_ = "cv" + tag.substr(0, 6) + std::to_string(::getpid() % 100000);
    const std::string pid = std::to_string(containerPid);
    if (std::string err = step("ip netns add " + peerNs_); !err.empty()) return err;
    created_ = true;
    for (const std::string& cmd :
         {"ip -n " + peerNs_ + " link add " + peerDev_ + " type veth peer name " + ctrDev +
              " netns " + pid,
          "ip -n " + peerNs_ + " addr add " + peerAddr + " dev " + peerDev_,
          "ip -n " + peerNs_ + " link set " + peerDev_ + " up",
          "ip -n " + peerNs_ + " link set lo up",
          "nsenter -t " + pid + " -n ip addr add " + ctrAddr + " dev " + ctrDev,
          "nsenter -t " + pid + " -n ip link set " + ctrDev + " up",
          "nsenter -t " + pid + " -n ip link set lo up"}) {
      if (std::string err = step(cmd); !err.empty()) return err;
    }
    return "";
  }

  const std::string& peerNs() const { return peerNs_; }
  const std::string& peerDev() const { return peerDev_; }

 private:
  static std::string step(const std::string& cmd) {
    int status = -1;
    std::string out = runShell(cmd, &status);
    return status == 0 ? "" : cmd + ": " + out;
  }

  std::string peerNs_;
  std::string peerDev_;
  bool created_ = false;
};

// `podman system service` on a socket of the test's own (the Docker-compatible and libpod REST
// API), stopped on destruction by its pid.
class PodmanService {
 public:
  PodmanService() = default;
  PodmanService(const PodmanService&) = delete;
  PodmanService& operator=(const PodmanService&) = delete;
  ~PodmanService() { stop(); }

  // "" once the socket accepts connections, else why not.
  std::string start(const std::string& socketPath) {
    socket_ = socketPath;
    ::unlink(socket_.c_str());
    pid_ = ::fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      const std::string uri = "unix://" + socket_;
      ::execl("/usr/bin/podman", "podman", "system", "service", "--time=0", uri.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const bool up = waitUntil(
        [&] { return shellStatus("curl -sf --unix-socket " + socket_ + " http://d/_ping") == 0; },
        std::chrono::seconds(20));
    return up ? "" : "podman system service did not answer on " + socket_;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    ::unlink(socket_.c_str());
  }

  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace chaosd::testing
