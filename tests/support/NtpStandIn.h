#pragma once

// A harmless stand-in for an NTP client: a child of the test that names itself `chronyd`
// (PR_SET_NAME: /proc/PID/stat's comm, which is what time.skew's NTP search reads) and sleeps
// until killed. It touches no clock. Killed and reaped by the destructor, stopped or not.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace chaosd::testing {

class NtpStandIn {
 public:
  explicit NtpStandIn(const char* comm = "chronyd") {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_NAME, comm, 0, 0, 0);
      for (;;) ::pause();
    }
  }
  ~NtpStandIn() { stop(); }
  NtpStandIn(const NtpStandIn&) = delete;
  NtpStandIn& operator=(const NtpStandIn&) = delete;

  pid_t pid() const { return pid_; }
  // The state letter /proc shows (T: stopped), '-' once it is gone.
  char state() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const size_t close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() ? '-' : stat[close + 2];
  }
  std::string comm() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/comm");
    std::string c;
    std::getline(in, c);
    return c;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace chaosd::testing
