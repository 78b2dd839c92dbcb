#include "chaosd/base/Credentials.h"

#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

namespace chaosd {
namespace {

// The second number of a "Uid:\treal\teffective\tsaved\tfs" line: the effective id.
std::optional<long> effectiveId(const std::string& rest) {
  std::istringstream in(rest);
  long real = 0;
  long effective = 0;
  if (!(in >> real >> effective)) return std::nullopt;
  return effective;
}

}  // namespace

std::string Credentials::describe() const {
  std::string out = "uid=" + std::to_string(uid);
  if (!user.empty()) out += "(" + user + ")";
  out += " gid=" + std::to_string(gid);
  if (!groups.empty()) {
    out += " groups=";
    for (size_t i = 0; i < groups.size(); ++i) {
      out += (i ? "," : "") + std::to_string(groups[i]);
    }
  }
  return out;
}

Result<Credentials> credentialsOfProcess(pid_t pid, const std::string& procRoot) {
  std::ifstream in(procRoot + "/" + std::to_string(pid) + "/status");
  if (!in) return Error(ErrorCode::kNotFound, "process " + std::to_string(pid) + " is gone");
  Credentials c;
  bool uid = false;
  bool gid = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Uid:", 0) == 0) {
      if (auto v = effectiveId(line.substr(4))) c.uid = static_cast<uid_t>(*v), uid = true;
    } else if (line.rfind("Gid:", 0) == 0) {
      if (auto v = effectiveId(line.substr(4))) c.gid = static_cast<gid_t>(*v), gid = true;
    } else if (line.rfind("Groups:", 0) == 0) {
      std::istringstream groups(line.substr(7));
      for (long g; groups >> g;) c.groups.push_back(static_cast<gid_t>(g));
    }
  }
  if (!uid || !gid) {
    return Error(ErrorCode::kNotFound, "process " + std::to_string(pid) + ": no Uid/Gid lines");
  }
  return c;
}

Credentials credentialsOfPeer(pid_t pid, uid_t uid, gid_t gid, const std::string& procRoot) {
  Credentials c;
  c.uid = uid;
  c.gid = gid;
  // The groups only when /proc shows the same process (same effective ids): a pid reused by
  // another process must not lend its groups.
  if (auto p = credentialsOfProcess(pid, procRoot); p && p->uid == uid && p->gid == gid) {
    c.groups = std::move(p->groups);
  }
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    c.user = found->pw_name;
  }
  return c;
}

std::map<std::string, std::string> credentialEnvironment(const Credentials& who) {
  std::map<std::string, std::string> env{{"HOME", "/"}};
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(who.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    env["HOME"] = found->pw_dir;
    env["USER"] = found->pw_name;
    env["LOGNAME"] = found->pw_name;
  } else {
    env["USER"] = std::to_string(who.uid);
    env["LOGNAME"] = std::to_string(who.uid);
  }
  return env;
}

int switchCredentialsInChild(uid_t uid, gid_t gid, const gid_t* groups, size_t groupCount) {
  // Groups and gid first: once the uid is dropped, neither can be changed any more.
  if (::syscall(SYS_setgroups, groupCount, groups) != 0) return errno;
  if (::syscall(SYS_setresgid, gid, gid, gid) != 0) return errno;
  if (::syscall(SYS_setresuid, uid, uid, uid) != 0) return errno;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  // A uid that could be regained would mean the switch did not take.
  if (uid != 0 && ::syscall(SYS_setresuid, 0, 0, 0) == 0) return EPERM;
  return 0;
}

}  // namespace chaosd
