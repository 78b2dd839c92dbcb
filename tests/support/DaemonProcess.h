#pragma once

// A real chaosd for a root test: started from the build tree on a socket and state directory
// in a temp dir of the test's own, stopped with SIGTERM (SIGKILL if it hangs) and the dir
// removed on destruction, even when an assertion failed.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/app/cli/DaemonClient.h"

namespace chaosd::testing {

// A directory under /tmp, removed with everything in it on destruction. Mode 0755 so that a
// test may run a client as another user.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/chaosd-daemontest-XXXXXX";
    path_ = ::mkdtemp(tmpl) != nullptr ? tmpl : "";
    if (!path_.empty()) ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class DaemonProcess {
 public:
  DaemonProcess(std::string dir, std::vector<std::string> extraArgs = {})
      : dir_(std::move(dir)),
        socket_(dir_ + "/chaosd.sock"),
        stateDir_(dir_ + "/state"),
        log_(dir_ + "/chaosd.log") {
    std::vector<std::string> args = {CHAOSD_PATH,   "--socket",    socket_,
                                     "--state-dir", stateDir_,     "--log-file",
                                     log_,          "--log-level", "debug"};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~DaemonProcess() {
    if (pid_ > 0) stop();
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Waits until the socket accepts a connection (the daemon opens it only after recovery).
  // False when the daemon exited or the timeout passed.
  bool waitReady(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepts()) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  bool accepts() const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  // SIGTERM, then the exit status (-1 if it had to be killed or was not running).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  cli::DaemonClient client() const { return cli::DaemonClient(socket_); }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  const std::string& stateDir() const { return stateDir_; }
  std::string log() const { return readWhole(log_); }

 private:
  std::string dir_;
  std::string socket_;
  std::string stateDir_;
  std::string log_;
  pid_t pid_ = -1;
};

// An experiment filling 1 MiB in `dir` for `hold`, with a command probe every 100ms.
inline std::string fillExperiment(const std::string& name, const std::string& baseline = "500ms",
                                  const std::string& hold = "1s") {
  return "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: " + name +
         "}\nconfig: {dir: /nonexistent}\ntargets:\n  data: {path: \"${dir}\"}\n"
         "steadyState:\n  baseline: {duration: " +
         baseline +
         "}\n  recovery: {duration: 500ms}\n  probes:\n"
         "    - {name: alive, command: {argv: [/bin/true]}, every: 100ms}\n"
         "method:\n  - {name: fill, fault: disk.fill, target: data, args: {size: 1MiB}, "
         "duration: " +
         hold + "}\n";
}

}  // namespace chaosd::testing
