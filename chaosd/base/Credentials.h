#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// Who a command runs as: a uid, a primary gid and the supplementary groups. The daemon takes
// them from its caller (SO_PEERCRED and /proc/PID/status) and every command an experiment
// executes for that caller (command probes, exec targets, rollbacks) switches to them in the
// child before exec, with no_new_privs (docs/security.md).
namespace chaosd {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, as the kernel had them at the request
  std::string user;           // the passwd name, "" when the uid has none (for people)

  bool isRoot() const { return uid == 0; }
  // "uid=1001(alice) gid=1001 groups=1001,998"
  std::string describe() const;
};

// The credentials of a process from its /proc/PID/status (Uid, Gid and Groups lines: the
// effective ids). kNotFound when the process is gone.
Result<Credentials> credentialsOfProcess(pid_t pid, const std::string& procRoot = "/proc");

// The peer's SO_PEERCRED ids with the supplementary groups of the peer process as the
// kernel shows them now; the groups are empty when the process is already gone (the peer's
// own uid and gid still apply).
Credentials credentialsOfPeer(pid_t pid, uid_t uid, gid_t gid,
                              const std::string& procRoot = "/proc");

// The environment a command run as `who` gets over the daemon's: HOME, USER, LOGNAME from
// the passwd entry (HOME=/ when there is none), so a caller's command does not read root's
// home.
std::map<std::string, std::string> credentialEnvironment(const Credentials& who);

// In a forked child before exec (async-signal-safe: raw system calls only, so it touches
// only the calling thread, the child's only one): setgroups, setresgid, setresuid to `who`,
// then PR_SET_NO_NEW_PRIVS, then checks that the uid cannot be regained. Returns 0 or an
// errno. `groups` is who.groups.data() (passed apart so the child copies nothing).
int switchCredentialsInChild(uid_t uid, gid_t gid, const gid_t* groups, size_t groupCount);

}  // namespace chaosd
