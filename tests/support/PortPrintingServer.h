#pragma once

// A server program of the test's own (tests/data/http/stream-server.py and the like) started
// as a child: it binds a free port and prints it on its first line of stdout. Killed (SIGKILL,
// reaped) on destruction, even when an assertion failed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace chaosd::testing {

class PortPrintingServer {
 public:
  // argv[0] by absolute path. Waits up to `within` for the port line.
  explicit PortPrintingServer(const std::vector<std::string>& argv,
                              std::chrono::milliseconds within = std::chrono::seconds(10)) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[64];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    try {
      port_ = std::stoi(line);
    } catch (const std::exception&) {
      port_ = 0;
    }
    if (port_ <= 0 || port_ > 65535) {
      stop();
      throw std::runtime_error(argv[0] + " printed no port: '" + line + "'");
    }
  }
  ~PortPrintingServer() { stop(); }
  PortPrintingServer(const PortPrintingServer&) = delete;
  PortPrintingServer& operator=(const PortPrintingServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

// The streaming test server (tests/data/http/stream-server.py).
inline std::vector<std::string> streamServerArgv() {
  return {"/usr/bin/python3", std::string(CHAOSD_SOURCE_DIR) + "/tests/data/http/stream-server.py"};
}

}  // namespace chaosd::testing
