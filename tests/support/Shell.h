#pragma once

// Shell: running a command line through /bin/sh (popen) for a test, with its output and exit
// status. Only test scaffolding uses it (`ip`, `tc`, `nft`, chaosctl itself), never the code
// under test.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace chaosd::testing {

// Runs `cmd` through the shell; returns what it wrote to stdout (its stderr goes to the test's
// own) and sets `*status` to its exit status, or -1 when it did not exit (a signal) or could
// not be started.
inline std::string runCommand(const std::string& cmd, int* status = nullptr) {
  std::string out;
  if (status != nullptr) *status = -1;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = ::pclose(p);
  if (status != nullptr) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// The same with stderr merged into the output (`cmd 2>&1`).
inline std::string runShell(const std::string& cmd, int* status = nullptr) {
  return runCommand(cmd + " 2>&1", status);
}

// Only the exit status of `cmd 2>&1` (-1 as above); its output is dropped.
inline int shellStatus(const std::string& cmd) {
  int st = -1;
  runShell(cmd, &st);
  return st;
}

}  // namespace chaosd::testing
