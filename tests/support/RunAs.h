#pragma once

// RunAs: running a program of the build tree as another user (a daemon's caller that is not
// root, say), wherever the checkout lies. The build tree may sit under a folder another user
// cannot enter (/root is 0700 on a fresh Debian), so the program is first copied into a
// world-readable scratch folder of its own, removed afterwards; the program must need nothing
// else from the build tree (chaosctl and chaosd link the project's libraries statically).
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace chaosd::testing {

struct RunAsResult {
  int status = -1;     // exit status; -1 when it did not exit (a signal) or was not started
  std::string output;  // stdout and stderr, merged
  std::string error;   // why the helper itself failed ("" when the program ran)
};

// Exit statuses of the child when it could not become `uid` or exec the program.
inline constexpr int kRunAsSetuidFailed = 126;
inline constexpr int kRunAsExecFailed = 127;

// Runs `program` with `args` as uid/gid (no supplementary groups), from a copy in a 0755
// scratch folder; waits for it and returns its status and output.
inline RunAsResult runAs(uid_t uid, gid_t gid, const std::string& program,
                         const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  RunAsResult result;
  std::string dir = (fs::temp_directory_path() / "chaosd-runas-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr || ::chmod(dir.c_str(), 0755) != 0) {
    result.error = "cannot make a scratch folder in " + fs::temp_directory_path().string();
    return result;
  }
  const std::string copy = dir + "/" + fs::path(program).filename().string();
  std::error_code ec;
  fs::copy_file(program, copy, ec);
  if (ec || ::chmod(copy.c_str(), 0755) != 0) {
    result.error = "cannot copy " + program + ": " + ec.message();
    fs::remove_all(dir, ec);
    return result;
  }
  std::vector<std::string> argvStrings{copy};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.error = "pipe failed";
    fs::remove_all(dir, ec);
    return result;
  }
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      ::_exit(kRunAsSetuidFailed);
    }
    ::execv(copy.c_str(), argv.data());
    ::_exit(kRunAsExecFailed);
  }
  ::close(out[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) {
    result.output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  if (child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  }
  if (child < 0) result.error = "fork failed";
  fs::remove_all(dir, ec);
  return result;
}

}  // namespace chaosd::testing
